import {
  BROADCAST_MAC,
  ETHERTYPE,
  encodeArp,
  encodeEthernet,
  encodeIcmp,
  encodeIpv4,
  encodeUdp,
  encodeVrrp,
  ICMP_TYPE,
  IP_PROTOCOL,
  VRRP_MULTICAST,
  type VrrpPacket,
  vrrpChecksum,
} from "../../lib/wire/index.ts";

/** Frames the tester sends, built with lib/wire's encoders; the malformed ones on purpose. */

/** The Ethernet multicast address of 224.0.0.18 (RFC 1112 mapping). */
export const VRRP_MULTICAST_MAC = "01:00:5e:00:00:12";

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
  const packet: VrrpPacket =
    version === 3
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
  let vrrp = encodeVrrp(packet, { src: o.srcIp, dst: VRRP_MULTICAST, mode: "rfc" });
  if (o.corrupt === "checksum") {
    vrrp[7] = (vrrp[7]! ^ 0x5a) & 0xff;
  } else if (o.corrupt === "truncate") {
    // The header says `count` addresses follow but the message stops after 8 bytes; the
    // checksum is recomputed over what is sent, so only the length is wrong.
    vrrp = vrrp.slice(0, 8);
    vrrp[6] = 0;
    vrrp[7] = 0;
    const sum = vrrpChecksum(vrrp, version, { src: o.srcIp, dst: VRRP_MULTICAST, mode: "rfc" });
    vrrp[6] = sum >> 8;
    vrrp[7] = sum & 0xff;
  }
  const ip = encodeIpv4({
    src: o.srcIp,
    dst: VRRP_MULTICAST,
    protocol: IP_PROTOCOL.vrrp,
    ttl: o.ttl ?? 255,
    payload: vrrp,
  });
  return encodeEthernet(
    { dst: VRRP_MULTICAST_MAC, src: o.srcMac, etherType: ETHERTYPE.ipv4, payload: ip },
    true,
  );
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

/** A UDP datagram addressed at L2 to `dstMac` (the virtual MAC) and at L3 to a far host. */
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
  const udp = encodeUdp({ srcPort: 40_000, dstPort: o.dstPort, payload }, o.srcIp, o.dstIp);
  const ip = encodeIpv4({ src: o.srcIp, dst: o.dstIp, protocol: IP_PROTOCOL.udp, ttl: 64, payload: udp });
  return encodeEthernet({ dst: o.dstMac, src: o.srcMac, etherType: ETHERTYPE.ipv4, payload: ip }, true);
}

/** An ICMP echo request addressed at L2 to `dstMac` (the virtual MAC) and at L3 to `dstIp` (the VIP). */
export function echoRequestFrame(o: {
  srcMac: string;
  dstMac: string;
  srcIp: string;
  dstIp: string;
  identifier: number;
  sequence: number;
}): Uint8Array {
  const icmp = encodeIcmp({
    type: ICMP_TYPE.echoRequest,
    code: 0,
    identifier: o.identifier,
    sequence: o.sequence,
    data: new Uint8Array(32).fill(0x5a),
  });
  const ip = encodeIpv4({ src: o.srcIp, dst: o.dstIp, protocol: IP_PROTOCOL.icmp, ttl: 64, payload: icmp });
  return encodeEthernet({ dst: o.dstMac, src: o.srcMac, etherType: ETHERTYPE.ipv4, payload: ip }, true);
}
