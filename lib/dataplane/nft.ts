// nftables state, applied atomically (one netlink batch = one transaction: either every
// statement of a script applies or none does) and read back as nft's JSON.
//
// Two ways to reach the kernel, one notation (nft's own script language, whose errors
// name the failing line and column):
// - in process (`inProcessNft()`): a persistent libnftables context through the
//   `tandem-nftables` addon. What role agents use: a transaction costs tens of
//   microseconds instead of a process spawn (~70 ms p50 on a loaded 2-core host;
//   `tandem bench nft`), and tables flagged `owner` die with the agent.
// - by spawning `nft` through a CommandHost (`ip netns exec NS nft`, or over SSH): what
//   tests use to look at the kernel independently of the code under test.
import { type CounterReader, type NftContext, openCounterReader, openNftContext } from "tandem-nftables";
import type { CommandHost } from "../remote/command.ts";

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
    readonly code: number | null,
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

/**
 * A persistent libnftables context (one netlink socket), synchronous. Owner tables made
 * through it are removed by the kernel when it is closed or the process dies.
 */
export class InProcessNft {
  private readonly context: NftContext;
  /**
   * A second context (own netlink socket) for listings run off the event loop
   * (`listAsync`): a listing rebuilds libnftables' cache of the whole ruleset and prints
   * JSON, milliseconds that would otherwise stall an agent in the middle of a hand-off.
   * Opened on first use; one listing at a time (a context is not thread-safe).
   */
  private reader: NftContext | undefined;
  /**
   * Named counters are read with libnftnl on a socket of its own (`CounterReader`): one
   * netlink round trip (~5 us), no cache rebuild or JSON, so synchronous. Opened on first use.
   */
  private counterReader: CounterReader | undefined;
  private readChain: Promise<unknown> = Promise.resolve();
  private readonly options: { netns?: string };
  /** Transactions and listings run, for an agent's status. */
  readonly counters = { transactions: 0, listings: 0, failures: 0 };

  constructor(options: { netns?: string } = {}) {
    this.options = { ...options };
    this.context = openNftContext(options);
  }

  /** Runs one script as one transaction; throws {@link NftError} with nft's message. */
  applySync(script: string): void {
    this.counters.transactions++;
    const r = this.context.run(script);
    if (r.code !== 0) {
      this.counters.failures++;
      throw new NftError(["libnftables", "run"], r.code, r.error || r.output, script);
    }
  }

  /** Runs a list command (`list set ip t s`) and returns nft's JSON text. */
  listSync(command: string): string {
    this.counters.listings++;
    const r = this.context.run(command, { json: true });
    if (r.code !== 0) {
      this.counters.failures++;
      throw new NftError(["libnftables", command], r.code, r.error || r.output);
    }
    return r.output;
  }

  /** As {@link listSync}, on libuv's thread pool through the reader context; listings run one at a time. */
  listAsync(command: string): Promise<string> {
    const run = async (): Promise<string> => {
      if (!this.context.open) throw new NftError(["libnftables", command], 0, "nftables context is closed");
      this.counters.listings++;
      this.reader ??= openNftContext(this.options);
      const r = await this.reader.runAsync(command, { json: true });
      if (r.code !== 0) {
        this.counters.failures++;
        throw new NftError(["libnftables", command], r.code, r.error || r.output);
      }
      return r.output;
    };
    const result = this.readChain.then(run, run);
    this.readChain = result.catch(() => undefined);
    return result;
  }

  /** One named counter, straight from the kernel (NFT_MSG_GETOBJ); throws when it does not exist. */
  readCounterSync(ref: TableRef, name: string): CounterValue {
    let value: { packets: number; bytes: number };
    try {
      value = this.openedCounterReader().read(ref.family, ref.table, name);
    } catch (e) {
      this.counters.failures++;
      throw new NftError(["libnftnl", "getobj", ref.family, ref.table, name], 1, (e as Error).message);
    }
    const { packets, bytes } = value;
    this.counters.listings++;
    return { packets, bytes };
  }

  /** Every named counter of a table; an empty map when the table has none (or does not exist). */
  listCountersSync(ref: TableRef): Map<string, CounterValue> {
    const out = new Map<string, CounterValue>();
    for (const c of this.openedCounterReader().readAll(ref.family, ref.table))
      out.set(c.name, { packets: c.packets, bytes: c.bytes });
    this.counters.listings++;
    return out;
  }

