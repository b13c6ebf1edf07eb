import { ByteReader, ByteWriter } from "./bytes.ts";
import { internetChecksum } from "./checksum.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

/**
 * ICMP for IPv4 (RFC 792). Echo (0/8), timestamp (13/14) and information request/reply
 * (15/16, seed 000 Fig. 8B: end-system discovery) carry identifier + sequence number;
 * other types keep the 4 "rest of header" bytes raw.
 */
export const ICMP_TYPE = {
  echoReply: 0,
  destinationUnreachable: 3,
  echoRequest: 8,
  timeExceeded: 11,
  timestamp: 13,
  timestampReply: 14,
  informationRequest: 15,
  informationReply: 16,
} as const;

const ID_SEQ_TYPES = new Set([0, 8, 13, 14, 15, 16]);

export type IcmpMessage =
  | {
      type: number;
      code: number;
      identifier: number;
      sequence: number;
      data: Uint8Array;
      restOfHeader?: never;
    }
  | {
      type: number;
      code: number;
      restOfHeader: number;
      data: Uint8Array;
      identifier?: never;
      sequence?: never;
    };

export type DecodedIcmp = IcmpMessage & { checksum: number; checksumValid: boolean };

export function icmpHasIdentifier(type: number): boolean {
  return ID_SEQ_TYPES.has(type);
}

export function decodeIcmp(bytes: Uint8Array): DecodeResult<DecodedIcmp> {
  return guardDecode<DecodedIcmp>(() => {
    const r = new ByteReader(bytes);
    const type = r.u8("ICMP type");
    const code = r.u8("ICMP code");
    const checksum = r.u16("ICMP checksum");
    r.need(4, "ICMP rest of header");
    const checksumValid = internetChecksum(bytes) === 0;
    if (ID_SEQ_TYPES.has(type)) {
      const identifier = r.u16("ICMP identifier");
      const sequence = r.u16("ICMP sequence");
      return ok({ type, code, identifier, sequence, data: r.rest(), checksum, checksumValid });
    }
    const restOfHeader = r.u32("ICMP rest of header");
    return ok({ type, code, restOfHeader, data: r.rest(), checksum, checksumValid });
  });
}

export function encodeIcmp(m: IcmpMessage): Uint8Array {
  const w = new ByteWriter(8 + m.data.length).u8(m.type).u8(m.code).u16(0);
  if (m.identifier !== undefined) {
    if (!ID_SEQ_TYPES.has(m.type)) throw new Error(`ICMP type ${m.type} has no identifier/sequence`);
    w.u16(m.identifier).u16(m.sequence);
  } else {
    if (ID_SEQ_TYPES.has(m.type)) throw new Error(`ICMP type ${m.type} needs identifier and sequence`);
    w.u32(m.restOfHeader);
  }
  const out = w.bytes(m.data).finish();
  const sum = internetChecksum(out);
  out[2] = sum >> 8;
  out[3] = sum & 0xff;
  return out;
}
