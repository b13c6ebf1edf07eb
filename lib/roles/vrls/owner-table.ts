/**
 * The member's owner table in nftables (seed: "determination data table 40"): which packets
 * the kernel forwards, hands to the buffer processor's queue, or drops, per condition.
 *
 * One verdict-map lookup decides a packet. A condition's element sits in one map for its
 * whole life (addresses in `by_source`, prefixes in `by_prefix`, hash buckets in `by_bucket`)
 * and a hand-off changes its verdict: `delete element` and `add element` in one transaction.
 * A lookup sees the element of the old generation or the new one, never neither.
 *
 * Why not three sets (`own`, `inqueue`, `others`) with one rule each, as before: a packet is
 * looked up by the first rule in one ruleset generation and by the next rule in the next one
 * when a commit flips in between (each set lookup takes the current generation mask). A
 * condition moving from a later rule's set to an earlier one's (inqueue -> own after a
 * resolve, others -> inqueue at a prehold) then matched none and fell through to `unknown`:
 * a backup dropped it. CI lost 1 datagram in 200 exactly-once hand-offs that way. On this
 * kernel (6.18), 600 moves of the looked-up address between two interval sets while it sent
 * ~460 k packets/s missed 41 packets (hash sets: 1); one verdict map, interval or hash: 0
 * (docs/vrls.md, test/owner-table.test.ts).
 *
 * Addresses are in a hash map, not an interval one: interval sets (nft_set_rbtree) can miss
 * an active element during a commit on kernels before Linux 7.0 ("nft_set_rbtree: translate
 * rbtree to array for binary search", January 2026). Prefix conditions still need one.
 */
import { type MapElement, parseMapsJson } from "../../dataplane/nft.ts";
import type { Disposition } from "./member.ts";

/** The three maps; a condition's kind chooses one for good. */
export const OWNER_MAPS = { address: "by_source", prefix: "by_prefix", bucket: "by_bucket" } as const;
export type OwnerMap = (typeof OWNER_MAPS)[keyof typeof OWNER_MAPS];

/**
 * What the kernel does with a condition's packets. The names are the sets' of old (and what
 * `tandem vrls show` and the management page call them): forwarded, queued, dropped.
 */
export type KernelClass = "own" | "inqueue" | "others";

export function kernelClassOf(d: Disposition): KernelClass {
  return d === "forward" ? "own" : d === "drop" ? "others" : "inqueue";
}

// Chain names: not "queue" or "fwd" (nft keywords).
const ADMIT = "admit";
const ENQUEUE = "enqueue";

function verdictOf(k: KernelClass, bucket: boolean): string {
  if (k === "others") return "drop";
  const chain = k === "own" ? ADMIT : ENQUEUE;
  return `jump ${bucket ? `${chain}_b` : chain}`;
}

function classOfVerdict(data: string): KernelClass | undefined {
  if (data === "drop") return "others";
  const chain = /^jump (\w+?)(_b)?$/.exec(data)?.[1];
  return chain === ADMIT ? "own" : chain === ENQUEUE ? "inqueue" : undefined;
}

/** The map element of a condition key: an address, a prefix, or a bucket's number. */
export function ownerElementOf(condition: string): { map: OwnerMap; element: string } {
  const bucket = /#(\d+)\//.exec(condition);
  if (bucket) return { map: OWNER_MAPS.bucket, element: bucket[1] as string };
  return condition.includes("/")
    ? { map: OWNER_MAPS.prefix, element: condition }
    : { map: OWNER_MAPS.address, element: condition };
}

/**
 * The transaction lines that take a condition from one kernel class to another (either may
 * be absent: not in the table). Empty when the class does not change.
 */
export function ownerMoveLines(
  table: string,
  condition: string,
  before: KernelClass | undefined,
  after: KernelClass | undefined,
): string[] {
  if (before === after) return [];
  const { map, element } = ownerElementOf(condition);
  const bucket = map === OWNER_MAPS.bucket;
  const lines: string[] = [];
  if (before !== undefined) lines.push(`delete element ip ${table} ${map} { ${element} }`);
  if (after !== undefined)
    lines.push(`add element ip ${table} ${map} { ${element} : ${verdictOf(after, bucket)} }`);
  return lines;
}