  private openedCounterReader(): CounterReader {
    if (!this.context.open) throw new NftError(["libnftnl", "getobj"], 0, "nftables context is closed");
    this.counterReader ??= openCounterReader(this.options);
    return this.counterReader;
  }

  get open(): boolean {
    return this.context.open;
  }

  close(): void {
    this.context.close();
    this.counterReader?.close();
    this.counterReader = undefined;
    const reader = this.reader;
    this.reader = undefined;
    // A listing in flight keeps the reader busy: close it once that listing is over.
    if (reader) void this.readChain.then(() => reader.close());
  }
}

/** Where nft scripts go: a persistent in-process context, or a CommandHost that spawns `nft`. */
export type NftTarget = CommandHost | InProcessNft;

/** Opens a libnftables context in this process's namespace, or in `netns` (a name or path). */
export function inProcessNft(options: { netns?: string } = {}): InProcessNft {
  return new InProcessNft(options);
}

/** Applies an nft script in one transaction. Throws {@link NftError} with nft's message. */
export async function nftApply(target: NftTarget, script: string): Promise<void> {
  if (target instanceof InProcessNft) return target.applySync(script);
  const argv = ["nft", "-f", "-"];
  const result = await target.exec(argv, { input: script });
  if (result.code !== 0) throw new NftError(argv, result.code, result.stderr || result.stdout, script);
}

