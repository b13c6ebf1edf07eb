import type { ChartEvent, EventKind } from "../../lib/traffic/chart.ts";
import type { NatlbMoveResult } from "../../vendor-adapters/types.ts";

/** The seed's names of a move's steps (Figs. 8-10; pre-copy is Tandem's own). */
const STEP_LABEL: Record<string, string> = {
  transition: "step 1: transition mode",
  precopy: "pre-copy of entries",
  route: "step 2: route (GARP)",
  entries: "step 3: entries",
  end: "step 4: end of transition",
};

/**
 * The chart events of one VIP move with the times the device reported (the start and
 * the end of each step). A failover's entries come from the servers' copies: that step
 * is marked as the table-copy recovery. A device that reports no times gets only `fallback`
 * (what the suite itself saw, e.g. when the move call returned).
 */
export function moveEvents(
  move: NatlbMoveResult,
  what: string,
  opts: { failover?: boolean; fallback?: ChartEvent[] } = {},
): ChartEvent[] {
  const out: ChartEvent[] = [];
  if (move.startedAt !== undefined)
    out.push({
      atMs: move.startedAt,
      label: opts.failover ? `takeover: ${what}` : `move of ${what} begins`,
      kind: opts.failover ? "takeover" : "vip-move",
    });
  for (const s of move.stepTimes ?? []) {
    const copies = opts.failover && s.step === "entries";
    const kind: EventKind = copies ? "table-copy" : "vip-move";
    const label = copies
      ? `step 3: ${move.entriesMoved} entries from the servers' copies`
      : (STEP_LABEL[s.step] ?? s.step);
    out.push({ atMs: s.atMs, label, kind });
  }
  return out.length > 0 ? out : (opts.fallback ?? []);
}
