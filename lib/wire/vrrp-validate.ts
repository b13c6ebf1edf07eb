import { type DecodedIpv4, decodeIpv4, IP_PROTOCOL } from "./ipv4.ts";
import { type DecodedIpv6, decodeIpv6, IPV6_NEXT_HEADER, isLinkLocalV6, VRRP_MULTICAST_V6 } from "./ipv6.ts";
import { type DecodedVrrp, decodeVrrp, type VrrpChecksumMode, vrrpChecksumMatches } from "./vrrp.ts";

/**
 * Receive checks of RFC 9568 section 7.1 (v3 over IPv4 and IPv6; RFC 5798 7.1 said the
 * same for v3) and RFC 3768 section 7.1 (v2), kept apart from decoding so a role can count
 * drops per exact reason.
 */
export type VrrpRejectReason =
  | "not-ipv4"
  | "not-ipv6"
  | "hop-limit-not-255"
  | "not-vrrp"
  | "ttl-not-255"
  | "bad-version"
  | "bad-length"
  | "bad-checksum"
  | "unknown-type"
  | "unknown-vrid"
  | "auth-mismatch"
  | "interval-mismatch"
  | "address-mismatch";

export interface VrrpReceiveConfig {
  /** The version this router speaks (2 or 3). */
  version: 2 | 3;
  /** VRIDs configured on the receiving interface. */
  vrids: ReadonlySet<number> | readonly number[];
  checksumMode?: VrrpChecksumMode;
  /** Types accepted (default: only 1, the RFC advertisement). VRLS members accept 1..10. */
  acceptedTypes?: readonly number[];
  /** v2: the configured auth type (0 none, 1 simple password) and its 8-byte data. */
  authType?: number;
  authData?: Uint8Array;
  /** v2: the configured advertisement interval in seconds (RFC 3768: MUST match). */
  adverIntSeconds?: number;
  /**
   * The configured virtual addresses per VRID. RFC 3768: a mismatch from a sender that is
   * not the address owner (priority != 255) MUST be dropped; RFC 5798 only logs it, so
   * for v3 this check applies only when `strictAddresses` is set.
   */
  addresses?: ReadonlyMap<number, readonly string[]>;
  strictAddresses?: boolean;
}

export type VrrpRejection = { ok: false; reason: VrrpRejectReason; detail: string };
export type VrrpValidation = { ok: true; ip: DecodedIpv4; vrrp: DecodedVrrp } | VrrpRejection;
export type Vrrp6Validation = { ok: true; ip: DecodedIpv6; vrrp: DecodedVrrp } | VrrpRejection;

function reject(reason: VrrpRejectReason, detail: string): VrrpRejection {
  return { ok: false, reason, detail };
}

/**
 * Validates a received IPv6 packet carrying VRRPv3 (RFC 9568 7.1): next header 112, hop
 * limit 255, version, complete message with 16-byte addresses, checksum over the IPv6
 * pseudo-header, type, VRID. What a *sender* must do beyond that (link-local source,
 * ff02::12, first address link-local) is not a receive check in the RFC; see
 * vrrpIpv6SenderProblems.
 */
export function validateVrrp6Packet(ipBytes: Uint8Array, config: VrrpReceiveConfig): Vrrp6Validation {
  const ipResult = decodeIpv6(ipBytes);
  if (!ipResult.ok) return reject("not-ipv6", `${ipResult.error.reason} (offset ${ipResult.error.offset})`);
  const ip = ipResult.value;
  if (ip.nextHeader !== IPV6_NEXT_HEADER.vrrp) return reject("not-vrrp", `IPv6 next header ${ip.nextHeader}`);
  if (ip.hopLimit !== 255) return reject("hop-limit-not-255", `hop limit ${ip.hopLimit}`);
  if (config.version !== 3) return reject("bad-version", "VRRP over IPv6 is version 3 only");
  const checked = checkMessage(ip.payload, ip.src, ip.dst, 6, config);
  return checked.ok ? { ok: true, ip, vrrp: checked.vrrp } : checked;
}

/**
 * What RFC 9568 requires of a VRRPv3 advertisement over IPv6 on the sending side (5.1.2,
 * 5.2.9): link-local source, destination ff02::12, hop limit 255, at least one address and
 * the first one link-local. Empty when conformant.
 */
