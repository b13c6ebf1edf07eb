import {
  BROADCAST_MAC,
  ETHERTYPE,
  encodeArp,
  encodeEthernet,
  encodeIcmp,
  encodeIpv4,
  encodeIpv6,
  encodeUdp,
  encodeVrrp,
  ICMP_TYPE,
  IP_PROTOCOL,
  IPV6_NEXT_HEADER,
  internetChecksum,
  ipv6MulticastMac,
  pseudoHeaderSum6,
  VRRP_MULTICAST,
  VRRP_MULTICAST_V6,
  type VrrpPacket,
  vrrpChecksum,
} from "../../lib/wire/index.ts";

/** Frames the tester sends, built with lib/wire's encoders; the malformed ones on purpose. */

/** The Ethernet multicast address of 224.0.0.18 (RFC 1112 mapping). */
export const VRRP_MULTICAST_MAC = "01:00:5e:00:00:12";

/**
 * An IPv6 packet (IPv6 when the source is) or an IPv4 one in an Ethernet frame. IPv6: hop
 * limit from `ttl`, no extension headers.
 */
function ipFrame(o: {
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  protocol: number;
  ttl: number;
  tos?: number;
  payload: Uint8Array;
}): Uint8Array {
  if (o.src.includes(":")) {
    const ip = encodeIpv6({
      src: o.src,
      dst: o.dst,
      nextHeader: o.protocol,
      hopLimit: o.ttl,
      payload: o.payload,
    });
    return encodeEthernet({ dst: o.dstMac, src: o.srcMac, etherType: ETHERTYPE.ipv6, payload: ip }, true);
  }
  const ip = encodeIpv4({ src: o.src, dst: o.dst, protocol: o.protocol, ttl: o.ttl, payload: o.payload });
  return encodeEthernet({ dst: o.dstMac, src: o.srcMac, etherType: ETHERTYPE.ipv4, payload: ip }, true);
}

export interface AdvertOptions {
  srcMac: string;
  srcIp: string;
  vrid: number;
  priority: number;
  addresses: string[];
  /** v3: centiseconds; v2: seconds. */
  interval: number;
  version?: 2 | 3;
  ttl?: number;
  /** Corruptions for the receive-check cases (RFC 5798 7.1). */
  corrupt?: "checksum" | "truncate";
}

export function advertFrame(o: AdvertOptions): Uint8Array {
  const version = o.version ?? 3;
  const v6 = o.srcIp.includes(":");
  const dst = v6 ? VRRP_MULTICAST_V6 : VRRP_MULTICAST;
  const packet: VrrpPacket =
    version === 3 || v6
      ? {
          version: 3,
          type: 1,
          vrid: o.vrid,
          priority: o.priority,
          addresses: o.addresses,
          extension: new Uint8Array(0),
          maxAdverIntCs: o.interval,
        }
      : {
          version: 2,
          type: 1,
          vrid: o.vrid,
          priority: o.priority,
          addresses: o.addresses,
          extension: new Uint8Array(0),
          authType: 0,
          adverIntSeconds: o.interval,
          authData: new Uint8Array(8),
        };
  let vrrp = encodeVrrp(packet, { src: o.srcIp, dst, mode: "rfc" });
  const resum = () => {
    vrrp[6] = 0;
    vrrp[7] = 0;
    const sum = vrrpChecksum(vrrp, 3, { src: o.srcIp, dst, mode: "rfc" });
    vrrp[6] = sum >> 8;
    vrrp[7] = sum & 0xff;
  };
  if (v6 && version === 2) {
    // VRRPv2 does not exist over IPv6 (RFC 3768 is IPv4 only): a v3 message whose version
    // field says 2, checksummed as v3, so only the version is wrong.
    vrrp[0] = (2 << 4) | 1;
    resum();
  }
  if (o.corrupt === "checksum") {
    vrrp[7] = (vrrp[7]! ^ 0x5a) & 0xff;
  } else if (o.corrupt === "truncate") {
    // The header says `count` addresses follow but the message stops after 8 bytes; the
    // checksum is recomputed over what is sent, so only the length is wrong.
    vrrp = vrrp.slice(0, 8);
    vrrp[6] = 0;
    vrrp[7] = 0;
    const sum = vrrpChecksum(vrrp, version, { src: o.srcIp, dst, mode: "rfc" });
    vrrp[6] = sum >> 8;
    vrrp[7] = sum & 0xff;
  }
  return ipFrame({
    srcMac: o.srcMac,
    dstMac: v6 ? ipv6MulticastMac(VRRP_MULTICAST_V6) : VRRP_MULTICAST_MAC,
    src: o.srcIp,
    dst,
    protocol: IP_PROTOCOL.vrrp,
    ttl: o.ttl ?? 255,
    payload: vrrp,
  });
}

