import { ByteReader, ByteWriter, formatMac, parseMac } from "./bytes.ts";
import { internetChecksum, pseudoHeaderSum6 } from "./checksum.ts";
import { ETHERTYPE, encodeEthernet } from "./ethernet.ts";
import {
  ALL_NODES_V6,
  encodeIpv6,
  IPV6_NEXT_HEADER,
  ipv6MulticastMac,
  solicitedNodeMulticast,
} from "./ipv6.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

/**
 * ICMPv6 (RFC 4443) Neighbor Solicitation and Neighbor Advertisement (RFC 4861 sections
 * 4.3, 4.4), the two messages a VRRP router over IPv6 needs (RFC 9568 6.4.2, 8.1.2).
 * Options are kept as type + raw value so unknown ones round-trip; the link-layer address
 * options (1 source, 2 target) have accessors.
 */
export const ICMPV6_TYPE = { neighborSolicitation: 135, neighborAdvertisement: 136 } as const;
export const ND_OPTION = { sourceLinkLayer: 1, targetLinkLayer: 2 } as const;

export interface NdOption {
  type: number;
  /** The option's bytes after type and length; its length is 8*k - 2 (k >= 1). */
  value: Uint8Array;
}

interface NdCommon {
  code: number;
  target: string;
  options: NdOption[];
}

export interface NeighborSolicitation extends NdCommon {
  type: 135;
}

export interface NeighborAdvertisement extends NdCommon {
  type: 136;
  router: boolean;
  solicited: boolean;
  override: boolean;
}

export type NdMessage = NeighborSolicitation | NeighborAdvertisement;
export type DecodedNd = NdMessage & { checksum: number };

export function decodeNeighborDiscovery(bytes: Uint8Array): DecodeResult<DecodedNd> {
  return guardDecode<DecodedNd>(() => {
    const r = new ByteReader(bytes);
    const type = r.u8("ICMPv6 type");
    if (type !== 135 && type !== 136)
      r.fail(`ICMPv6 type ${type} is not a Neighbor Solicitation/Advertisement`, 0);
    const code = r.u8("ICMPv6 code");
    const checksum = r.u16("ICMPv6 checksum");
    const flags = r.u32(type === 136 ? "NA flags" : "NS reserved");
    const target = r.ipv6("ND target address");
    const options: NdOption[] = [];
    while (r.remaining > 0) {
      const at = r.offset;
      const optType = r.u8("ND option type");
      const units = r.u8("ND option length");
      if (units === 0) r.fail("ND option length 0 (RFC 4861 4.6: MUST be discarded)", at + 1);
      options.push({ type: optType, value: r.take(units * 8 - 2, `ND option ${optType}`) });
    }
    const common = { code, target, options, checksum };
    if (type === 135) return ok({ type: 135 as const, ...common });
    return ok({
      type: 136 as const,
      router: (flags & 0x80000000) !== 0,
      solicited: (flags & 0x40000000) !== 0,
      override: (flags & 0x20000000) !== 0,
      ...common,
    });
  });
}

/** Encodes NS/NA with the checksum over the IPv6 pseudo-header of `src` -> `dst`. */
export function encodeNeighborDiscovery(message: NdMessage, src: string, dst: string): Uint8Array {
  const w = new ByteWriter(24 + message.options.reduce((n, o) => n + o.value.length + 2, 0));
  w.u8(message.type).u8(message.code).u16(0);
  if (message.type === 136) {
    w.u32(
      ((message.router ? 0x80000000 : 0) |
        (message.solicited ? 0x40000000 : 0) |
        (message.override ? 0x20000000 : 0)) >>>
        0,
    );
  } else {
    w.u32(0);
  }
  w.ipv6(message.target);
  for (const o of message.options) {
    if ((o.value.length + 2) % 8 !== 0 || o.value.length + 2 > 255 * 8)
      throw new Error(`ND option ${o.type}: value must be 8*k-2 bytes (k 1..255), got ${o.value.length}`);
    w.u8(o.type)
      .u8((o.value.length + 2) / 8)
      .bytes(o.value);
  }
  const out = w.finish();
  const sum = icmpv6Checksum(out, src, dst);
  out[2] = sum >> 8;
  out[3] = sum & 0xff;
  return out;
}

/** The ICMPv6 checksum of `message` (its checksum field taken as zero). */
export function icmpv6Checksum(message: Uint8Array, src: string, dst: string): number {
  const initial = pseudoHeaderSum6(src, dst, IPV6_NEXT_HEADER.icmpv6, message.length);
  const sum = internetChecksum(message, 0, 2, initial);
  return internetChecksum(message, 4, message.length, ~sum & 0xffff);
}

export function icmpv6ChecksumMatches(message: Uint8Array, src: string, dst: string): boolean {
  if (message.length < 4) return false;
  try {
    return icmpv6Checksum(message, src, dst) === ((message[2]! << 8) | message[3]!);
  } catch {
    return false;
  }
}

export function linkLayerOption(mac: string, type: 1 | 2): NdOption {
  return { type, value: parseMac(mac) };
}

/** The MAC carried in a source (1) or target (2) link-layer address option, if any. */
export function ndLinkLayerAddress(message: NdMessage, type: 1 | 2): string | undefined {
  const o = message.options.find((x) => x.type === type && x.value.length >= 6);
  return o ? formatMac(o.value) : undefined;
}

/**
 * An unsolicited Neighbor Advertisement as a VRRP master sends on takeover (RFC 9568 6.4.2,
 * RFC 4861 7.2.6): to all-nodes, hop limit 255, Router flag as given, Solicited clear,
 * Override set, target link-layer option = the virtual MAC.
 */
export function unsolicitedNaFrame(options: {
  mac: string;
  src: string;
  target: string;
  router?: boolean;
}): Uint8Array {
  const na: NeighborAdvertisement = {
    type: 136,
    code: 0,
    router: options.router ?? true,
    solicited: false,
    override: true,
    target: options.target,
    options: [linkLayerOption(options.mac, 2)],
  };
  const payload = encodeNeighborDiscovery(na, options.src, ALL_NODES_V6);
  const ip = encodeIpv6({
    src: options.src,
    dst: ALL_NODES_V6,
    nextHeader: IPV6_NEXT_HEADER.icmpv6,
    hopLimit: 255,
    payload,
  });
  return encodeEthernet({
    dst: ipv6MulticastMac(ALL_NODES_V6),
    src: options.mac,
    etherType: ETHERTYPE.ipv6,
    payload: ip,
  });
}

/** A Neighbor Solicitation for `target` to its solicited-node group, with a source link-layer option. */
export function neighborSolicitationFrame(options: { mac: string; src: string; target: string }): Uint8Array {
  const dst = solicitedNodeMulticast(options.target);
  const ns: NeighborSolicitation = {
    type: 135,
    code: 0,
    target: options.target,
    options: [linkLayerOption(options.mac, 1)],
  };
  const payload = encodeNeighborDiscovery(ns, options.src, dst);
  const ip = encodeIpv6({
    src: options.src,
    dst,
    nextHeader: IPV6_NEXT_HEADER.icmpv6,
    hopLimit: 255,
    payload,
  });
  return encodeEthernet({
    dst: ipv6MulticastMac(dst),
    src: options.mac,
    etherType: ETHERTYPE.ipv6,
    payload: ip,
  });
}
