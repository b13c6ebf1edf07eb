import { appendFileSync } from "node:fs";

/**
 * The progress channel of a certification run (in lib/certify: lib may not import suites/): JSON lines appended to the file named by
 * TANDEM_EVENTS (`tandem certify` sets it to OUT/events.jsonl and tails it). Two writers
 * share it: the vitest reporter (suites/support/progress-reporter.ts, in vitest's main
 * process) and the suite's worker (lab bring-up steps, suites/support/lab.ts). A file,
 * not a pipe, because the worker is vitest's grandchild and vitest does not hand extra
 * file descriptors to its workers; each line is one O_APPEND write, so lines from the two
 * processes never interleave.
 */
export type SuiteEvent =
  /** Cases that will run, in file order (filtered by `--cases`). */
  | { type: "collected"; cases: { id: string; title: string }[] }
  | { type: "lab"; step: string; done: number; total: number }
  /** Sent before a lab's bring-up, so an interrupted run can tear down a lab still coming up. */
  | { type: "lab-starting"; prefix: string }
  | { type: "lab-up"; prefix: string; name: string; ms: number }
  | { type: "case-start"; id: string }
  | {
      type: "case-end";
      id: string;
      /** vitest's state; the case record (OUT/cases/<id>.json) refines it. */
      state: "passed" | "failed" | "skipped";
      durationMs: number;
    }
  | { type: "run-end"; reason: string };

export function emitSuiteEvent(event: SuiteEvent): void {
  const file = process.env.TANDEM_EVENTS;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify({ t: Date.now(), ...event })}\n`);
}

/** The case ID in a certCase title: "[vrls.sharing-steady] Sharing ..." -> "vrls.sharing-steady". */
export function caseIdOfTitle(title: string): string | undefined {
  return /^\[([a-z0-9.-]+)\]/.exec(title)?.[1];
}
