// Issue 14: "Where an offset makes a timing verdict unsafe, the case says so." A timing
// verdict read across clocks (a host's capture against the controller's marks, or two
// hosts) is judged only when the measured offsets cannot move it across its bound.
import { describe, expect, it } from "vitest";
import { clockErrorMs, significantOffsetMs, unsafeTimingVerdict } from "../lib/lab/physical.ts";
import type { ClockOffset } from "../lib/lab/state.ts";
import { InconclusiveError, isInconclusive, requireSafeTiming } from "../suites/support/evidence.ts";

const at = "2026-12-03T00:00:00.000Z";
const clocks: Record<string, ClockOffset> = {
  // 40 ms ahead, measured to ± 2 ms
  tester: { offsetMs: 40, uncertaintyMs: 2, measuredAt: at },
  // within its own uncertainty: indistinguishable from none (not applied)
  sink: { offsetMs: 0.8, uncertaintyMs: 1.5, measuredAt: at },
};

describe("clock error of a cross-host timing verdict", () => {
  it("uncorrected: the whole offset plus its uncertainty; corrected: only the uncertainty", () => {
    expect(clockErrorMs(clocks, [{ host: "tester", corrected: false }])).toBe(42);
    expect(significantOffsetMs(clocks.tester)).toBe(40);
    expect(clockErrorMs(clocks, [{ host: "tester", corrected: true }])).toBe(2);
    // An offset below its uncertainty is not applied, so it stays in the error.
    expect(clockErrorMs(clocks, [{ host: "sink", corrected: true }])).toBe(2.3);
    // Two hosts: the errors add up.
    expect(
      clockErrorMs(clocks, [
        { host: "tester", corrected: true },
        { host: "sink", corrected: true },
      ]),
    ).toBe(4.3);
  });

  it("a virtual lab (no measured clocks) and a host not measured add nothing", () => {
    expect(clockErrorMs(undefined, [{ host: "tester", corrected: false }])).toBe(0);
    expect(clockErrorMs(clocks, [{ host: "dut", corrected: false }])).toBe(0);
  });
});

describe("unsafe timing verdicts", () => {
  const verdict = (measuredMs: number, corrected = false) => ({
    what: "became master after the DUT started",
    measuredMs,
    boundMs: 4609,
    sides: [{ host: "tester", corrected }],
  });

  it("safe when the measurement is farther from the bound than the clocks can move it (either side)", () => {
    expect(unsafeTimingVerdict(clocks, verdict(3600))).toBeUndefined(); // pass stands
    expect(unsafeTimingVerdict(clocks, verdict(4700))).toBeUndefined(); // fail stands
    expect(unsafeTimingVerdict(undefined, verdict(4609))).toBeUndefined(); // one clock
  });

  it("unsafe within the clock error of the bound: the reason names hosts, offsets and margins", () => {
    const reason = unsafeTimingVerdict(clocks, verdict(4580));
    expect(reason).toBe(
      "became master after the DUT started: measured 4580 ms against a bound of 4609 ms across host clocks; the clock offsets (tester 40 ms ± 2 ms (uncorrected)) make it uncertain by up to 42 ms, more than the 29 ms between measurement and bound, so no verdict",
    );
    // The same measurement with the offset corrected is decided (error 2 ms < 29 ms).
    expect(unsafeTimingVerdict(clocks, verdict(4580, true))).toBeUndefined();
    // Also just beyond the bound: a fail the clocks could have caused is not a fail.
    expect(unsafeTimingVerdict(clocks, verdict(4640))).toMatch(/no verdict$/);
  });

  it("requireSafeTiming makes the case inconclusive (never passed or failed) with that reason", () => {
    const lab = { record: { clocks } } as unknown as Parameters<typeof requireSafeTiming>[0];
    expect(() => requireSafeTiming(lab, verdict(3600))).not.toThrow();
    let caught: unknown;
    try {
      requireSafeTiming(lab, verdict(4580));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InconclusiveError);
    expect(isInconclusive(caught)).toBe(true);
    expect((caught as Error).message).toMatch(/^inconclusive: became master after the DUT started: .* 42 ms/);
    expect((caught as InconclusiveError).evidence).toMatchObject({ measuredMs: 4580, boundMs: 4609, clocks });
  });
});
