import { parseIpv6, writeIpv4 } from "./bytes.ts";

/**
 * The Internet checksum (RFC 1071), the only implementation in the project: IPv4
 * header, ICMP, UDP, TCP and VRRP all use it. Hand-written because it is twelve lines
 * and every codec needs it on Uint8Array without a dependency.
 *
 * `sumWords` returns the unfolded 32-bit-ish partial sum so a pseudo-header can be added.
 */
export function sumWords(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  // Fold periodically is unnecessary: 2^53 headroom covers any packet.
  return sum;
}

export function foldChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

export function internetChecksum(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  return foldChecksum(sumWords(bytes, start, end, initial));
}

/** Partial sum of the IPv4 pseudo-header (RFC 768/793; RFC 5798 section 5.2.8 for VRRP). */
const pseudoScratch = new Uint8Array(8);

export function pseudoHeaderSum(src: string, dst: string, protocol: number, length: number): number {
  const s = pseudoScratch;
  const d = pseudoScratch.subarray(4);
  if (!writeIpv4(src, s, 0) || !writeIpv4(dst, s, 4)) {
    throw new Error(`invalid IPv4 address in pseudo-header: ${JSON.stringify(src)} / ${JSON.stringify(dst)}`);
  }
  return (
    ((s[0]! << 8) | s[1]!) +
    ((s[2]! << 8) | s[3]!) +
    ((d[0]! << 8) | d[1]!) +
    ((d[2]! << 8) | d[3]!) +
    protocol +
    length
  );
}

/**
 * Partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source, destination,
 * upper-layer length (32 bits) and next header. ICMPv6 and VRRP over IPv6 (RFC 9568 5.2.8) use it.
 */
export function pseudoHeaderSum6(src: string, dst: string, nextHeader: number, length: number): number {
  const s = parseIpv6(src);
  const d = parseIpv6(dst);
  let sum = 0;
  for (let i = 0; i < 16; i += 2) sum += ((s[i]! << 8) | s[i + 1]!) + ((d[i]! << 8) | d[i + 1]!);
  return sum + (length >>> 16) + (length & 0xffff) + nextHeader;
}
