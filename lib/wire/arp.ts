import { ByteReader, ByteWriter } from "./bytes.ts";
import { BROADCAST_MAC, ETHERTYPE, encodeEthernet } from "./ethernet.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

/** ARP for IPv4 over Ethernet (RFC 826). */
export interface ArpPacket {
  /** 1 request, 2 reply. */
  operation: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

export function decodeArp(bytes: Uint8Array): DecodeResult<ArpPacket> {
  return guardDecode<ArpPacket>(() => {
    const r = new ByteReader(bytes);
    const htype = r.u16("ARP hardware type");
    const ptype = r.u16("ARP protocol type");
    const hlen = r.u8("ARP hardware length");
    const plen = r.u8("ARP protocol length");
    if (htype !== 1 || ptype !== ETHERTYPE.ipv4 || hlen !== 6 || plen !== 4) {
      r.fail(
        `ARP not Ethernet/IPv4 (htype ${htype}, ptype 0x${ptype.toString(16)}, hlen ${hlen}, plen ${plen})`,
        0,
      );
    }
    const operation = r.u16("ARP operation");
    return ok({
      operation,
      senderMac: r.mac("ARP sender MAC"),
      senderIp: r.ipv4("ARP sender IP"),
      targetMac: r.mac("ARP target MAC"),
      targetIp: r.ipv4("ARP target IP"),
    });
  });
}

export function encodeArp(packet: ArpPacket): Uint8Array {
  return new ByteWriter(28)
    .u16(1)
    .u16(ETHERTYPE.ipv4)
    .u8(6)
    .u8(4)
    .u16(packet.operation)
    .mac(packet.senderMac)
    .ipv4(packet.senderIp)
    .mac(packet.targetMac)
    .ipv4(packet.targetIp)
    .finish();
}

/** Gratuitous ARP: sender and target IP are the same address (RFC 5227 announcement / RFC 5798 8.1.1). */
export function isGratuitousArp(packet: ArpPacket): boolean {
  return packet.senderIp === packet.targetIp;
}

/**
 * A gratuitous ARP frame announcing `ip` at `mac`, as VRRP masters send on takeover:
 * broadcast, operation request (the form most hosts act on), target MAC zero.
 */
export function gratuitousArpFrame(mac: string, ip: string, operation: 1 | 2 = 1): Uint8Array {
  const arp = encodeArp({
    operation,
    senderMac: mac,
    senderIp: ip,
    targetMac: operation === 1 ? "00:00:00:00:00:00" : BROADCAST_MAC,
    targetIp: ip,
  });
  return encodeEthernet({ dst: BROADCAST_MAC, src: mac, etherType: ETHERTYPE.arp, payload: arp }, true);
}