export function arpRequestFrame(srcMac: string, srcIp: string, targetIp: string): Uint8Array {
  const arp = encodeArp({
    operation: 1,
    senderMac: srcMac,
    senderIp: srcIp,
    targetMac: "00:00:00:00:00:00",
    targetIp,
  });
  return encodeEthernet({ dst: BROADCAST_MAC, src: srcMac, etherType: ETHERTYPE.arp, payload: arp }, true);
}

/** A UDP datagram addressed at L2 to `dstMac` (the virtual MAC) and at L3 to a far host (either family). */
export function udpFrame(o: {
  srcMac: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
  dstPort: number;
  seq: number;
}): Uint8Array {
  const payload = new Uint8Array(16);
  new DataView(payload.buffer).setUint32(0, o.seq);
  let udp: Uint8Array;
  if (o.srcIp.includes(":")) {
    udp = encodeUdp({ srcPort: 40_000, dstPort: o.dstPort, payload }, "0.0.0.0", "0.0.0.0");
    udp[6] = 0;
    udp[7] = 0;
    const sum =
      internetChecksum(udp, 0, udp.length, pseudoHeaderSum6(o.srcIp, o.dstIp, IP_PROTOCOL.udp, udp.length)) ||
      0xffff;
    udp[6] = sum >> 8;
    udp[7] = sum & 0xff;
  } else udp = encodeUdp({ srcPort: 40_000, dstPort: o.dstPort, payload }, o.srcIp, o.dstIp);
  return ipFrame({
    srcMac: o.srcMac,
    dstMac: o.dstMac,
    src: o.srcIp,
    dst: o.dstIp,
    protocol: IP_PROTOCOL.udp,
    ttl: 64,
    payload: udp,
  });
}

/** ICMPv6 echo request / reply (RFC 4443). */
export const ICMPV6_ECHO = { request: 128, reply: 129 } as const;

/**
 * An ICMP echo request (ICMPv6 when the source is IPv6) addressed at L2 to `dstMac` (the
 * virtual MAC) and at L3 to `dstIp` (the VIP).
 */
export function echoRequestFrame(o: {
  srcMac: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
  identifier: number;
  sequence: number;
}): Uint8Array {
  const data = new Uint8Array(32).fill(0x5a);
  const v6 = o.srcIp.includes(":");
  let icmp: Uint8Array;
  if (v6) {
    icmp = new Uint8Array(8 + data.length);
    const view = new DataView(icmp.buffer);
    icmp[0] = ICMPV6_ECHO.request;
    view.setUint16(4, o.identifier);
    view.setUint16(6, o.sequence);
    icmp.set(data, 8);
    const sum = internetChecksum(
      icmp,
      0,
      icmp.length,
      pseudoHeaderSum6(o.srcIp, o.dstIp, IPV6_NEXT_HEADER.icmpv6, icmp.length),
    );
    view.setUint16(2, sum);
  } else
    icmp = encodeIcmp({
      type: ICMP_TYPE.echoRequest,
      code: 0,
      identifier: o.identifier,
      sequence: o.sequence,
      data,
    });
  return ipFrame({
    srcMac: o.srcMac,
    dstMac: o.dstMac,
    src: o.srcIp,
    dst: o.dstIp,
    protocol: v6 ? IPV6_NEXT_HEADER.icmpv6 : IP_PROTOCOL.icmp,
    ttl: 64,
    payload: icmp,
  });
}