export interface OwnerTableOptions {
  /** The macvlan whose packets the table classifies. */
  macvlan: string;
  /** Mark bit on every packet the table lets through (hex). */
  admitted: string;
  /** Mark that sends a packet to the queue, ORed with `admitted` (hex). */
  queueMark: string;
  /** `flags owner`: the table dies with the agent's netlink socket (fate sharing). */
  owned: boolean;
  /** RFC 9568 Accept_Mode False: drop input to the VIP. */
  acceptModeDropsTo?: string;
  /** Hash buckets: the jhash that gives a packet its bucket number. */
  buckets?: { over: "src" | "src+dst"; count: number; seed: number };
}

/** The whole table (its `unknown` chain starts as a backup's: drop). */
export function ownerTableScript(o: OwnerTableOptions): string {
  const b = o.buckets;
  const mapDecl = (name: OwnerMap, type: string, interval = false) =>
    `map ${name} { type ${type} : verdict; ${interval ? "flags interval; " : ""}counter; }`;
  return [
    ...(o.owned ? ["flags owner;"] : []),
    mapDecl(OWNER_MAPS.address, "ipv4_addr"),
    mapDecl(OWNER_MAPS.prefix, "ipv4_addr", true),
    ...(b ? [mapDecl(OWNER_MAPS.bucket, "mark")] : []),
    "counter unknown_master { }",
    "counter unknown_backup { }",
    ...(o.acceptModeDropsTo
      ? [
          "counter accept_mode_drops { }",
          // Accept_Mode False (RFC 9568 6.4.3): packets addressed to the virtual address
          // are not accepted. Input only: forwarding and ARP are untouched, and a backup
          // has no VIP configured, so the rule matters to the master alone.
          "chain accept_mode {",
          "  type filter hook input priority -200; policy accept;",
          `  ip daddr ${o.acceptModeDropsTo} counter name "accept_mode_drops" drop`,
          "}",
        ]
      : []),
    `chain ${ADMIT} {`,
    `  meta mark set mark or ${o.admitted} accept`,
    "}",
    `chain ${ENQUEUE} {`,
    `  meta mark set mark or ${o.queueMark} accept`,
    "}",
    ...(b
      ? [
          `chain ${ADMIT}_b {`,
          `  meta mark set ${o.admitted} accept`,
          "}",
          `chain ${ENQUEUE}_b {`,
          `  meta mark set ${o.queueMark} accept`,
          "}",
        ]
      : []),
    "chain classify {",
    "  type filter hook forward priority -200; policy accept;",
    `  iifname != "${o.macvlan}" accept`,
    `  ip saddr vmap @${OWNER_MAPS.address}`,
    `  ip saddr vmap @${OWNER_MAPS.prefix}`,
    ...(b
      ? [
          `  meta mark set jhash ${b.over === "src" ? "ip saddr" : "ip saddr . ip daddr"} mod ${b.count} seed 0x${b.seed.toString(16)}`,
          `  meta mark vmap @${OWNER_MAPS.bucket}`,
          "  meta mark set 0",
        ]
      : []),
    "  jump unknown",
    "}",
    "chain unknown {",
    '  counter name "unknown_backup" drop',
    "}",
  ].join("\n");
}

/** One element of the owner table as the kernel holds it. */
export interface OwnerElement {
  map: OwnerMap;
  /** The element: an address, a prefix, or a bucket's number. */
  element: string;
  kernelClass: KernelClass;
  packets: number;
  bytes: number;
}

/** Reads the owner table's elements from `nft -j list maps ip` (elements of other tables ignored). */
export function parseOwnerMaps(json: string, table: string): OwnerElement[] {
  const out: OwnerElement[] = [];
  const maps = parseMapsJson(json, { family: "ip", table });
  for (const name of Object.values(OWNER_MAPS)) {
    for (const e of maps.get(name) ?? ([] as MapElement[])) {
      const kernelClass = classOfVerdict(e.data);
      if (kernelClass === undefined) continue;
      out.push({
        map: name,
        element: e.value,
        kernelClass,
        packets: e.counter?.packets ?? 0,
        bytes: e.counter?.bytes ?? 0,
      });
    }
  }
  return out;
}
