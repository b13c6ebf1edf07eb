// The few header fields the hold queue keys on (addresses, ports, TCP sequence
// numbers) and a packet identity. lib/wire has the full codecs; this reader is
// deliberately tiny because it runs for every queued packet. It never throws.

export type DecodeResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { offset: number; reason: string } };

export interface TcpFields {
  seq: number;
  ack: number;
  /** Flag bits: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20. */
  flags: number;
  /** Bytes of TCP payload (what the sequence space advances by, plus 1 for SYN/FIN). */
  payloadLength: number;
}

export interface PacketSummary {
  version: 4 | 6;
  src: string;
  dst: string;
  /** IP protocol / IPv6 next header (6 TCP, 17 UDP, 1 ICMP, ...). */
  protocol: number;
  /** Total length of the IP packet as the header states it. */
  length: number;
  srcPort?: number;
  dstPort?: number;
  tcp?: TcpFields;
  /** "proto src:sport>dst:dport" (ports omitted when the protocol has none, or in a non-first fragment). */
  flow: string;
}

function fail<T>(offset: number, reason: string): DecodeResult<T> {
  return { ok: false, error: { offset, reason } };
}

function ipv4Text(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function ipv6Text(b: Uint8Array, o: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++)
    groups.push((((b[o + 2 * i] ?? 0) << 8) | (b[o + 2 * i + 1] ?? 0)).toString(16));
  // RFC 5952: compress the longest run (>= 2) of zero groups.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLen).join(":")}`;
}

/** Reads addresses, protocol, ports and TCP sequence fields of an IPv4/IPv6 packet. */
export function summarizePacket(b: Uint8Array): DecodeResult<PacketSummary> {
  if (b.length < 1) return fail(0, "empty packet");
  const version = (b[0] ?? 0) >> 4;
  let src: string;
  let dst: string;
  let protocol: number;
  let l4: number;
  let length: number;
  let firstFragment = true;
  if (version === 4) {
    if (b.length < 20) return fail(0, `IPv4 header needs 20 bytes, have ${b.length}`);
    const ihl = ((b[0] ?? 0) & 0x0f) * 4;
    if (ihl < 20 || ihl > b.length) return fail(0, `bad IPv4 header length ${ihl}`);
    length = ((b[2] ?? 0) << 8) | (b[3] ?? 0);
    if (length < ihl) return fail(2, `IPv4 total length ${length} < header length ${ihl}`);
    firstFragment = ((((b[6] ?? 0) & 0x1f) << 8) | (b[7] ?? 0)) === 0;
    protocol = b[9] ?? 0;
    src = ipv4Text(b, 12);
    dst = ipv4Text(b, 16);
    l4 = ihl;
  } else if (version === 6) {
    if (b.length < 40) return fail(0, `IPv6 header needs 40 bytes, have ${b.length}`);
    length = 40 + (((b[4] ?? 0) << 8) | (b[5] ?? 0));
    protocol = b[6] ?? 0;
    src = ipv6Text(b, 8);
    dst = ipv6Text(b, 24);
    l4 = 40; // extension headers are not walked: such packets get ports undefined
  } else {
    return fail(0, `IP version ${version}`);
  }
  const summary: PacketSummary = { version, src, dst, protocol, length, flow: "" };
  const hasPorts =
    firstFragment && (protocol === 6 || protocol === 17 || protocol === 132 || protocol === 136);
  if (hasPorts && b.length >= l4 + 4) {
    summary.srcPort = ((b[l4] ?? 0) << 8) | (b[l4 + 1] ?? 0);
    summary.dstPort = ((b[l4 + 2] ?? 0) << 8) | (b[l4 + 3] ?? 0);
  }
  if (protocol === 6 && firstFragment && b.length >= l4 + 20) {
    const dataOffset = ((b[l4 + 12] ?? 0) >> 4) * 4;
    const seq =
      (((b[l4 + 4] ?? 0) << 24) | ((b[l4 + 5] ?? 0) << 16) | ((b[l4 + 6] ?? 0) << 8) | (b[l4 + 7] ?? 0)) >>>
      0;
    const ack =
      (((b[l4 + 8] ?? 0) << 24) | ((b[l4 + 9] ?? 0) << 16) | ((b[l4 + 10] ?? 0) << 8) | (b[l4 + 11] ?? 0)) >>>
      0;
    const flags = (b[l4 + 13] ?? 0) & 0x3f;
    summary.tcp = { seq, ack, flags, payloadLength: Math.max(0, length - l4 - dataOffset) };
  }
  summary.flow =
    summary.srcPort === undefined
      ? `${protocol} ${src}>${dst}`
      : `${protocol} ${src}:${summary.srcPort}>${dst}:${summary.dstPort}`;
  return { ok: true, value: summary };
}

// 32-bit mixing steps of MurmurHash3 (public domain), run as two lanes with different
// seeds to get 64 bits without BigInt arithmetic; hand-written because it runs per
// packet and node:crypto's digests cost an object and a copy each.
function mix(h: number, k: number): number {
  let x = Math.imul(k, 0xcc9e2d51);
  x = (x << 15) | (x >>> 17);
  x = Math.imul(x, 0x1b873593);
  let y = h ^ x;
  y = (y << 13) | (y >>> 19);
  return (Math.imul(y, 5) + 0xe6546b64) | 0;
}

function finish(h: number, length: number): number {
  let x = h ^ length;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * 64-bit identity of an IP packet as received, as 16 hex digits. The fields a router
 * changes when it forwards (IPv4 TTL and header checksum, IPv6 hop limit) are hashed as
 * zero, so the identity is the same whether it is computed in prerouting (TTL as sent)
 * or in forward (TTL already decremented), on any member that saw the same frame, and at
 * the receiver. Everything else counts: addresses (hash before NAT), IP ID, ports,
 * sequence numbers, payload. Two byte-identical packets have the same identity.
 */
export function packetIdentity(b: Uint8Array): string {
  const version = (b[0] ?? 0) >> 4;
  let h1 = 0x9747b28c;
  let h2 = 0x2545f491;
  const words = b.length >>> 2;
  for (let w = 0; w < words; w++) {
    const o = w << 2;
    let k = ((b[o] ?? 0) << 24) | ((b[o + 1] ?? 0) << 16) | ((b[o + 2] ?? 0) << 8) | (b[o + 3] ?? 0);
    if (version === 4 && w === 2)
      k &= 0x00ff0000; // TTL | protocol | checksum -> protocol only
    else if (version === 6 && w === 1) k &= 0xffffff00; // payload length | next header | hop limit
    h1 = mix(h1, k);
    h2 = mix(h2, k ^ 0x5bd1e995);
  }
  let tail = 0;
  for (let i = words << 2; i < b.length; i++) tail = (tail << 8) | (b[i] ?? 0);
  if (b.length & 3) {
    h1 = mix(h1, tail);
    h2 = mix(h2, tail ^ 0x5bd1e995);
  }
  return (
    finish(h1, b.length).toString(16).padStart(8, "0") + finish(h2, b.length).toString(16).padStart(8, "0")
  );
}
