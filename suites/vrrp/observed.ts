import { PcapReader } from "../../lib/traffic/pcap-reader.ts";
import type { Timeline } from "../../lib/traffic/stream-tally.ts";
import {
  type ArpPacket,
  type DecodedIpv4,
  type DecodedIpv6,
  type DecodedNd,
  type DecodedVrrp,
  decodeArp,
  decodeEthernet,
  decodeIcmp,
  decodeIpv4,
  decodeIpv6,
  decodeNeighborDiscovery,
  decodeVrrp,
  ETHERTYPE,
  IP_PROTOCOL,
  IPV6_NEXT_HEADER,
  ndLinkLayerAddress,
  vrrpChecksumMatches,
} from "../../lib/wire/index.ts";

/** What the tester saw on the wire, decoded with lib/wire (never throws: bad frames are counted). */
export interface SeenAdvert {
  tsMs: number;
  srcMac: string;
  dstMac: string;
  /** Source, destination and TTL (IPv6: hop limit) of either family. */
  ip: Pick<DecodedIpv4, "src" | "dst" | "ttl">;
  /** IPv6 only: the whole header (for the RFC 9568 sender rules). */
  ip6?: DecodedIpv6;
  vrrp: DecodedVrrp;
  checksumOk: boolean;
}
/** A Neighbor Solicitation or Advertisement (the IPv6 variant's counterpart of ARP). */
export interface SeenNd {
  tsMs: number;
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  nd: DecodedNd;
  /** NA: the target link-layer address option; NS: the source link-layer one. */
  linkLayer?: string;
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
  nds: SeenNd[];
  undecodable: number;
}

export async function readObserved(pcapPath: string): Promise<Observed> {
  const out: Observed = { adverts: [], arps: [], udp: [], icmp: [], nds: [], undecodable: 0 };
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
    if (f.etherType === ETHERTYPE.ipv6) {
      readIpv6(out, rec.tsMs, f.src, f.dst, f.payload);
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

/** An IPv6 packet: VRRP, Neighbor Discovery, ICMPv6 echo (as SeenIcmp with ICMPv6 types), UDP. */
function readIpv6(out: Observed, tsMs: number, srcMac: string, dstMac: string, bytes: Uint8Array): void {
  const ip = decodeIpv6(bytes);
  if (!ip.ok) {
    out.undecodable++;
    return;
  }
  const p = ip.value;
  if (p.nextHeader === IPV6_NEXT_HEADER.vrrp) {
    const v = decodeVrrp(p.payload, 6);
    if (!v.ok) {
      out.undecodable++;
      return;
    }
    out.adverts.push({
      tsMs,
      srcMac,
      dstMac,
      ip: { src: p.src, dst: p.dst, ttl: p.hopLimit },
      ip6: p,
      vrrp: v.value,
      checksumOk: vrrpChecksumMatches(p.payload, { src: p.src, dst: p.dst, mode: "rfc" }),
    });
  } else if (p.nextHeader === IPV6_NEXT_HEADER.icmpv6) {
    const type = p.payload[0] ?? 0;
    if (type === 135 || type === 136) {
      const nd = decodeNeighborDiscovery(p.payload);
      if (!nd.ok) {
        out.undecodable++;
        return;
      }
      const ll = ndLinkLayerAddress(nd.value, type === 136 ? 2 : 1);
      out.nds.push({
        tsMs,
        srcMac,
        dstMac,
        src: p.src,
        dst: p.dst,
        nd: nd.value,
        ...(ll ? { linkLayer: ll } : {}),
      });
    } else if (p.payload.length >= 8) {
      const view = new DataView(p.payload.buffer, p.payload.byteOffset, p.payload.byteLength);
      const echo = type === 128 || type === 129;
      out.icmp.push({
        tsMs,
        srcMac,
        dstMac,
        src: p.src,
        dst: p.dst,
        type,
        code: p.payload[1] ?? 0,
        ...(echo ? { identifier: view.getUint16(4), sequence: view.getUint16(6) } : {}),
      });
    }
  } else if (p.nextHeader === IPV6_NEXT_HEADER.udp) {
    out.udp.push({ tsMs, srcMac, dstMac, src: p.src, dst: p.dst });
  }
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
