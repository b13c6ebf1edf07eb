import { isIPv6 } from "node:net";
import { formatIpv6 } from "../wire/bytes.ts";

/** IPv4 helpers for the address plan (no dependency needed for these few lines of arithmetic). */
export interface Cidr {
  network: number;
  prefix: number;
}

export function ipToInt(address: string): number {
  const parts = address.split(".").map(Number);
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseCidr(cidr: string): Cidr {
  const [address, len] = cidr.split("/");
  const prefix = Number(len);
  return { network: (ipToInt(address ?? "0.0.0.0") & maskOf(prefix)) >>> 0, prefix };
}

export function cidrContains(cidr: Cidr, address: string): boolean {
  return (ipToInt(address) & maskOf(cidr.prefix)) >>> 0 === cidr.network;
}

// ---------- IPv6 ----------
// Parsing is hand-written on top of node:net's isIPv6 (which does the syntax check): the
// arithmetic needed here (contains, canonical text) is a dozen lines of BigInt.

/** The 128-bit value of an IPv6 address (any RFC 4291 text form, including embedded IPv4). */
export function ipv6ToBigInt(address: string): bigint {
  if (!isIPv6(address)) throw new Error(`not an IPv6 address: ${JSON.stringify(address)}`);
  let text = address.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipToInt(v4[1] as string);
    text = `${text.slice(0, v4.index)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

/** RFC 5952 canonical text (one implementation: lib/wire's formatIpv6). */
export function bigIntToIpv6(value: bigint): string {
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = Number((value >> BigInt((15 - i) * 8)) & 0xffn);
  return formatIpv6(bytes);
}

export function canonicalIpv6(address: string): string {
  return bigIntToIpv6(ipv6ToBigInt(address));
}

export interface Cidr6 {
  network: bigint;
  prefix: number;
}

function mask6(prefix: number): bigint {
  return prefix === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefix)) - 1n);
}

export function parseCidr6(cidr: string): Cidr6 {
  const [address, len] = cidr.split("/");
  const prefix = Number(len ?? 128);
  return { network: ipv6ToBigInt(address ?? "::") & mask6(prefix), prefix };
}

export function cidr6Contains(cidr: Cidr6, address: string): boolean {
  return (ipv6ToBigInt(address) & mask6(cidr.prefix)) === cidr.network;
}

/**
 * The only IPv6 space lab traffic may use: the documentation prefix (RFC 3849) and
 * link-local addresses (fe80::/10); ff02::/16 link-local multicast is not an interface address.
 */
export const LAB_IPV6_RANGES: readonly Cidr6[] = [parseCidr6("2001:db8::/32"), parseCidr6("fe80::/10")];

export function isLabIpv6(address: string): boolean {
  return LAB_IPV6_RANGES.some((r) => cidr6Contains(r, address));
}

export function isLinkLocalIpv6(address: string): boolean {
  return cidr6Contains(LAB_IPV6_RANGES[1] as Cidr6, address);
}

/** Which family a textual address or prefix (with or without /len) belongs to. */
export function familyOf(addressOrCidr: string): 4 | 6 {
  return addressOrCidr.includes(":") ? 6 : 4;
}
