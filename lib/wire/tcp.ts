import { ByteReader, ByteWriter } from "./bytes.ts";
import { internetChecksum, pseudoHeaderSum } from "./checksum.ts";
import { IP_PROTOCOL } from "./ipv4.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

export interface TcpFlags {
  fin: boolean;
  syn: boolean;
  rst: boolean;
  psh: boolean;
  ack: boolean;
  urg: boolean;
  ece: boolean;
  cwr: boolean;
}

/** TCP header (RFC 793/9293). Options are kept raw. */
export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: TcpFlags;
  window: number;
  urgentPointer: number;
  /** Raw option bytes, a multiple of 4, at most 40. */
  options: Uint8Array;
  payload: Uint8Array;
}

export interface DecodedTcp extends TcpSegment {
  dataOffset: number;
  checksum: number;
}

const FLAG_BITS: [keyof TcpFlags, number][] = [
  ["fin", 0x01],
  ["syn", 0x02],
  ["rst", 0x04],
  ["psh", 0x08],
  ["ack", 0x10],
  ["urg", 0x20],
  ["ece", 0x40],
  ["cwr", 0x80],
];

export function tcpFlagsFromByte(b: number): TcpFlags {
  const f = {} as TcpFlags;
  for (const [name, bit] of FLAG_BITS) f[name] = (b & bit) !== 0;
  return f;
}

export function tcpFlagsToByte(f: Partial<TcpFlags>): number {
  let b = 0;
  for (const [name, bit] of FLAG_BITS) if (f[name]) b |= bit;
  return b;
}

export function decodeTcp(bytes: Uint8Array): DecodeResult<DecodedTcp> {
  return guardDecode<DecodedTcp>(() => {
    const r = new ByteReader(bytes);
    const srcPort = r.u16("TCP source port");
    const dstPort = r.u16("TCP destination port");
    const seq = r.u32("TCP sequence number");
    const ack = r.u32("TCP acknowledgment number");
    const offRes = r.u8("TCP data offset");
    const dataOffset = (offRes >> 4) * 4;
    if (dataOffset < 20) r.fail(`TCP data offset ${offRes >> 4} below minimum 5`, 12);
    const flags = tcpFlagsFromByte(r.u8("TCP flags"));
    const window = r.u16("TCP window");
    const checksum = r.u16("TCP checksum");
    const urgentPointer = r.u16("TCP urgent pointer");
    const options = r.take(dataOffset - 20, "TCP options");
    return ok({
      srcPort,
      dstPort,
      seq,
      ack,
      flags,
      window,
      urgentPointer,
      options,
      payload: r.rest(),
      dataOffset,
      checksum,
    });
  });
}

export function encodeTcp(s: TcpSegment, src: string, dst: string): Uint8Array {
  if (s.options.length % 4 !== 0 || s.options.length > 40) {
    throw new Error(`TCP options must be a multiple of 4 bytes and at most 40, got ${s.options.length}`);
  }
  const headerLength = 20 + s.options.length;
  const out = new ByteWriter(headerLength + s.payload.length)
    .u16(s.srcPort)
    .u16(s.dstPort)
    .u32(s.seq)
    .u32(s.ack)
    .u8((headerLength / 4) << 4)
    .u8(tcpFlagsToByte(s.flags))
    .u16(s.window)
    .u16(0)
    .u16(s.urgentPointer)
    .bytes(s.options)
    .bytes(s.payload)
    .finish();
  const sum = internetChecksum(out, 0, out.length, pseudoHeaderSum(src, dst, IP_PROTOCOL.tcp, out.length));
  out[16] = sum >> 8;
  out[17] = sum & 0xff;
  return out;
}

export function tcpChecksumValid(segment: Uint8Array, src: string, dst: string): boolean {
  if (segment.length < 20) return false;
  return (
    internetChecksum(
      segment,
      0,
      segment.length,
      pseudoHeaderSum(src, dst, IP_PROTOCOL.tcp, segment.length),
    ) === 0
  );
}
