import type { PcapRecord } from "../../traffic/pcap-reader.ts";

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
