import type { Reporter, TestCase, TestModule, TestRunEndReason } from "vitest/node";
import { caseIdOfTitle, emitSuiteEvent } from "../../lib/certify/events.ts";

/**
 * A vitest reporter that tells `tandem certify` which case runs and how each one ended
 * (events.ts), so the CLI can show progress while vitest's own output goes to suite.log.
 * Loaded by suites/vitest.config.ts only when TANDEM_EVENTS is set.
 */
export default class ProgressReporter implements Reporter {
  onTestModuleCollected(module: TestModule): void {
    const cases: { id: string; title: string }[] = [];
    for (const test of module.children.allTests()) {
      // `--cases` (vitest -t) marks the others "skip" before they run: they are not counted.
      if (test.options.mode !== "run" && test.options.mode !== "only") continue;
      const id = caseIdOfTitle(test.name);
      if (id) cases.push({ id, title: test.name.replace(/^\[[^\]]+\]\s*/, "") });
    }
    emitSuiteEvent({ type: "collected", cases });
  }

  onTestCaseReady(test: TestCase): void {
    const id = caseIdOfTitle(test.name);
    if (id) emitSuiteEvent({ type: "case-start", id });
  }

  onTestCaseResult(test: TestCase): void {
    const id = caseIdOfTitle(test.name);
    // Cases filtered out by `--cases` also "end" (skipped): they were never counted.
    if (!id || (test.options.mode !== "run" && test.options.mode !== "only")) return;
    const state = test.result().state;
    emitSuiteEvent({
      type: "case-end",
      id,
      state: state === "passed" || state === "failed" ? state : "skipped",
      durationMs: Math.round(test.diagnostic()?.duration ?? 0),
    });
  }

  onTestRunEnd(_modules: ReadonlyArray<TestModule>, _errors: unknown, reason: TestRunEndReason): void {
    emitSuiteEvent({ type: "run-end", reason });
  }
}
