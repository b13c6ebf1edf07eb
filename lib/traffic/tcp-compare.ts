/**
 * TCP segments on the wire on both sides of a device under test: which segments the
 * device lost or duplicated between two capture points. One module, two identities of
 * "the same segment", because the two systems treat segments differently:
 * - a router (VRLS, {@link compareTcpWire}) rewrites nothing above Ethernet, so a segment is
 *   (source, ports, sequence number, IP ID, length);
 * - a NAT balancer (NAT-LB, {@link compareCaptures}) rewrites addresses and ports, so a
 *   segment is (direction, ack, TSval, TSecr) weighed by its payload bytes.
 */
/**
 * TCP segments on the wire before and after the virtual router: from a capture of what
 * the end systems sent (the LAN side, e.g. a member's macvlan, which receives every frame
 * to the virtual MAC on a hub) and a capture on the far segment (what the members
 * forwarded), count per connection the segments never forwarded (lost) and those
 * forwarded more than once (duplicated). A segment is (source, ports, sequence number,
 * IP ID, length), so a retransmission is a new segment, never a duplicate. The traffic
 * library's analyzer covers tagged UDP; this covers the TCP streams of the hand-off tests.
 */

import { decodeEthernet, ETHERTYPE } from "../wire/ethernet.ts";
import { decodeIpv4, IP_PROTOCOL } from "../wire/ipv4.ts";
import { decodeTcp } from "../wire/tcp.ts";
import type { PcapReader, PcapRecord } from "./pcap-reader.ts";

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

/**
 * Did the balancers lose or duplicate a packet? Two captures of the same TCP traffic,
 * one on the clients' side of the balancers (the external segment) and one on the
 * server's side, are matched segment by segment. NAT rewrites addresses and ports but
 * never sequence numbers, acknowledgements or TCP timestamps. A sender's segment is
 * identified by (direction, ack, TSval, TSecr) and weighed by its payload bytes (1 for a
 * segment without payload): a GSO super-packet captured before the balancer may leave
 * it as several wire-sized segments (NFQUEUE segments what it holds), which carry the
 * same ack and timestamps and the same bytes in total. A TCP retransmission carries a
 * new TSval, so it is a packet of its own: what this counts is what the path between
 * the two capture points dropped or doubled, in bytes (or bare segments).
 */
export interface Segment {
  tsMs: number;
  /** "c2s" (towards the servers) or "s2c". */
  dir: "c2s" | "s2c";
  id: string;
  /** Payload bytes, or 1 for a segment without payload. */
  weight: number;
}

export interface WireCheck {
  /** Bytes (bare segments count 1) sent, and how many of them did not arrive or arrived twice. */
  c2s: { sent: number; lost: number; duplicated: number };
  s2c: { sent: number; lost: number; duplicated: number };
  /** Frames that were not IPv4/TCP or too short (not counted). */
  ignored: number;
  examples: string[];
}

/** Parses an Ethernet/IPv4/TCP frame into a segment identity; `towardsServer` classifies direction. */
export function segmentOf(
  rec: PcapRecord,
  towardsServer: (src: string, dst: string) => boolean | undefined,
): Segment | undefined {
  const d = rec.data;
  if (d.length < 14 + 20 + 20) return undefined;
  const etherType = ((d[12] ?? 0) << 8) | (d[13] ?? 0);
  if (etherType !== 0x0800) return undefined;
  const ip = 14;
  const ihl = ((d[ip] ?? 0) & 0x0f) * 4;
  if ((d[ip + 9] ?? 0) !== 6 || ihl < 20) return undefined;
  const totalLength = ((d[ip + 2] ?? 0) << 8) | (d[ip + 3] ?? 0);
  const src = `${d[ip + 12]}.${d[ip + 13]}.${d[ip + 14]}.${d[ip + 15]}`;
  const dst = `${d[ip + 16]}.${d[ip + 17]}.${d[ip + 18]}.${d[ip + 19]}`;
  const dirC2s = towardsServer(src, dst);
  if (dirC2s === undefined) return undefined;
  const t = ip + ihl;
  if (d.length < t + 20) return undefined;
  const u32 = (o: number) =>
    (((d[o] ?? 0) << 24) | ((d[o + 1] ?? 0) << 16) | ((d[o + 2] ?? 0) << 8) | (d[o + 3] ?? 0)) >>> 0;
  const ack = u32(t + 8);
  const dataOffset = ((d[t + 12] ?? 0) >> 4) * 4;
  const payload = totalLength - ihl - dataOffset;
  let tsval = 0;
  let tsecr = 0;
  // TCP options: find the timestamp option (kind 8, length 10).
  for (let o = t + 20; o < Math.min(t + dataOffset, d.length); ) {
    const kind = d[o] ?? 0;
    if (kind === 0) break;
    if (kind === 1) {
      o++;
      continue;
    }
    const len = d[o + 1] ?? 0;
    if (len < 2) break;
    if (kind === 8 && len === 10 && o + 10 <= d.length) {
      tsval = u32(o + 2);
      tsecr = u32(o + 6);
    }
    o += len;
  }
  const dir = dirC2s ? "c2s" : "s2c";
  return { tsMs: rec.tsMs, dir, id: `${dir} ${ack} ${tsval} ${tsecr}`, weight: payload > 0 ? payload : 1 };
}

/**
 * Compares the segments seen at the two points. A c2s segment is sent at `outer` and must
 * arrive at `inner`; an s2c segment the other way. Only segments sent inside
 * [from, to] are judged (a capture's edges cut flows in half).
 */
export function compareCaptures(
  outer: Segment[],
  inner: Segment[],
  window: { from: number; to: number },
): WireCheck {
  const count = (list: Segment[], dir: Segment["dir"]) => {
    const m = new Map<string, { n: number; first: number }>();
    for (const s of list) {
      if (s.dir !== dir) continue;
      const e = m.get(s.id);
      if (e) e.n += s.weight;
      else m.set(s.id, { n: s.weight, first: s.tsMs });
    }
    return m;
  };
  const examples: string[] = [];
  const judge = (sentAt: Segment[], arrivedAt: Segment[], dir: Segment["dir"]) => {
    const sent = count(sentAt, dir);
    const arrived = count(arrivedAt, dir);
    let n = 0;
    let lost = 0;
    let duplicated = 0;
    for (const [id, s] of sent) {
      if (s.first < window.from || s.first > window.to) continue;
      n += s.n;
      const a = arrived.get(id)?.n ?? 0;
      if (a < s.n) {
        lost += s.n - a;
        if (examples.length < 10) examples.push(`lost ${id}`);
      }
      if (a > s.n) {
        duplicated += a - s.n;
        if (examples.length < 10) examples.push(`duplicated ${id}`);
      }
    }
    return { sent: n, lost, duplicated };
  };
  return { c2s: judge(outer, inner, "c2s"), s2c: judge(inner, outer, "s2c"), ignored: 0, examples };
}
