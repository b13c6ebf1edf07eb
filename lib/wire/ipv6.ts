import { ByteReader, ByteWriter, formatIpv6, parseIpv6 } from "./bytes.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

/** Next-header values used in the lab (IANA "Assigned Internet Protocol Numbers"). */
export const IPV6_NEXT_HEADER = { hopByHop: 0, tcp: 6, udp: 17, icmpv6: 58, vrrp: 112 } as const;

/** All-VRRP-routers link-local multicast group (RFC 9568 5.1.2.2). */
export const VRRP_MULTICAST_V6 = "ff02::12";
export const ALL_NODES_V6 = "ff02::1";

/**
 * The IPv6 fixed header (RFC 8200 section 3). Extension headers are not walked: `nextHeader`
 * is the fixed header's field and `payload` everything after the 40 bytes (up to the
 * payload length). VRRP and Neighbor Discovery never carry extension headers, so a packet
 * that has one is simply not VRRP/ND to the validators (they check `nextHeader`).
 */
export interface Ipv6Packet {
  trafficClass: number;
  /** 20 bits. */
  flowLabel: number;
  nextHeader: number;
  hopLimit: number;
  src: string;
  dst: string;
  payload: Uint8Array;
}

export interface DecodedIpv6 extends Ipv6Packet {
  payloadLength: number;
  /** Bytes after the payload (Ethernet padding), ignored. */
  trailerLength: number;
}

export function decodeIpv6(bytes: Uint8Array): DecodeResult<DecodedIpv6> {
  return guardDecode<DecodedIpv6>(() => {
    const r = new ByteReader(bytes);
    const word = r.u32("IPv6 version/traffic class/flow label");
    if (word >>> 28 !== 6) r.fail(`not IPv6: version ${word >>> 28}`, 0);
    const payloadLength = r.u16("IPv6 payload length");
    const nextHeader = r.u8("IPv6 next header");
    const hopLimit = r.u8("IPv6 hop limit");
    const src = r.ipv6("IPv6 source");
    const dst = r.ipv6("IPv6 destination");
    if (payloadLength > r.remaining) {
      r.fail(`IPv6 payload length ${payloadLength} exceeds the ${r.remaining} bytes after the header`, 4);
    }
    const payload = r.take(payloadLength, "IPv6 payload");
    return ok({
      trafficClass: (word >>> 20) & 0xff,
      flowLabel: word & 0xfffff,
      nextHeader,
      hopLimit,
      src,
      dst,
      payload,
      payloadLength,
      trailerLength: r.remaining,
    });
  });
}

export type Ipv6Input = Partial<Pick<Ipv6Packet, "trafficClass" | "flowLabel" | "hopLimit">> &
  Pick<Ipv6Packet, "src" | "dst" | "nextHeader" | "payload">;

/** Encodes an IPv6 packet (no extension headers). Default hop limit 64. */
export function encodeIpv6(packet: Ipv6Input): Uint8Array {
  if (packet.payload.length > 0xffff)
    throw new Error(`IPv6 payload too long: ${packet.payload.length} bytes`);
  const tc = packet.trafficClass ?? 0;
  const flow = packet.flowLabel ?? 0;
  if (tc < 0 || tc > 0xff) throw new Error(`IPv6 traffic class must be 0..255, got ${tc}`);
  if (flow < 0 || flow > 0xfffff) throw new Error(`IPv6 flow label must be 0..0xfffff, got ${flow}`);
  return new ByteWriter(40 + packet.payload.length)
    .u32(((6 << 28) | (tc << 20) | flow) >>> 0)
    .u16(packet.payload.length)
    .u8(packet.nextHeader)
    .u8(packet.hopLimit ?? 64)
    .ipv6(packet.src)
    .ipv6(packet.dst)
    .bytes(packet.payload)
    .finish();
}

/** The Ethernet multicast MAC of an IPv6 multicast group (RFC 2464 section 7): 33:33 + low 32 bits. */
export function ipv6MulticastMac(group: string): string {
  const b = parseIpv6(group);
  return ["33", "33", ...[12, 13, 14, 15].map((i) => b[i]!.toString(16).padStart(2, "0"))].join(":");
}

/** The solicited-node multicast group of an address (RFC 4291 section 2.7.1): ff02::1:ffXX:XXXX. */
export function solicitedNodeMulticast(address: string): string {
  const b = parseIpv6(address);
  const out = parseIpv6("ff02::1:ff00:0");
  out[13] = b[13]!;
  out[14] = b[14]!;
  out[15] = b[15]!;
  return formatIpv6(out);
}

/** fe80::/10 */
export function isLinkLocalV6(address: string): boolean {
  const b = parseIpv6(address);
  return b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}
