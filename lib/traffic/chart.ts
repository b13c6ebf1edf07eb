import { writeFile } from "node:fs/promises";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Timeline } from "./stream-tally.ts";

/**
 * Renders a traffic timeline (packets/s per forwarding device over time) to SVG with
 * vega-lite; events (allocation, hand-off, crash, takeover, VIP move steps, table-copy recovery) are vertical
 * rules, coloured by kind with their own legend, labelled at the top (labels staggered
 * over four rows so that close events stay readable). vega's View.toSVG() renders
 * headless, no canvas or browser needed.
 */
export const EVENT_KINDS = [
  "allocation",
  "hand-off",
  "crash",
  "takeover",
  "vip-move",
  "table-copy",
  "other",
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const EVENT_COLOURS: Record<EventKind, string> = {
  allocation: "#1b7f3b",
  "hand-off": "#7b3fb5",
  crash: "#c00000",
  takeover: "#d96c00",
  "vip-move": "#0060a8",
  "table-copy": "#008b8b",
  other: "#666666",
};

export interface ChartEvent {
  atMs: number;
  label: string;
  /** What happened; sets the rule's colour and legend entry (default "other"). */
  kind?: EventKind;
}

export interface ChartOptions {
  title?: string;
  events?: readonly ChartEvent[];
  /** Milliseconds since the epoch that becomes t = 0 on the x axis (default: the timeline's start). */
  originMs?: number;
  /**
   * The time span the x axis covers at least, ms since the epoch (e.g. the capture's
   * start and stop): a device that forwards nothing at the end still shows as a flat line.
   */
  span?: { fromMs: number; toMs: number };
  /** Friendly names for series labels, e.g. MAC -> "r1". */
  names?: Readonly<Record<string, string>>;
  width?: number;
  height?: number;
}

export function timelineSpec(timeline: Timeline, options: ChartOptions = {}): TopLevelSpec {
  const origin = options.originMs ?? timeline.startMs;
  const scale = 1000 / timeline.binMs; // packets per bin -> packets per second
  const points: { t: number; pps: number; series: string }[] = [];
  for (const [label, counts] of Object.entries(timeline.series)) {
    const series = options.names?.[label] ?? label;
    counts.forEach((count, i) => {
      points.push({ t: (timeline.startMs + i * timeline.binMs - origin) / 1000, pps: count * scale, series });
    });
  }
  const width = options.width ?? 800;
  const height = options.height ?? 300;
  const sorted = [...(options.events ?? [])]
    .sort((a, b) => a.atMs - b.atMs)
    .map((e) => {
      const kind = e.kind ?? "other";
      if (!EVENT_KINDS.includes(kind)) throw new Error(`chart event "${e.label}": unknown kind "${kind}"`);
      return { t: (e.atMs - origin) / 1000, label: e.label, kind };
    });
  // A fixed x domain (no "nice" rounding), so that label positions are known in pixels here.
  const span = options.span ? [options.span.fromMs, options.span.toMs].map((ms) => (ms - origin) / 1000) : [];
  const ts = [...points.map((p) => p.t), ...sorted.map((e) => e.t), ...span];
  const tMin = ts.length > 0 ? Math.min(...ts) : 0;
  const tMax = ts.length > 0 ? Math.max(tMin + 0.001, ...ts) : 1;
  const px = (t: number) => ((t - tMin) / (tMax - tMin)) * width;
  // Labels in rows from the top (pixels, scale: null below): each goes into the first row
  // where it does not overlap the label before it, so events milliseconds apart stay
  // readable. A label that would run past the right edge ends at its rule instead.
  const rowEnds: number[] = [];
  const events = sorted.map((e) => {
    const x = px(e.t);
    const w = e.label.length * 5.8 + 8; // 10 px sans: a generous estimate
    const right = x + w > width;
    const [from, to] = right ? [x - w, x] : [x, x + w];
    let row = rowEnds.findIndex((end) => end <= from);
    if (row < 0) row = rowEnds.push(0) - 1;
    rowEnds[row] = to;
    return { ...e, row: 4 + row * 13, align: right ? "right" : "left" };
  });
  // Room above the data for the label rows.
  const labelPx = rowEnds.length * 13 + 8;
  const maxPps = Math.max(0, ...points.map((p) => p.pps));
  const yScale =
    events.length > 0 && maxPps > 0 && labelPx < height * 0.7
      ? { domainMax: (maxPps * height) / (height - labelPx) }
      : {};
  const kinds = EVENT_KINDS.filter((k) => events.some((e) => e.kind === k));
  const eventColour = {
    field: "kind",
    type: "nominal",
    title: "events",
    scale: { domain: kinds, range: kinds.map((k) => EVENT_COLOURS[k]) },
  } as const;
  const x = {
    field: "t" as const,
    type: "quantitative" as const,
    scale: { domain: [tMin, tMax], nice: false, zero: false },
  };
  const labels = (align: "left" | "right") => ({
    data: { values: events.filter((e) => e.align === align) },
    mark: {
      type: "text" as const,
      align,
      baseline: "top" as const,
      dx: align === "left" ? 3 : -3,
      fontSize: 10,
    },
    encoding: {
      x,
      y: { field: "row", type: "quantitative" as const, scale: null },
      text: { field: "label", type: "nominal" as const },
      color: { ...eventColour, legend: null },
    },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: options.title ?? "packets per second by forwarding device",
    width,
    height,
    background: "white",
    // Two colour legends: one for the devices' lines, one for the event kinds.
    resolve: { scale: { color: "independent" } },
    layer: [
      {
        data: { values: points },
        mark: { type: "line", interpolate: "step-after", strokeWidth: 1.5 },
        encoding: {
          x: { ...x, title: "time (s)" },
          y: { field: "pps", type: "quantitative", title: "packets/s", scale: yScale },
          color: { field: "series", type: "nominal", title: "forwarded by" },
        },
      },
      ...(events.length > 0
        ? [
            {
              data: { values: events },
              mark: { type: "rule", strokeDash: [4, 3], strokeWidth: 1.5 },
              encoding: { x, color: eventColour },
            },
            ...(["left", "right"] as const).filter((a) => events.some((e) => e.align === a)).map(labels),
          ]
        : []),
    ],
  } as TopLevelSpec;
}

export async function renderTimelineSvg(timeline: Timeline, options: ChartOptions = {}): Promise<string> {
  const compiled = compile(timelineSpec(timeline, options)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function writeTimelineSvg(
  path: string,
  timeline: Timeline,
  options: ChartOptions = {},
): Promise<void> {
  await writeFile(path, await renderTimelineSvg(timeline, options));
}
