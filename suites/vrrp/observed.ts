import { PcapReader } from "../../lib/traffic/pcap-reader.ts";
import type { Timeline } from "../../lib/traffic/stream-tally.ts";
import {
  type ArpPacket,
  type DecodedIpv4,
  type DecodedVrrp,
  decodeArp,
  decodeEthernet,
  decodeIcmp,
  decodeIpv4,
  decodeVrrp,
  ETHERTYPE,
  IP_PROTOCOL,
  vrrpChecksumMatches,
} from "../../lib/wire/index.ts";

/** What the tester saw on the wire, decoded with lib/wire (never throws: bad frames are counted). */
export interface SeenAdvert {
  tsMs: number;
  srcMac: string;
  dstMac: string;
  ip: DecodedIpv4;
  vrrp: DecodedVrrp;
  checksumOk: boolean;
}
export interface SeenArp {
  tsMs: number;
  srcMac: string;
  dstMac: string;
  arp: ArpPacket;
}
export interface SeenUdp {
  tsMs: number;
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
}
/** An ICMP message (Accept_Mode cases: echo requests to the VIP and what answers them). */
export interface SeenIcmp {
  tsMs: number;
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  type: number;
  code: number;
  /** Echo and echo reply only. */
  identifier?: number;
  sequence?: number;
}
export interface Observed {
  adverts: SeenAdvert[];
  arps: SeenArp[];
  udp: SeenUdp[];
  icmp: SeenIcmp[];
  undecodable: number;
}

export async function readObserved(pcapPath: string): Promise<Observed> {
  const out: Observed = { adverts: [], arps: [], udp: [], icmp: [], undecodable: 0 };
  for await (const rec of PcapReader.fromFile(pcapPath)) {
    const eth = decodeEthernet(rec.data);
    if (!eth.ok) {
      out.undecodable++;
      continue;
    }
    const f = eth.value;
    if (f.etherType === ETHERTYPE.arp) {
      const arp = decodeArp(f.payload);
      if (arp.ok) out.arps.push({ tsMs: rec.tsMs, srcMac: f.src, dstMac: f.dst, arp: arp.value });
      else out.undecodable++;
      continue;
    }
    if (f.etherType !== ETHERTYPE.ipv4) continue;
    const ip = decodeIpv4(f.payload);
    if (!ip.ok) {
      out.undecodable++;
      continue;
    }
    if (ip.value.protocol === IP_PROTOCOL.vrrp) {
      const v = decodeVrrp(ip.value.payload);
      if (!v.ok) {
        out.undecodable++;
        continue;
      }
      out.adverts.push({
        tsMs: rec.tsMs,
        srcMac: f.src,
        dstMac: f.dst,
        ip: ip.value,
        vrrp: v.value,
        checksumOk: vrrpChecksumMatches(ip.value.payload, {
          src: ip.value.src,
          dst: ip.value.dst,
          mode: "rfc",
        }),
      });
    } else if (ip.value.protocol === IP_PROTOCOL.udp) {
      out.udp.push({ tsMs: rec.tsMs, srcMac: f.src, dstMac: f.dst, src: ip.value.src, dst: ip.value.dst });
    } else if (ip.value.protocol === IP_PROTOCOL.icmp) {
      const m = decodeIcmp(ip.value.payload);
      if (!m.ok) {
        out.undecodable++;
        continue;
      }
      out.icmp.push({
        tsMs: rec.tsMs,
        srcMac: f.src,
        dstMac: f.dst,
        src: ip.value.src,
        dst: ip.value.dst,
        type: m.value.type,
        code: m.value.code,
        ...(m.value.identifier !== undefined
          ? { identifier: m.value.identifier, sequence: m.value.sequence }
          : {}),
      });
    }
  }
  return out;
}

/** Advertisements per bin by sender (named by source address), for the timeline chart. */
export function advertTimeline(
  adverts: readonly SeenAdvert[],
  names: Record<string, string>,
  binMs = 100,
): Timeline {
  const first = adverts[0]?.tsMs ?? Date.now();
  const startMs = Math.floor(first / binMs) * binMs;
  const end = adverts.at(-1)?.tsMs ?? first;
  const bins = Math.max(1, Math.floor((end - startMs) / binMs) + 1);
  const series: Record<string, number[]> = {};
  for (const a of adverts) {
    if (a.vrrp.type !== 1) continue; // the chart shows advertisements only
    const key = `${names[a.ip.src] ?? a.ip.src}${a.vrrp.priority === 0 ? " (priority 0)" : ""}`;
    const s = series[key] ?? new Array<number>(bins).fill(0);
    series[key] = s;
    const i = Math.min(bins - 1, Math.floor((a.tsMs - startMs) / binMs));
    s[i] = (s[i] ?? 0) + 1;
  }
  return { startMs, binMs, series };
}
