/**
 * Where each hand-off's time went: the members' recorded steps (lib/roles/vrls/handoff-trace.ts)
 * joined per allocation version and timed from the master's type 3. Member addresses in the
 * step names become their part in that hand-off ("old", "new"), so the steps of every
 * hand-off line up whatever the direction.
 */
import type { HandoffStep } from "../roles/vrls/handoff-trace.ts";
import { percentile } from "./stats.ts";

export interface HandoffWindow {
  /** The member giving the condition up and the one taking it over (addresses). */
  from: string;
  to: string;
  /** Wall clock (ms) of the reallocation request and of its completion. */
  startMs: number;
  endMs: number;
}

export interface PhaseRow {
  step: string;
  /** Hand-offs in which the step was seen. */
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Per step, its delay after the type 3 left the master (p50/p99/max over the hand-offs). */
export function handoffPhases(steps: readonly HandoffStep[], windows: readonly HandoffWindow[]): PhaseRow[] {
  const delays = new Map<string, number[]>();
  const order = new Map<string, number>();
  for (const w of windows) {
    const inWindow = steps.filter((s) => s.atMs >= w.startMs - 1 && s.atMs <= w.endMs + 1);
    const sent = inWindow.find((s) => s.step.endsWith(" tx.allocation"));
    if (!sent) continue;
    const label = (step: string) => step.replaceAll(w.from, "old").replaceAll(w.to, "new");
    const seen = new Set<string>();
    const mine = inWindow
      .filter((s) => s.epoch === sent.epoch && s.version === sent.version && s.atMs >= sent.atMs)
      .sort((a, b) => a.atMs - b.atMs);
    for (const [i, s] of mine.entries()) {
      // The first occurrence of each step per hand-off (a repeated confirmation is a retry).
      const name = label(s.step);
      if (seen.has(name)) continue;
      seen.add(name);
      if (!order.has(name)) order.set(name, i);
      const list = delays.get(name) ?? [];
      list.push(s.atMs - sent.atMs);
      delays.set(name, list);
    }
  }
  return [...delays]
    .map(([step, d]) => ({
      step,
      count: d.length,
      p50Ms: round(percentile(d, 50)),
      p99Ms: round(percentile(d, 99)),
      maxMs: round(Math.max(...d)),
    }))
    .sort((a, b) => a.p50Ms - b.p50Ms || (order.get(a.step) ?? 0) - (order.get(b.step) ?? 0));
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
