import { ByteReader, ByteWriter } from "./bytes.ts";
import { internetChecksum, pseudoHeaderSum, pseudoHeaderSum6 } from "./checksum.ts";
import { IP_PROTOCOL } from "./ipv4.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

/**
 * VRRP version 2 (RFC 3768 section 5.3) and version 3 for IPv4 and IPv6 (RFC 9568
 * section 5.2, which obsoletes RFC 5798 with the same layout); seed 000 Fig. 3 is the
 * IPv4 layout. Over IPv6 the address list holds 16-byte addresses, the first being the
 * virtual router's link-local address, and the checksum covers the IPv6 pseudo-header. Bytes after the address list (v3) or after the
 * authentication data (v2) are returned as `extension` (the VRLS extension, lib/wire/vrls.ts).
 */
export const VRRP_MULTICAST = "224.0.0.18";
export const VRRP_TTL = 255;
export const VRRP_TYPE_ADVERTISEMENT = 1;

/** The virtual router MAC: 00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6 (RFC 9568 7.3). */
export function virtualMac(vrid: number, family: 4 | 6 = 4): string {
  return `00:00:5e:00:0${family === 6 ? 2 : 1}:${(vrid & 0xff).toString(16).padStart(2, "0")}`;
}

/**
 * How the VRRP checksum is computed. "rfc": v3 over the IPv4 pseudo-header + message
 * (RFC 5798 5.2.8), v2 over the message only (RFC 3768 5.3.8). "no-pseudo-header": v3
 * computed over the message only, as some vendors (and keepalived for unicast peers
 * with old_unicast_checksum) send it.
 */
export type VrrpChecksumMode = "rfc" | "no-pseudo-header";

interface VrrpCommon {
  type: number;
  vrid: number;
  priority: number;
  /** Addresses associated with the virtual router (seed Fig. 3: "IP Address"); IPv4 or IPv6 text. */
  addresses: string[];
  /** Address family of the list (default 4). Decoding sets it from the family asked for. */
  family?: 4 | 6;
  /** Bytes after the standard message (empty for a plain RFC advertisement). */
  extension: Uint8Array;
}

export interface Vrrp2Packet extends VrrpCommon {
  version: 2;
  /** 0 none, 1 simple text password, 2 IP authentication header (RFC 3768 5.3.6). */
  authType: number;
  /** Advertisement interval in seconds (RFC 3768 5.3.7). */
  adverIntSeconds: number;
  /** 8 bytes of authentication data (the password for auth type 1, zero padded). */
  authData: Uint8Array;
}

export interface Vrrp3Packet extends VrrpCommon {
  version: 3;
  /** Maximum advertisement interval in centiseconds, 12 bits (RFC 5798 5.2.7). */
  maxAdverIntCs: number;
}

export type VrrpPacket = Vrrp2Packet | Vrrp3Packet;

export type DecodedVrrp = VrrpPacket & {
  /** The raw "Count IPvX Addr" field. */
  count: number;
  checksum: number;
  /** Total VRRP message length in bytes (what the checksum covers). */
  length: number;
};

export interface VrrpChecksumContext {
  src: string;
  dst: string;
  mode?: VrrpChecksumMode;
}

/**
 * Decodes a VRRP message (the IPv4 or IPv6 payload; `family` says which, since the message
 * itself does not). Checksums are verified by vrrpChecksumMatches.
 */
export function decodeVrrp(bytes: Uint8Array, family: 4 | 6 = 4): DecodeResult<DecodedVrrp> {
  return guardDecode<DecodedVrrp>(() => {
    const r = new ByteReader(bytes);
    const vt = r.u8("VRRP version/type");
    const version = vt >> 4;
    const type = vt & 0x0f;
    if (version !== 2 && version !== 3) r.fail(`unsupported VRRP version ${version}`, 0);
    if (version === 2 && family === 6) r.fail("VRRP version 2 is IPv4 only (RFC 3768)", 0);
    const vrid = r.u8("VRRP VRID");
    const priority = r.u8("VRRP priority");
    const count = r.u8("VRRP address count");
    const word = r.u16(version === 2 ? "VRRP auth type/adver int" : "VRRP max adver int");
    const checksum = r.u16("VRRP checksum");
    const size = family === 6 ? 16 : 4;
    r.need(count * size, `VRRP address list (${count} IPv${family} addresses)`);
    const addresses: string[] = [];
    for (let i = 0; i < count; i++)
      addresses.push(family === 6 ? r.ipv6("VRRP address") : r.ipv4("VRRP address"));
    if (version === 2) {
      const authData = r.take(8, "VRRP v2 authentication data");
      const extension = r.rest();
      return ok({
        version: 2 as const,
        type,
        vrid,
        priority,
        addresses,
        family: 4 as const,
        extension,
        authType: word >> 8,
        adverIntSeconds: word & 0xff,
        authData,
        count,
        checksum,
        length: bytes.length,
      });
    }
    if (word & 0xf000) r.fail("VRRP v3 reserved bits set", 4);
    return ok({
      version: 3 as const,
      type,
      vrid,
      priority,
      addresses,
      family,
      extension: r.rest(),
      maxAdverIntCs: word & 0x0fff,
      count,
      checksum,
      length: bytes.length,
    });
  });
}

