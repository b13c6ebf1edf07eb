/**
 * The review part of a virtual router's configuration (seed: the determination criterion
 * "is set manually in review processor 335"): thresholds, hold-down, and the flow monitor's
 * sampling. `review:` in a `vrls.routers.<name>` section; absent = no reviews (part 1).
 */
import { z } from "zod";
import type { ReviewOptions } from "./reviewer.ts";

export const ReviewSpec = z
  .object({
    /** Imbalance of the per-router flow rate, (max - min) / mean, in percent. */
    imbalancePct: z.number().min(1).max(1000).default(30),
    /** Buffer overflows per time unit of one router, or between routers. */
    overflowsPerUnit: z.number().min(0).default(50),
    /** No review for this long after a request, a collection or a reallocation. */
    holdDownMs: z.number().int().min(0).max(3_600_000).default(3000),
    /** How long the master waits for flow rate responses (type 8). */
    collectMs: z.number().int().min(10).max(60_000).default(300),
    /** Below this total rate nothing is reviewed. */
    minRateBps: z.number().min(0).default(100_000),
    /** Flow monitor: how often the counters are read, the averaging window, the overflow time unit. */
    sampleMs: z.number().int().min(50).max(60_000).default(250),
    windowMs: z.number().int().min(100).max(600_000).default(1000),
    timeUnitMs: z.number().int().min(100).max(600_000).default(1000),
  })
  .strict();

export type ReviewSpecT = z.infer<typeof ReviewSpec>;

export interface MonitorOptions {
  sampleMs: number;
  windowMs: number;
  timeUnitMs: number;
}

export function reviewOptionsOf(s: ReviewSpecT): { review: ReviewOptions; monitor: MonitorOptions } {
  return {
    review: {
      imbalancePct: s.imbalancePct,
      overflowsPerUnit: s.overflowsPerUnit,
      holdDownMs: s.holdDownMs,
      collectMs: s.collectMs,
      minRateBps: s.minRateBps,
    },
    monitor: { sampleMs: s.sampleMs, windowMs: s.windowMs, timeUnitMs: s.timeUnitMs },
  };
}
