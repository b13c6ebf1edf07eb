// nftables state, applied atomically through `nft -f -` (one netlink batch = one
// transaction: either every statement of a script applies or none does) and read
// back with `nft -j`. We drive the nft binary rather than libnftables over FFI: the
// CLI is the stable interface, its errors point at the failing line, and the same
// argv runs locally, in a namespace (`ip netns exec`) or on a remote host.
import type { Executor } from "./exec.ts";

export type NftFamily = "ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev";

export interface TableRef {
  family: NftFamily;
  table: string;
}

export interface SetRef extends TableRef {
  set: string;
}

export interface CounterValue {
  packets: number;
  bytes: number;
}

/** One element of a set. `value` is nft's own notation: "198.18.1.10", "198.18.1.0/24", "a-b", "a . 53". */
export interface SetElement {
  value: string;
  /** Present when the set was declared with `counter` (per-element counters). */
  counter?: CounterValue;
}

export interface SetListing extends SetRef {
  type: string;
  flags: string[];
  elements: SetElement[];
}

/** nft refused a command; `nftMessage` is nft's own error text (it names the script line and column). */
export class NftError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number,
    readonly nftMessage: string,
    readonly script?: string,
  ) {
    super(`nft failed (exit ${code}): ${argv.join(" ")}\n${nftMessage.trim()}`);
    this.name = "NftError";
  }
}

const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const FAMILIES: readonly NftFamily[] = ["ip", "ip6", "inet", "arp", "bridge", "netdev"];

function checkIdentifier(what: string, value: string): void {
  if (!IDENTIFIER.test(value)) {
    throw new TypeError(
      `nft ${what} name ${JSON.stringify(value)} is not a plain identifier ([A-Za-z][A-Za-z0-9_-]*)`,
    );
  }
}

function checkTable(ref: TableRef): void {
  if (!FAMILIES.includes(ref.family))
    throw new TypeError(`nft family ${JSON.stringify(ref.family)} is not one of ${FAMILIES.join(", ")}`);
  checkIdentifier("table", ref.table);
}

