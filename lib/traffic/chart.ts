import { writeFile } from "node:fs/promises";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Timeline } from "./stream-tally.ts";

/**
 * Renders a traffic timeline (packets/s per forwarding router over time) to SVG with
 * vega-lite; event markers ("allocation sent", "master killed") are vertical rules with
 * labels. vega's View.toSVG() renders headless, no canvas or browser needed.
 */
export interface ChartEvent {
  atMs: number;
  label: string;
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
  const events = (options.events ?? []).map((e) => ({ t: (e.atMs - origin) / 1000, label: e.label }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: options.title ?? "packets per second by forwarding router",
    width: options.width ?? 800,
    height: options.height ?? 300,
    background: "white",
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
              mark: { type: "rule", color: "#c00", strokeDash: [4, 3] },
              encoding: { x: { field: "t", type: "quantitative" } },
            },
            {
              data: { values: events },
              mark: { type: "text", align: "left", baseline: "top", dx: 3, dy: 3, angle: 0, color: "#c00" },
              encoding: {
                x: { field: "t", type: "quantitative" },
                y: { value: 0 },
                text: { field: "label", type: "nominal" },
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
