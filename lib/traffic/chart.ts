import { writeFile } from "node:fs/promises";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Timeline } from "./stream-tally.ts";

/**
 * Renders a traffic timeline (packets/s per forwarding device over time) to SVG with
 * vega-lite; events (allocation, hand-off, crash, takeover, VIP move steps) are vertical
 * rules, coloured by kind with their own legend, labelled at the top (labels staggered
 * over four rows so that close events stay readable). vega's View.toSVG() renders
 * headless, no canvas or browser needed.
 */
export const EVENT_KINDS = ["allocation", "hand-off", "crash", "takeover", "vip-move", "other"] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const EVENT_COLOURS: Record<EventKind, string> = {
  allocation: "#1b7f3b",
  "hand-off": "#7b3fb5",
  crash: "#c00000",
  takeover: "#d96c00",
  "vip-move": "#0060a8",
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
  const events = [...(options.events ?? [])]
    .sort((a, b) => a.atMs - b.atMs)
    .map((e, i) => {
      const kind = e.kind ?? "other";
      if (!EVENT_KINDS.includes(kind)) throw new Error(`chart event "${e.label}": unknown kind "${kind}"`);
      // Label rows in pixels from the top (scale: null below): four rows, then again.
      return { t: (e.atMs - origin) / 1000, label: e.label, kind, row: 4 + (i % 4) * 13 };
    });
  const kinds = EVENT_KINDS.filter((k) => events.some((e) => e.kind === k));
  const eventColour = {
    field: "kind",
    type: "nominal",
    title: "events",
    scale: { domain: kinds, range: kinds.map((k) => EVENT_COLOURS[k]) },
  } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: options.title ?? "packets per second by forwarding device",
    width: options.width ?? 800,
    height: options.height ?? 300,
    background: "white",
    // Two colour legends: one for the devices' lines, one for the event kinds.
    resolve: { scale: { color: "independent" } },
    layer: [
      {
        data: { values: points },
        mark: { type: "line", interpolate: "step-after", strokeWidth: 1.5 },
        encoding: {
          x: { field: "t", type: "quantitative", title: "time (s)" },
          y: { field: "pps", type: "quantitative", title: "packets/s" },
          color: { field: "series", type: "nominal", title: "forwarded by" },
        },
      },
      ...(events.length > 0
        ? ([
            {
              data: { values: events },
              mark: { type: "rule", strokeDash: [4, 3], strokeWidth: 1.5 },
              encoding: { x: { field: "t", type: "quantitative" }, color: eventColour },
            },
            {
              data: { values: events },
              mark: { type: "text", align: "left", baseline: "top", dx: 3, fontSize: 10 },
              encoding: {
                x: { field: "t", type: "quantitative" },
                y: { field: "row", type: "quantitative", scale: null },
                text: { field: "label", type: "nominal" },
                color: { ...eventColour, legend: null },
              },
            },
          ] as const)
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