function checkElement(element: string): void {
  // Elements are spliced into a script: refuse anything that could end the statement.
  if (element.trim() === "" || /[{};\n#"]/.test(element)) {
    throw new TypeError(
      `nft set element ${JSON.stringify(element)} is empty or contains one of { } ; # " or a newline`,
    );
  }
}

/** Applies an nft script in one transaction. Throws {@link NftError} with nft's message. */
export async function nftApply(exec: Executor, script: string): Promise<void> {
  const argv = ["nft", "-f", "-"];
  const result = await exec(argv, { input: script });
  if (result.code !== 0) throw new NftError(argv, result.code, result.stderr || result.stdout, script);
}

async function nftJson(exec: Executor, args: readonly string[]): Promise<unknown[]> {
  const argv = ["nft", "-j", ...args];
  const result = await exec(argv);
  if (result.code !== 0) throw new NftError(argv, result.code, result.stderr || result.stdout);
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch (e) {
    throw new NftError(argv, 0, `unparseable JSON output: ${(e as Error).message}`);
  }
  const list = (parsed as { nftables?: unknown }).nftables;
  if (!Array.isArray(list)) throw new NftError(argv, 0, "JSON output has no `nftables` array");
  return list;
}

/**
 * Replaces a whole table atomically: `table X {}` (so the delete cannot fail), `delete table X`,
 * then the new definition, all in one transaction. Packets see either the old or the new table,
 * never a half-built one. Counters and set elements restart from what `body` declares.
 *
 * `body` is the text between the table's braces, e.g.
 * `set held { type ipv4_addr; counter; }\nchain classify { type filter hook forward priority -200; ... }`.
 */
export async function replaceTable(exec: Executor, ref: TableRef, body: string): Promise<void> {
  checkTable(ref);
  const t = `${ref.family} ${ref.table}`;
  await nftApply(exec, `table ${t} {}\ndelete table ${t}\ntable ${t} {\n${body}\n}\n`);
}

/** Deletes a table if it exists (idempotent, one transaction). */
export async function deleteTable(exec: Executor, ref: TableRef): Promise<void> {
  checkTable(ref);
  const t = `${ref.family} ${ref.table}`;
  await nftApply(exec, `table ${t} {}\ndelete table ${t}\n`);
}

/**
 * Adds and deletes set elements in one transaction (deletions first). Deleting an element
 * that is not in the set fails the whole transaction (nft: "element does not exist");
 * use {@link syncSet} for idempotent updates.
 */
export async function updateSet(
  exec: Executor,
  ref: SetRef,
  change: { add?: readonly string[]; delete?: readonly string[] },
): Promise<void> {
  checkTable(ref);
  checkIdentifier("set", ref.set);
  const add = change.add ?? [];
  const del = change.delete ?? [];
  [...add, ...del].forEach(checkElement);
  const target = `${ref.family} ${ref.table} ${ref.set}`;
  const lines: string[] = [];
  if (del.length > 0) lines.push(`delete element ${target} { ${del.join(", ")} }`);
  if (add.length > 0) lines.push(`add element ${target} { ${add.join(", ")} }`);
  if (lines.length === 0) return;
  await nftApply(exec, `${lines.join("\n")}\n`);
}

/** Removes every element of a set (one transaction). */
export async function flushSet(exec: Executor, ref: SetRef): Promise<void> {
  checkTable(ref);
  checkIdentifier("set", ref.set);
  await nftApply(exec, `flush set ${ref.family} ${ref.table} ${ref.set}\n`);
}

/**
 * Makes a set hold exactly `desired` (by nft's notation of each element): reads the set and
 * applies the difference in one transaction. Elements that stay keep their counters.
 */
export async function syncSet(
  exec: Executor,
  ref: SetRef,
  desired: readonly string[],
): Promise<{ added: string[]; deleted: string[] }> {
  const current = new Set((await listSet(exec, ref)).elements.map((e) => e.value));
  const want = new Set(desired);
  const added = [...want].filter((v) => !current.has(v));
  const deleted = [...current].filter((v) => !want.has(v));
  await updateSet(exec, ref, { add: added, delete: deleted });
  return { added, deleted };
}

/** Renders one element value of nft's JSON output in nft's text notation. */
export function elementValueText(value: unknown): string {
  if (typeof value === "string" || typeof value === "number") return String(value);
  if (value && typeof value === "object") {
    const v = value as Record<string, unknown>;
    const prefix = v.prefix as { addr?: unknown; len?: unknown } | undefined;
    if (prefix) return `${elementValueText(prefix.addr)}/${String(prefix.len)}`;
    if (Array.isArray(v.range)) return v.range.map(elementValueText).join("-");
    if (Array.isArray(v.concat)) return v.concat.map(elementValueText).join(" . ");
  }
  return JSON.stringify(value);
}

function toCounter(value: unknown): CounterValue | undefined {
  if (!value || typeof value !== "object") return undefined;
  const c = value as { packets?: unknown; bytes?: unknown };
  if (typeof c.packets !== "number" || typeof c.bytes !== "number") return undefined;
  return { packets: c.packets, bytes: c.bytes };
}

/** Parses the `set` object of `nft -j list set` (exported for tests). */
export function parseSetJson(ref: SetRef, set: Record<string, unknown>): SetListing {
  const elements: SetElement[] = [];
  for (const raw of Array.isArray(set.elem) ? set.elem : []) {
    const wrapped =
      raw && typeof raw === "object" ? (raw as { elem?: Record<string, unknown> }).elem : undefined;
    if (wrapped) {
      const counter = toCounter(wrapped.counter);
      elements.push(
        counter
          ? { value: elementValueText(wrapped.val), counter }
          : { value: elementValueText(wrapped.val) },
      );
    } else {
      elements.push({ value: elementValueText(raw) });
    }
  }
  const type = Array.isArray(set.type) ? set.type.join(" . ") : String(set.type);
  const flags = Array.isArray(set.flags) ? set.flags.map(String) : [];
  return { ...ref, type, flags, elements };
}

/** Lists a set with its elements and, when the set has `counter`, each element's packets and bytes. */
export async function listSet(exec: Executor, ref: SetRef): Promise<SetListing> {
  checkTable(ref);
  checkIdentifier("set", ref.set);
  const list = await nftJson(exec, ["list", "set", ref.family, ref.table, ref.set]);
  for (const item of list) {
    const set = (item as { set?: Record<string, unknown> }).set;
    if (set) return parseSetJson(ref, set);
  }
  throw new NftError(
    ["nft", "-j", "list", "set", ref.family, ref.table, ref.set],
    0,
    "no set in nft's output",
  );
}

/** Reads a named counter (`counter NAME { }` in a table). */
export async function readCounter(exec: Executor, ref: TableRef, name: string): Promise<CounterValue> {
  checkTable(ref);
  checkIdentifier("counter", name);
  const list = await nftJson(exec, ["list", "counter", ref.family, ref.table, name]);
  for (const item of list) {
    const counter = toCounter((item as { counter?: unknown }).counter);
    if (counter) return counter;
  }
  throw new NftError(
    ["nft", "-j", "list", "counter", ref.family, ref.table, name],
    0,
    "no counter in nft's output",
  );
}

/** Reads every named counter of a table. */
export async function listCounters(exec: Executor, ref: TableRef): Promise<Map<string, CounterValue>> {
  checkTable(ref);
  const list = await nftJson(exec, ["list", "counters", "table", ref.family, ref.table]);
  const out = new Map<string, CounterValue>();
  for (const item of list) {
    const raw = (item as { counter?: { name?: unknown } }).counter;
    const counter = toCounter(raw);
    if (raw && counter && typeof raw.name === "string") out.set(raw.name, counter);
  }
  return out;
}