/** Computes the checksum of a VRRP message in place-independent form (checksum field taken as zero). */
export function vrrpChecksum(
  message: Uint8Array,
  version: 2 | 3,
  context: VrrpChecksumContext | undefined,
): number {
  const mode = context?.mode ?? "rfc";
  let initial = 0;
  if (version === 3 && mode === "rfc") {
    if (!context) throw new Error("VRRP v3 checksum needs the IP source and destination");
    initial = context.src.includes(":")
      ? pseudoHeaderSum6(context.src, context.dst, IP_PROTOCOL.vrrp, message.length)
      : pseudoHeaderSum(context.src, context.dst, IP_PROTOCOL.vrrp, message.length);
  }
  // Skip bytes 6-7 (the checksum field itself) instead of copying the message.
  const sum = internetChecksum(message, 0, 6, initial);
  return internetChecksum(message, 8, message.length, ~sum & 0xffff);
}

/** True when the checksum carried in `message` is right for the given mode. Never throws. */
export function vrrpChecksumMatches(message: Uint8Array, context: VrrpChecksumContext): boolean {
  if (message.length < 8) return false;
  const version = message[0]! >> 4;
  if (version !== 2 && version !== 3) return false;
  try {
    return vrrpChecksum(message, version, context) === ((message[6]! << 8) | message[7]!);
  } catch {
    return false;
  }
}

/** Which checksum variant a received message carries, or null when neither verifies. */
export function detectVrrpChecksumMode(
  message: Uint8Array,
  src: string,
  dst: string,
): VrrpChecksumMode | null {
  if (vrrpChecksumMatches(message, { src, dst, mode: "rfc" })) return "rfc";
  if (vrrpChecksumMatches(message, { src, dst, mode: "no-pseudo-header" })) return "no-pseudo-header";
  return null;
}

/**
 * Encodes a VRRP message. v3 needs the IP source/destination for the RFC checksum
 * (pass `context`); without context a v3 message is checksummed without pseudo-header.
 * The family is `packet.family`, else IPv6 when the context's source or the first address is.
 */
export function encodeVrrp(packet: VrrpPacket, context?: VrrpChecksumContext): Uint8Array {
  const family = packet.family ?? (context?.src.includes(":") || packet.addresses[0]?.includes(":") ? 6 : 4);
  if (family === 6 && packet.version === 2) throw new Error("VRRP version 2 is IPv4 only (RFC 3768)");
  if (packet.addresses.length > 255)
    throw new Error(`VRRP: at most 255 addresses, got ${packet.addresses.length}`);
  checkByte("VRRP type", packet.type, 15);
  checkByte("VRRP VRID", packet.vrid, 255);
  checkByte("VRRP priority", packet.priority, 255);
  const w = new ByteWriter(16 + packet.addresses.length * 16 + packet.extension.length);
  w.u8((packet.version << 4) | packet.type);
  w.u8(packet.vrid);
  w.u8(packet.priority);
  w.u8(packet.addresses.length);
  if (packet.version === 2) {
    checkByte("VRRP auth type", packet.authType, 255);
    checkByte("VRRP adver int", packet.adverIntSeconds, 255);
    w.u8(packet.authType);
    w.u8(packet.adverIntSeconds);
  } else {
    checkByte("VRRP max adver int (centiseconds)", packet.maxAdverIntCs, 0x0fff);
    w.u16(packet.maxAdverIntCs);
  }
  w.u16(0);
  for (const a of packet.addresses) {
    if (family === 6) w.ipv6(a);
    else w.ipv4(a);
  }
  if (packet.version === 2) {
    if (packet.authData.length > 8)
      throw new Error(`VRRP v2 auth data is 8 bytes, got ${packet.authData.length}`);
    w.bytes(packet.authData);
    w.zeros(8 - packet.authData.length);
  }
  w.bytes(packet.extension);
  const out = w.finish();
  const ctx =
    context ??
    (packet.version === 3
      ? { src: family === 6 ? "::" : "0.0.0.0", dst: "0.0.0.0", mode: "no-pseudo-header" as const }
      : undefined);
  const sum = vrrpChecksum(out, packet.version, ctx);
  out[6] = sum >> 8;
  out[7] = sum & 0xff;
  return out;
}

/** RFC 3768 simple text password, zero padded to 8 bytes. */
export function vrrpPasswordAuthData(password: string): Uint8Array {
  const bytes = new TextEncoder().encode(password);
  if (bytes.length > 8) throw new Error(`VRRP v2 password is at most 8 bytes, got ${bytes.length}`);
  const out = new Uint8Array(8);
  out.set(bytes);
  return out;
}

/** Advertisement interval of a decoded packet in milliseconds, whatever the version. */
export function vrrpIntervalMs(packet: VrrpPacket): number {
  return packet.version === 2 ? packet.adverIntSeconds * 1000 : packet.maxAdverIntCs * 10;
}

function checkByte(field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new Error(`${field} must be an integer 0..${max}, got ${value}`);
  }
}