async function nftJson(target: NftTarget, args: readonly string[]): Promise<unknown[]> {
  const argv = ["nft", "-j", ...args];
  const result =
    target instanceof InProcessNft
      ? { code: 0, stdout: await target.listAsync(args.join(" ")), stderr: "" }
      : await target.exec(argv);
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
export async function replaceTable(target: NftTarget, ref: TableRef, body: string): Promise<void> {
  checkTable(ref);
  const t = `${ref.family} ${ref.table}`;
  await nftApply(target, `table ${t} {}\ndelete table ${t}\ntable ${t} {\n${body}\n}\n`);
}

/** Deletes a table if it exists (idempotent, one transaction). */
export async function deleteTable(target: NftTarget, ref: TableRef): Promise<void> {
  checkTable(ref);
  const t = `${ref.family} ${ref.table}`;
  await nftApply(target, `table ${t} {}\ndelete table ${t}\n`);
}

/**
 * Adds and deletes set elements in one transaction (deletions first). Deleting an element
 * that is not in the set fails the whole transaction (nft: "element does not exist");
 * use {@link syncSet} for idempotent updates.
 */
export async function updateSet(
  target: NftTarget,
  ref: SetRef,
  change: { add?: readonly string[]; delete?: readonly string[] },
): Promise<void> {
  checkTable(ref);
  checkIdentifier("set", ref.set);
  const add = change.add ?? [];
  const del = change.delete ?? [];
  [...add, ...del].forEach(checkElement);
  const set = `${ref.family} ${ref.table} ${ref.set}`;
  const lines: string[] = [];
  if (del.length > 0) lines.push(`delete element ${set} { ${del.join(", ")} }`);
  if (add.length > 0) lines.push(`add element ${set} { ${add.join(", ")} }`);
  if (lines.length === 0) return;
  await nftApply(target, `${lines.join("\n")}\n`);
}

/** Removes every element of a set (one transaction). */
export async function flushSet(target: NftTarget, ref: SetRef): Promise<void> {
  checkTable(ref);
  checkIdentifier("set", ref.set);
  await nftApply(target, `flush set ${ref.family} ${ref.table} ${ref.set}\n`);
}

/**
 * Makes a set hold exactly `desired` (by nft's notation of each element): reads the set and
 * applies the difference in one transaction. Elements that stay keep their counters.
 */
export async function syncSet(
  target: NftTarget,
  ref: SetRef,
  desired: readonly string[],
): Promise<{ added: string[]; deleted: string[] }> {
  const current = new Set((await listSet(target, ref)).elements.map((e) => e.value));
  const want = new Set(desired);
  const added = [...want].filter((v) => !current.has(v));
  const deleted = [...current].filter((v) => !want.has(v));
  await updateSet(target, ref, { add: added, delete: deleted });
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

/** One element of a map: its key in nft's notation, per-element counter, and its data (a verdict as nft writes it: "drop", "jump admit"). */
export interface MapElement {
  value: string;
  data: string;
  counter?: CounterValue;
}

/** Renders a map element's data (a verdict object of nft's JSON, or a value) in nft's text notation. */
function mapDataText(value: unknown): string {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const [verdict, arg] = Object.entries(value as Record<string, unknown>)[0] ?? [];
    if (verdict && (verdict === "jump" || verdict === "goto")) {
      const target = (arg as { target?: unknown } | null)?.target;
      return `${verdict} ${String(target)}`;
    }
    if (verdict && arg === null) return verdict;
  }
  return elementValueText(value);
}

/**
 * The maps of one table from `nft -j list maps FAMILY` (nftables 1.0.6 has no `list maps
 * table`; it lists the family's maps, this keeps the table's). Each element as [key, data].
 */
export function parseMapsJson(json: string, ref: TableRef): Map<string, MapElement[]> {
  const out = new Map<string, MapElement[]>();
  const doc = JSON.parse(json) as { nftables?: Record<string, unknown>[] };
  for (const item of doc.nftables ?? []) {
    const map = item.map as Record<string, unknown> | undefined;
    if (!map || map.table !== ref.table || map.family !== ref.family || typeof map.name !== "string")
      continue;
    const elements: MapElement[] = [];
    for (const raw of Array.isArray(map.elem) ? map.elem : []) {
      if (!Array.isArray(raw) || raw.length !== 2) continue;
      const [key, data] = raw as [unknown, unknown];
      const wrapped =
        key && typeof key === "object" ? (key as { elem?: Record<string, unknown> }).elem : undefined;
      const counter = wrapped ? toCounter(wrapped.counter) : undefined;
      const value = elementValueText(wrapped ? wrapped.val : key);
      elements.push(
        counter ? { value, data: mapDataText(data), counter } : { value, data: mapDataText(data) },
      );
    }
    out.set(map.name, elements);
  }
  return out;
}

/**
 * The JSON listing of every map of `family` with its elements (and per-element counters):
 * one call for all of a table's maps (in process: on libuv's thread pool).
 */
export async function listMapsJson(target: NftTarget, family: NftFamily): Promise<string> {
  const command = `list maps ${family}`;
  if (target instanceof InProcessNft) return target.listAsync(command);
  const argv = ["nft", "-j", "list", "maps", family];
  const result = await target.exec(argv);
  if (result.code !== 0) throw new NftError(argv, result.code, result.stderr || result.stdout);
  return result.stdout;
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
export async function listSet(target: NftTarget, ref: SetRef): Promise<SetListing> {
  checkTable(ref);
  checkIdentifier("set", ref.set);
  const list = await nftJson(target, ["list", "set", ref.family, ref.table, ref.set]);
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
export async function readCounter(target: NftTarget, ref: TableRef, name: string): Promise<CounterValue> {
  checkTable(ref);
  checkIdentifier("counter", name);
  if (target instanceof InProcessNft) return target.readCounterSync(ref, name);
  const list = await nftJson(target, ["list", "counter", ref.family, ref.table, name]);
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
export async function listCounters(target: NftTarget, ref: TableRef): Promise<Map<string, CounterValue>> {
  checkTable(ref);
  if (target instanceof InProcessNft) return target.listCountersSync(ref);
  const list = await nftJson(target, ["list", "counters", "table", ref.family, ref.table]);
  const out = new Map<string, CounterValue>();
  for (const item of list) {
    const raw = (item as { counter?: { name?: unknown } }).counter;
    const counter = toCounter(raw);
    if (raw && counter && typeof raw.name === "string") out.set(raw.name, counter);
  }
  return out;
}

/**
 * Every set of a table with its elements and counters, as nft's JSON text (`nft -j list
 * sets table F T`). Not `list table`: nftables 1.0.6 (Debian 12) prints a table's flags in
 * JSON by indexing its name array with the flag *value*, so a table with `flags owner`
 * (value 2, one past the end) prints garbage, and in a long-lived process that read
 * corrupts the heap ("corrupted double-linked list" within a few hundred listings; the
 * same loop with `list sets table` ran 3,000 rounds clean). Set, sets and counter
 * listings do not print the table object. nftables 1.0.6 ignores the table in `list sets
 * table F T` and prints the sets of every table: callers keep those whose `table` is T.
 */
export async function listSetsJson(target: NftTarget, ref: TableRef): Promise<string> {
  checkTable(ref);
  const command = `list sets table ${ref.family} ${ref.table}`;
  if (target instanceof InProcessNft) return target.listAsync(command);
  const argv = ["nft", "-j", "list", "sets", "table", ref.family, ref.table];
  const result = await target.exec(argv);
  if (result.code !== 0) throw new NftError(argv, result.code, result.stderr || result.stdout);
  return result.stdout;
}
