import { performance } from "node:perf_hooks";

/**
 * The one wait (issue 12): poll a condition until it holds or a deadline passes. Every
 * "until X or N ms" loop in lib/, bench/ and vendor-adapters/ goes through it, so a timeout
 * always says what was awaited. A fixed sleep is used only where time itself is the
 * subject (a hold-down, a pause between phases of an experiment), and says so.
 */
export class WaitTimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    last?: string,
  ) {
    super(
      `timed out after ${timeoutMs} ms waiting for ${what}${last !== undefined ? `; last seen: ${last}` : ""}`,
    );
    this.name = "WaitTimeoutError";
  }
}

export interface WaitOptions {
  timeoutMs: number;
  /** What is awaited, as the timeout error puts it: "waiting for <what>". */
  what: string;
  /** Pause between two evaluations of the condition (default 20 ms). */
  everyMs?: number;
  /** Appended to the timeout error: the state last seen (a string as is, else JSON), for diagnosis. */
  last?: () => unknown;
}

/**
 * Evaluates `condition` until it returns a value other than false/undefined/null and
 * returns that value; throws WaitTimeoutError after `timeoutMs`. An error the condition
 * throws is not swallowed: it ends the wait.
 */
export async function waitUntil<T>(
  condition: () => T | false | undefined | null | Promise<T | false | undefined | null>,
  options: WaitOptions,
): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== false && value !== undefined && value !== null) return value;
    if (performance.now() >= deadline)
      throw new WaitTimeoutError(options.what, options.timeoutMs, describe(options.last));
    // everyMs 0: check again on the next event loop turn (after pending I/O), for waits of
    // a few milliseconds where a 1 ms timer is itself the delay.
    if (options.everyMs === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    else await pause(Math.min(options.everyMs ?? 20, Math.max(1, deadline - performance.now())));
  }
}

function describe(last: (() => unknown) | undefined): string | undefined {
  if (!last) return undefined;
  const v = last();
  return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * A deliberate pause where time itself is the subject (a hold-down, an interval an
 * experiment measures across). Named so such places can be found; never use it to wait
 * for a condition (use waitUntil).
 */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * waitUntil for a wait whose timeout is an outcome, not an error (a grace period before
 * SIGKILL): true when the condition held within `timeoutMs`, false when it did not.
 */
export async function heldWithin(
  condition: () => boolean | Promise<boolean>,
  options: WaitOptions,
): Promise<boolean> {
  try {
    await waitUntil(condition, options);
    return true;
  } catch (e) {
    if (e instanceof WaitTimeoutError) return false;
    throw e;
  }
}
