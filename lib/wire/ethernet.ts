import { ByteReader, ByteWriter } from "./bytes.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

export const ETHERTYPE = { ipv4: 0x0800, arp: 0x0806, vlan: 0x8100, ipv6: 0x86dd } as const;
export const BROADCAST_MAC = "ff:ff:ff:ff:ff:ff";

/** Ethernet II frame (no FCS), with an optional single 802.1Q tag. */
export interface EthernetFrame {
  dst: string;
  src: string;
  /** 802.1Q VLAN id when the frame is tagged. */
  vlan?: { id: number; priority: number };
  etherType: number;
  payload: Uint8Array;
}

export function decodeEthernet(bytes: Uint8Array): DecodeResult<EthernetFrame> {
  return guardDecode<EthernetFrame>(() => {
    const r = new ByteReader(bytes);
    const dst = r.mac("Ethernet destination");
    const src = r.mac("Ethernet source");
    let etherType = r.u16("EtherType");
    if (etherType < 0x0600) r.fail(`802.3 length field ${etherType} (only Ethernet II is supported)`, 12);
    if (etherType === ETHERTYPE.vlan) {
      const tci = r.u16("802.1Q TCI");
      etherType = r.u16("inner EtherType");
      return ok({ dst, src, vlan: { id: tci & 0x0fff, priority: tci >> 13 }, etherType, payload: r.rest() });
    }
    return ok({ dst, src, etherType, payload: r.rest() });
  });
}

/** Encodes a frame; pads to the 60-byte minimum only when `pad` is set (the kernel pads on send). */
export function encodeEthernet(frame: EthernetFrame, pad = false): Uint8Array {
  const w = new ByteWriter(18 + frame.payload.length);
  w.mac(frame.dst).mac(frame.src);
  if (frame.vlan) {
    if (frame.vlan.id < 0 || frame.vlan.id > 4095)
      throw new Error(`VLAN id must be 0..4095, got ${frame.vlan.id}`);
    w.u16(ETHERTYPE.vlan).u16(((frame.vlan.priority & 7) << 13) | frame.vlan.id);
  }
  w.u16(frame.etherType).bytes(frame.payload);
  if (pad && w.length < 60) w.zeros(60 - w.length);
  return w.finish();
}
