import { DEFAULT_BIN_MS, type Timeline } from "./stream-tally.ts";

/**
 * Counts named events (records received, connects, resets, ...) in fixed time bins
 * (10 ms by default) and renders them as a Timeline, the same shape the UDP tallies
 * and the chart use. Memory: one counter per non-empty bin and series.
 */
export class EventBins {
  private readonly bins = new Map<string, Map<number, number>>();

  constructor(readonly binMs = DEFAULT_BIN_MS) {}

  add(series: string, atMs: number, count = 1): void {
    let bins = this.bins.get(series);
    if (!bins) {
      bins = new Map();
      this.bins.set(series, bins);
    }
    const bin = Math.floor(atMs / this.binMs);
    bins.set(bin, (bins.get(bin) ?? 0) + count);
  }

  /** Dense series between the first and last non-empty bin, optionally clipped to [fromMs, toMs). */
  timeline(range: { fromMs?: number; toMs?: number } = {}): Timeline {
    const fromBin =
      range.fromMs === undefined ? Number.NEGATIVE_INFINITY : Math.floor(range.fromMs / this.binMs);
    const toBin = range.toMs === undefined ? Number.POSITIVE_INFINITY : Math.ceil(range.toMs / this.binMs);
    let minBin = Number.POSITIVE_INFINITY;
    let maxBin = Number.NEGATIVE_INFINITY;
    for (const bins of this.bins.values()) {
      for (const bin of bins.keys()) {
        if (bin < fromBin || bin >= toBin) continue;
        if (bin < minBin) minBin = bin;
        if (bin > maxBin) maxBin = bin;
      }
    }
    const series: Record<string, number[]> = {};
    if (!Number.isFinite(minBin)) return { binMs: this.binMs, startMs: 0, series };
    for (const [name, bins] of this.bins) {
      const counts = new Array<number>(maxBin - minBin + 1).fill(0);
      for (const [bin, count] of bins) if (bin >= minBin && bin <= maxBin) counts[bin - minBin] = count;
      series[name] = counts;
    }
    return { binMs: this.binMs, startMs: minBin * this.binMs, series };
  }
}
