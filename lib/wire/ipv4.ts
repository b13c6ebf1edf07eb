import { ByteReader, ByteWriter } from "./bytes.ts";
import { internetChecksum } from "./checksum.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

export const IP_PROTOCOL = { icmp: 1, tcp: 6, udp: 17, vrrp: 112 } as const;

/** IPv4 header (RFC 791). Options are kept as raw bytes and otherwise skipped. */
export interface Ipv4Packet {
  /** Type of service byte (DSCP << 2 | ECN). */
  tos: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** In 8-byte units. */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  src: string;
  dst: string;
  /** Raw option bytes (length a multiple of 4, at most 40). Skipped, never interpreted. */
  options: Uint8Array;
  payload: Uint8Array;
}

export interface DecodedIpv4 extends Ipv4Packet {
  headerLength: number;
  totalLength: number;
  checksum: number;
  /** The header checksum verifies. Decoding does not reject a bad checksum; validators do. */
  checksumValid: boolean;
  /** Bytes after totalLength (Ethernet padding), ignored. */
  trailerLength: number;
}

export interface Ipv4DecodeOptions {
  /** Reject packets whose header carries options ("options rejected or skipped cleanly"). */
  rejectOptions?: boolean;
  /** Reject a bad header checksum instead of reporting checksumValid=false. */
  requireChecksum?: boolean;
}

export function decodeIpv4(bytes: Uint8Array, options: Ipv4DecodeOptions = {}): DecodeResult<DecodedIpv4> {
  return guardDecode(() => {
    const r = new ByteReader(bytes);
    const vihl = r.u8("IPv4 version/IHL");
    if (vihl >> 4 !== 4) r.fail(`not IPv4: version ${vihl >> 4}`, 0);
    const headerLength = (vihl & 0x0f) * 4;
    if (headerLength < 20) r.fail(`IPv4 IHL ${vihl & 0x0f} below minimum 5`, 0);
    const tos = r.u8("IPv4 TOS");
    const totalLength = r.u16("IPv4 total length");
    if (totalLength < headerLength)
      r.fail(`IPv4 total length ${totalLength} < header length ${headerLength}`, 2);
    if (totalLength > bytes.length) {
      r.fail(`IPv4 total length ${totalLength} exceeds the ${bytes.length} bytes received`, 2);
    }
    const identification = r.u16("IPv4 identification");
    const flagsFrag = r.u16("IPv4 flags/fragment offset");
    if (flagsFrag & 0x8000) r.fail("IPv4 reserved flag set", 6);
    const ttl = r.u8("IPv4 TTL");
    const protocol = r.u8("IPv4 protocol");
    const checksum = r.u16("IPv4 header checksum");
    const src = r.ipv4("IPv4 source");
    const dst = r.ipv4("IPv4 destination");
    const opts = r.take(headerLength - 20, "IPv4 options");
    if (opts.length > 0 && options.rejectOptions)
      r.fail("IPv4 options present (rejected by configuration)", 20);
    const checksumValid = internetChecksum(bytes, 0, headerLength) === 0;
    if (!checksumValid && options.requireChecksum) r.fail("bad IPv4 header checksum", 10);
    const payload = bytes.slice(headerLength, totalLength);
    return ok({
      tos,
      identification,
      dontFragment: (flagsFrag & 0x4000) !== 0,
      moreFragments: (flagsFrag & 0x2000) !== 0,
      fragmentOffset: flagsFrag & 0x1fff,
      ttl,
      protocol,
      src,
      dst,
      options: opts,
      payload,
      headerLength,
      totalLength,
      checksum,
      checksumValid,
      trailerLength: bytes.length - totalLength,
    });
  });
}

export type Ipv4Input = Partial<Omit<Ipv4Packet, "src" | "dst" | "protocol" | "payload">> &
  Pick<Ipv4Packet, "src" | "dst" | "protocol" | "payload">;

/** Encodes an IPv4 packet with a correct header checksum. Defaults: TTL 64, DF clear, no options. */
export function encodeIpv4(packet: Ipv4Input): Uint8Array {
  const options = packet.options ?? new Uint8Array(0);
  if (options.length % 4 !== 0 || options.length > 40) {
    throw new Error(`IPv4 options must be a multiple of 4 bytes and at most 40, got ${options.length}`);
  }
  const headerLength = 20 + options.length;
  const totalLength = headerLength + packet.payload.length;
  if (totalLength > 0xffff) throw new Error(`IPv4 packet too long: ${totalLength} bytes`);
  const w = new ByteWriter(totalLength);
  w.u8(0x40 | (headerLength / 4));
  w.u8(packet.tos ?? 0);
  w.u16(totalLength);
  w.u16(packet.identification ?? 0);
  w.u16(
    (packet.dontFragment ? 0x4000 : 0) |
      (packet.moreFragments ? 0x2000 : 0) |
      ((packet.fragmentOffset ?? 0) & 0x1fff),
  );
  w.u8(packet.ttl ?? 64);
  w.u8(packet.protocol);
  w.u16(0);
  w.ipv4(packet.src);
  w.ipv4(packet.dst);
  w.bytes(options);
  w.bytes(packet.payload);
  const out = w.finish();
  const sum = internetChecksum(out, 0, headerLength);
  out[10] = sum >> 8;
  out[11] = sum & 0xff;
  return out;
}
