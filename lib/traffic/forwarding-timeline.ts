import { decodeEthernet, decodeIpv4, ETHERTYPE } from "../wire/index.ts";
import { PcapReader } from "./pcap-reader.ts";
import type { Timeline } from "./stream-tally.ts";

/**
 * Packets per second towards `dst` per device that sent them on the captured segment (the
 * Ethernet source: the forwarding balancer or router), for the charts of issue 17 (what a
 * reviewer would rather look at than a pcap). `macs` names each device's MAC on that
 * segment; an unnamed MAC stays its own label, a named one that sent nothing is a series
 * of zeros. Only IPv4 packets to `dst` count.
 */
export async function forwardingTimeline(
  pcapPath: string,
  dst: string,
  macs: Readonly<Record<string, string | undefined>>,
  options: {
    binMs?: number;
    /** The capture's start and stop (ms since the epoch): the series cover at least this span. */
    span?: { fromMs: number; toMs: number };
  } = {},
): Promise<{ timeline: Timeline; names: Record<string, string> }> {
  const binMs = options.binMs ?? 50;
  const stamps = new Map<string, number[]>();
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for await (const rec of PcapReader.fromFile(pcapPath)) {
    const eth = decodeEthernet(rec.data);
    if (!eth.ok || eth.value.etherType !== ETHERTYPE.ipv4) continue;
    const ip = decodeIpv4(eth.value.payload);
    if (!ip.ok || ip.value.dst !== dst) continue;
    const list = stamps.get(eth.value.src) ?? [];
    list.push(rec.tsMs);
    stamps.set(eth.value.src, list);
    first = Math.min(first, rec.tsMs);
    last = Math.max(last, rec.tsMs);
  }
  if (options.span) {
    first = Math.min(first, options.span.fromMs);
    last = Math.max(last, options.span.toMs);
  }
  const any = Number.isFinite(first);
  const startMs = any ? Math.floor(first / binMs) * binMs : 0;
  const bins = any ? Math.floor((last - startMs) / binMs) + 1 : 1;
  const series: Record<string, number[]> = {};
  for (const [mac, list] of stamps) {
    const counts = new Array<number>(bins).fill(0);
    for (const t of list) {
      const i = Math.floor((t - startMs) / binMs);
      counts[i] = (counts[i] ?? 0) + 1;
    }
    series[mac] = counts;
  }
  const names: Record<string, string> = {};
  for (const [host, mac] of Object.entries(macs)) if (mac) names[mac] = host;
  // A named device that sent nothing is a flat line at 0, not missing from the chart.
  if (any) for (const mac of Object.keys(names)) series[mac] ??= new Array<number>(bins).fill(0);
  return { timeline: { binMs, startMs, series }, names };
}
