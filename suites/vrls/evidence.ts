import type { ChartEvent } from "../../lib/traffic/chart.ts";
import { renderTimelineSvg } from "../../lib/traffic/chart.ts";
import type { Timeline } from "../../lib/traffic/stream-tally.ts";
import type { CaseContext } from "../support/requirement.ts";

/**
 * The evidence of a vrls case, attached one way for every scenario: the captures (pcap),
 * a decoded message listing, the packets-per-second-per-member chart with the scenario's
 * events (allocation, hand-off, crash, takeover...), agent logs, and the measurements
 * (JSON) the case judged by.
 */
export interface Evidence {
  /** File-name tag of this evidence (e.g. "steady", "review"). */
  name: string;
  captures?: { label: string; path: string }[];
  listing?: { label: string; text: string };
  chart?: {
    title: string;
    timeline: Timeline;
    /** Forwarding MAC -> member name. */
    names: Readonly<Record<string, string>>;
    events?: readonly ChartEvent[];
    originMs?: number;
    wide?: boolean;
  };
  logs?: { label: string; text: string };
  measured: Record<string, unknown>;
}

export async function attachEvidence(ctx: CaseContext, e: Evidence): Promise<void> {
  for (const c of e.captures ?? []) await ctx.attachFile(c.label, c.path, "application/vnd.tcpdump.pcap");
  if (e.listing)
    await ctx.attachText(e.listing.label, e.listing.text, "text/plain", `messages-${e.name}.txt`);
  if (e.chart) {
    const svg = await renderTimelineSvg(e.chart.timeline, {
      title: e.chart.title,
      names: e.chart.names,
      events: e.chart.events ?? [],
      ...(e.chart.originMs !== undefined ? { originMs: e.chart.originMs } : {}),
      width: e.chart.wide ? 900 : 760,
      height: e.chart.wide ? 300 : 260,
    });
    await ctx.attachText("forwarding timeline", svg, "image/svg+xml", `timeline-${e.name}.svg`);
  }
  if (e.logs) await ctx.attachText(e.logs.label, e.logs.text, "text/plain", `logs-${e.name}.log`);
  await ctx.attachText(
    "measurements",
    JSON.stringify(e.measured, null, 2),
    "application/json",
    `measurements-${e.name}.json`,
  );
}
