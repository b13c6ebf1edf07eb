/**
 * TCP segments on the wire before and after the virtual router: from a capture of what
 * the end systems sent (the LAN side, e.g. a member's macvlan, which receives every frame
 * to the virtual MAC on a hub) and a capture on the far segment (what the members
 * forwarded), count per connection the segments never forwarded (lost) and those
 * forwarded more than once (duplicated). A segment is (source, ports, sequence number,
 * IP ID, length), so a retransmission is a new segment, never a duplicate. The traffic
 * library's analyzer covers tagged UDP; this covers the TCP streams of the hand-off tests.
 */
import type { PcapReader } from "../../traffic/pcap-reader.ts";
import { decodeEthernet, ETHERTYPE } from "../../wire/ethernet.ts";
import { decodeIpv4, IP_PROTOCOL } from "../../wire/ipv4.ts";
import { decodeTcp } from "../../wire/tcp.ts";

export interface TcpWireResult {
  connections: number;
  /** Segments with payload seen on the LAN side. */
  sent: number;
  forwarded: number;
  lost: number;
  duplicated: number;
  /** Bare ACKs/SYN/FIN are counted too but reported apart (they are not the stream's data). */
  control: { sent: number; lost: number; duplicated: number };
  /** Forwarded copies per source MAC on the far side (attribution). */
  byMac: Record<string, number>;
}

async function segments(
  reader: PcapReader,
  dstPort: number,
  withMac: boolean,
): Promise<Map<string, { n: number; data: boolean; macs: string[] }>> {
  const out = new Map<string, { n: number; data: boolean; macs: string[] }>();
  for await (const rec of reader) {
    const eth = decodeEthernet(rec.data);
    if (!eth.ok || eth.value.etherType !== ETHERTYPE.ipv4) continue;
    const ip = decodeIpv4(eth.value.payload);
    if (!ip.ok || ip.value.protocol !== IP_PROTOCOL.tcp) continue;
    const tcp = decodeTcp(ip.value.payload);
    if (!tcp.ok || tcp.value.dstPort !== dstPort) continue;
    const len = tcp.value.payload.length;
    const key = `${ip.value.src}:${tcp.value.srcPort} ${tcp.value.seq} ${ip.value.identification} ${len}`;
    const e = out.get(key) ?? { n: 0, data: len > 0, macs: [] };
    e.n++;
    if (withMac) e.macs.push(eth.value.src);
    out.set(key, e);
  }
  return out;
}

export async function compareTcpWire(
  lanSide: PcapReader,
  farSide: PcapReader,
  dstPort: number,
): Promise<TcpWireResult> {
  const sent = await segments(lanSide, dstPort, false);
  const fwd = await segments(farSide, dstPort, true);
  const r: TcpWireResult = {
    connections: 0,
    sent: 0,
    forwarded: 0,
    lost: 0,
    duplicated: 0,
    control: { sent: 0, lost: 0, duplicated: 0 },
    byMac: {},
  };
  const conns = new Set<string>();
  for (const [key, s] of sent) {
    conns.add(key.split(" ")[0] ?? "");
    const f = fwd.get(key);
    const bucket = s.data ? r : r.control;
    bucket.sent++;
    if (!f) bucket.lost++;
    else if (f.n > 1) bucket.duplicated += f.n - 1;
  }
  for (const f of fwd.values()) {
    if (f.data) r.forwarded += f.n;
    for (const m of f.macs) r.byMac[m] = (r.byMac[m] ?? 0) + 1;
  }
  r.connections = conns.size;
  return r;
}
