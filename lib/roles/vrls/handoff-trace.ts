/**
 * Where a hand-off's time goes: each agent records the steps of every allocation version
 * it takes part in (message received or sent, data plane change applied, stop, resolve),
 * stamped with a sub-millisecond wall clock. The hand-off bench joins the members' records
 * by version and reports each step's delay from the master's type 3 (evidence for the
 * hand-off time figures, issue 11). A bounded ring: recording never grows without limit.
 */
import { performance } from "node:perf_hooks";

export interface HandoffStep {
  /** Wall clock, ms since the epoch, sub-millisecond (performance.timeOrigin + now()). */
  atMs: number;
  epoch: number;
  version: number;
  step: string;
}

const CAPACITY = 20_000;

export class HandoffTrace {
  private readonly steps: HandoffStep[] = [];

  record(step: string, at: { epoch: number; version: number }): void {
    this.steps.push({
      atMs: performance.timeOrigin + performance.now(),
      epoch: at.epoch,
      version: at.version,
      step,
    });
    if (this.steps.length > CAPACITY) this.steps.splice(0, this.steps.length - CAPACITY);
  }

  /** The steps recorded so far (a copy). */
  list(): HandoffStep[] {
    return [...this.steps];
  }
}
