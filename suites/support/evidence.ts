import type { Lab } from "../../lib/lab/lab.ts";
import {
  type ClockSide,
  unsafeTimingVerdict,
  unsafeWindowVerdict,
  type WindowVerdict,
} from "../../lib/lab/physical.ts";
import { type CaptureStats, captureIncompleteness } from "../../lib/traffic/capture.ts";

/**
 * A case that cannot reach a verdict because its evidence is incomplete (a packet capture
 * that dropped packets, or whose drop counts could not be read). `certCase` records it as
 * "inconclusive": never a pass, not a failure of the device either; the summary lists it
 * apart and a MUST requirement left inconclusive blocks certification.
 */
export class InconclusiveError extends Error {
  override name = "InconclusiveError";
  constructor(
    message: string,
    /** Attached to the case as JSON (what made it inconclusive). */
    readonly evidence?: unknown,
  ) {
    super(message);
  }
}

export function isInconclusive(error: unknown): error is InconclusiveError {
  return (
    error instanceof InconclusiveError ||
    (error as Error | undefined)?.name === "InconclusiveError" ||
    lostSession(error)
  );
}

/**
 * The SSH session to a lab host dropped during the case (its sshd died, the management
 * network went away): the harness lost its evidence, which says nothing of the device.
 * An agent that exited or died by a signal is not this (its channel reported how).
 */
function lostSession(error: unknown): boolean {
  const e = error as { name?: string; code?: unknown; signal?: unknown } | undefined;
  return (
    e?.name === "HostUnreachableError" ||
    (e?.name === "AgentCrashedError" && e.code === null && e.signal === null)
  );
}

/**
 * A case that judges from packet captures calls this first: every capture must have
 * stopped with its statistics read and nothing dropped, else the case is inconclusive
 * with a message naming each capture (host, interface, filter, file) and its drops.
 */
export function requireCompleteCaptures(captures: readonly CaptureStats[]): void {
  const problems = captures.map(captureIncompleteness).filter((p): p is string => p !== undefined);
  if (problems.length === 0) return;
  throw new InconclusiveError(
    `inconclusive: incomplete evidence, no verdict - ${problems.join("; ")}`,
    captures,
  );
}

/**
 * A case that judges a time measured across clocks (a host's capture against the
 * controller's marks, or two hosts' timestamps) against a bound calls this before its
 * expect: when the hosts' measured clock offsets (what the analysis did not correct, plus
 * each measurement's uncertainty) could move the measurement across the bound, the case
 * is inconclusive with that reason. On a virtual lab (one clock) it never is.
 */
export function requireSafeTiming(
  lab: Pick<Lab, "record">,
  verdict: { what: string; measuredMs: number; boundMs: number; sides: readonly ClockSide[] },
): void {
  const reason = unsafeTimingVerdict(lab.record.clocks, verdict);
  if (reason)
    throw new InconclusiveError(`inconclusive: ${reason}`, {
      ...verdict,
      clocks: lab.record.clocks,
    });
}

/**
 * A case that counts captured events inside a window whose edges were read on other
 * clocks calls this before its expect: when an event lies within the clock error of an
 * edge (it could be inside or outside), the case is inconclusive with that reason. On a
 * virtual lab (one clock) it never is.
 */
export function requireSafeWindow(lab: Pick<Lab, "record">, verdict: WindowVerdict): void {
  const reason = unsafeWindowVerdict(lab.record.clocks, verdict);
  if (reason)
    throw new InconclusiveError(`inconclusive: ${reason}`, {
      what: verdict.what,
      fromMs: verdict.fromMs,
      toMs: verdict.toMs,
      events: verdict.eventsMs.length,
      sides: verdict.sides,
      clocks: lab.record.clocks,
    });
}