export function vrrpIpv6SenderProblems(ip: DecodedIpv6, vrrp: DecodedVrrp): string[] {
  const problems: string[] = [];
  if (!isLinkLocalV6(ip.src)) problems.push(`source ${ip.src} is not link-local (RFC 9568 5.1.2.1)`);
  if (ip.dst !== VRRP_MULTICAST_V6) problems.push(`destination ${ip.dst} is not ff02::12 (RFC 9568 5.1.2.2)`);
  if (ip.hopLimit !== 255) problems.push(`hop limit ${ip.hopLimit}, not 255 (RFC 9568 5.1.2.3)`);
  const first = vrrp.addresses[0];
  if (first === undefined) problems.push("no address (RFC 9568 5.2.5: at least one)");
  else if (!isLinkLocalV6(first))
    problems.push(`first address ${first} is not the link-local virtual address (RFC 9568 5.2.9)`);
  return problems;
}

/** Validates a received IPv4 packet carrying VRRP; returns the decoded packet or the exact reason. */
export function validateVrrpPacket(ipBytes: Uint8Array, config: VrrpReceiveConfig): VrrpValidation {
  const ipResult = decodeIpv4(ipBytes);
  if (!ipResult.ok) return reject("not-ipv4", `${ipResult.error.reason} (offset ${ipResult.error.offset})`);
  const ip = ipResult.value;
  if (ip.protocol !== IP_PROTOCOL.vrrp) return reject("not-vrrp", `IP protocol ${ip.protocol}`);
  if (ip.ttl !== 255) return reject("ttl-not-255", `TTL ${ip.ttl}`);
  return validateVrrpMessage(ip, config);
}

/** Validation once the IPv4 header is decoded (for callers that already have it). */
export function validateVrrpMessage(ip: DecodedIpv4, config: VrrpReceiveConfig): VrrpValidation {
  if (ip.ttl !== 255) return reject("ttl-not-255", `TTL ${ip.ttl}`);
  const checked = checkMessage(ip.payload, ip.src, ip.dst, 4, config);
  return checked.ok ? { ok: true, ip, vrrp: checked.vrrp } : checked;
}

/** The checks common to both families, from the VRRP version on. */
function checkMessage(
  message: Uint8Array,
  src: string,
  dst: string,
  family: 4 | 6,
  config: VrrpReceiveConfig,
): { ok: true; vrrp: DecodedVrrp } | VrrpRejection {
  if (message.length < 1) return reject("bad-length", "empty VRRP message");
  const version = message[0]! >> 4;
  if (version !== config.version)
    return reject("bad-version", `version ${version}, expected ${config.version}`);
  const decoded = decodeVrrp(message, family);
  if (!decoded.ok) {
    return reject("bad-length", `${decoded.error.reason} (offset ${decoded.error.offset})`);
  }
  const vrrp = decoded.value;
  const acceptedTypes = config.acceptedTypes ?? [1];
  // A standard v2 message has no trailing bytes; extra bytes on a type-1 v2 packet are a length error.
  if (vrrp.version === 2 && vrrp.type === 1 && vrrp.extension.length > 0) {
    return reject("bad-length", `${vrrp.extension.length} bytes after the v2 authentication data`);
  }
  if (!vrrpChecksumMatches(message, { src, dst, mode: config.checksumMode ?? "rfc" })) {
    return reject("bad-checksum", `checksum 0x${vrrp.checksum.toString(16).padStart(4, "0")}`);
  }
  if (!acceptedTypes.includes(vrrp.type)) return reject("unknown-type", `type ${vrrp.type}`);
  const vrids = config.vrids;
  const known = "has" in vrids ? vrids.has(vrrp.vrid) : vrids.includes(vrrp.vrid);
  if (!known) return reject("unknown-vrid", `VRID ${vrrp.vrid}`);
  if (vrrp.version === 2) {
    const authType = config.authType ?? 0;
    if (vrrp.authType !== authType) {
      return reject("auth-mismatch", `auth type ${vrrp.authType}, configured ${authType}`);
    }
    if (authType === 1) {
      const expected = config.authData ?? new Uint8Array(8);
      if (!equalPadded(vrrp.authData, expected)) return reject("auth-mismatch", "password differs");
    }
    if (config.adverIntSeconds !== undefined && vrrp.adverIntSeconds !== config.adverIntSeconds) {
      return reject(
        "interval-mismatch",
        `advertisement interval ${vrrp.adverIntSeconds}s, configured ${config.adverIntSeconds}s`,
      );
    }
  }
  const configured = config.addresses?.get(vrrp.vrid);
  const enforce = vrrp.version === 2 ? vrrp.priority !== 255 : config.strictAddresses === true;
  if (configured && enforce && vrrp.type === 1 && !sameAddressSet(configured, vrrp.addresses)) {
    return reject(
      "address-mismatch",
      `addresses ${vrrp.addresses.join(",")}, configured ${configured.join(",")}`,
    );
  }
  return { ok: true, vrrp };
}

function equalPadded(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 8; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return false;
  return true;
}

function sameAddressSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((x) => set.has(x));
}
