/**
 * Packet conditions (the seed's "packet condition for defining the routing
 * object"): which packets a member of the virtual router forwards. Initially one
 * condition per end system (seed, Initial Operation); also address prefixes and
 * hash buckets over the source (or source and destination) address, which the
 * kernel evaluates with `jhash ... mod N seed S` (see jhash.ts).
 */
import { cidrContains, intToIp, ipToInt, maskOf, parseCidr } from "../../topology/address.ts";
import { nftJhashBucket } from "./jhash.ts";

export type Condition =
  | { kind: "address"; address: string }
  | { kind: "prefix"; network: string; length: number }
  | { kind: "bucket"; over: "src" | "src+dst"; index: number; of: number; seed: number };

/** A stable text key for a condition, used in tables, maps and messages. */
export function conditionKey(c: Condition): string {
  switch (c.kind) {
    case "address":
      return c.address;
    case "prefix":
      return `${c.network}/${c.length}`;
    case "bucket":
      return `${c.over}#${c.index}/${c.of}@${c.seed}`;
  }
}

export function parseConditionKey(key: string): Condition | undefined {
  const bucket = /^(src|src\+dst)#(\d+)\/(\d+)@(\d+)$/.exec(key);
  if (bucket) {
    const [, over, index, of, seed] = bucket;
    const c: Condition = {
      kind: "bucket",
      over: over as "src" | "src+dst",
      index: Number(index),
      of: Number(of),
      seed: Number(seed),
    };
    return c.index < c.of && c.of > 0 ? c : undefined;
  }
  const ip = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(key);
  if (!ip) return undefined;
  if (ip.slice(1, 5).some((o) => Number(o) > 255)) return undefined;
  const address = ip.slice(1, 5).join(".");
  if (ip[5] === undefined) return { kind: "address", address };
  const length = Number(ip[5]);
  if (length > 32) return undefined;
  return { kind: "prefix", network: intToIp((ipToInt(address) & maskOf(length)) >>> 0), length };
}

function addressBytes(address: string): Uint8Array {
  const n = ipToInt(address);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

/** The hash bucket the kernel assigns (nft `jhash ip saddr [. ip daddr] mod N seed S`). */
export function bucketOf(
  over: "src" | "src+dst",
  src: string,
  dst: string,
  of: number,
  seed: number,
): number {
  const data = over === "src" ? addressBytes(src) : Uint8Array.of(...addressBytes(src), ...addressBytes(dst));
  return nftJhashBucket(data, of, seed);
}

export function conditionMatches(c: Condition, src: string, dst: string): boolean {
  switch (c.kind) {
    case "address":
      return c.address === src;
    case "prefix":
      return cidrContains(parseCidr(`${c.network}/${c.length}`), src);
    case "bucket":
      return bucketOf(c.over, src, dst, c.of, c.seed) === c.index;
  }
}

/** All bucket conditions of one hashing scheme. */
export function bucketConditions(over: "src" | "src+dst", of: number, seed: number): Condition[] {
  return Array.from({ length: of }, (_, index) => ({ kind: "bucket", over, index, of, seed }) as const);
}

/** Sort order for deterministic allocation: addresses numerically, then prefixes, then buckets. */
export function compareConditions(a: Condition, b: Condition): number {
  const rank = (c: Condition) => (c.kind === "address" ? 0 : c.kind === "prefix" ? 1 : 2);
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  if (a.kind === "address" && b.kind === "address") return ipToInt(a.address) - ipToInt(b.address);
  if (a.kind === "prefix" && b.kind === "prefix")
    return ipToInt(a.network) - ipToInt(b.network) || a.length - b.length;
  if (a.kind === "bucket" && b.kind === "bucket") return a.index - b.index;
  return 0;
}
