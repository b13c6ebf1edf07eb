import { ByteReader, ByteWriter } from "./bytes.ts";
import { internetChecksum, pseudoHeaderSum } from "./checksum.ts";
import { IP_PROTOCOL } from "./ipv4.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

/** UDP (RFC 768). */
export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export interface DecodedUdp extends UdpDatagram {
  length: number;
  checksum: number;
}

export function decodeUdp(bytes: Uint8Array): DecodeResult<DecodedUdp> {
  return guardDecode<DecodedUdp>(() => {
    const r = new ByteReader(bytes);
    const srcPort = r.u16("UDP source port");
    const dstPort = r.u16("UDP destination port");
    const length = r.u16("UDP length");
    const checksum = r.u16("UDP checksum");
    if (length < 8) r.fail(`UDP length ${length} < 8`, 4);
    if (length > bytes.length) r.fail(`UDP length ${length} exceeds the ${bytes.length} bytes received`, 4);
    return ok({ srcPort, dstPort, length, checksum, payload: bytes.slice(8, length) });
  });
}

/** Encodes with the pseudo-header checksum (0 transmitted as 0xffff, RFC 768). */
export function encodeUdp(d: UdpDatagram, src: string, dst: string): Uint8Array {
  const length = 8 + d.payload.length;
  if (length > 0xffff) throw new Error(`UDP datagram too long: ${length}`);
  const out = new ByteWriter(length)
    .u16(d.srcPort)
    .u16(d.dstPort)
    .u16(length)
    .u16(0)
    .bytes(d.payload)
    .finish();
  const sum =
    internetChecksum(out, 0, out.length, pseudoHeaderSum(src, dst, IP_PROTOCOL.udp, length)) || 0xffff;
  out[6] = sum >> 8;
  out[7] = sum & 0xff;
  return out;
}

/** True when the checksum verifies, or is 0 (not computed by the sender). */
export function udpChecksumValid(datagram: Uint8Array, src: string, dst: string): boolean {
  if (datagram.length < 8) return false;
  if (datagram[6] === 0 && datagram[7] === 0) return true;
  return (
    internetChecksum(
      datagram,
      0,
      datagram.length,
      pseudoHeaderSum(src, dst, IP_PROTOCOL.udp, datagram.length),
    ) === 0
  );
}
