// Issue 14: "Where an offset makes a timing verdict unsafe, the case says so." A timing
// verdict read across clocks (a host's capture against the controller's marks, or two
// hosts) is judged only when the measured offsets cannot move it across its bound.
import { describe, expect, it } from "vitest";
import {
  clockErrorMs,
  significantOffsetMs,
  unsafeTimingVerdict,
  unsafeWindowVerdict,
} from "../lib/lab/physical.ts";
import type { ClockOffset } from "../lib/lab/state.ts";
import {
  InconclusiveError,
  isInconclusive,
  requireSafeTiming,
  requireSafeWindow,
} from "../suites/support/evidence.ts";

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

// Counting captured events between edges read on other clocks (natlb.move's gratuitous ARPs
// after the controller's "move requested", vrrp's DUT adverts after "DUT started", the
// sink's datagrams before the tester fell silent).
describe("unsafe window verdicts", () => {
  const window = (eventsMs: number[], sides = [{ host: "tester", corrected: false }]) => ({
    what: "gratuitous ARPs after the move was requested",
    eventsMs,
    fromMs: 10_000,
    toMs: 12_000,
    sides,
  });

  it("decided when every event is farther from both edges than the clock error", () => {
    // error 42 ms: events 50 ms inside the start and 100 ms before the end, one far outside
    expect(unsafeWindowVerdict(clocks, window([10_050, 11_900, 9_000]))).toBeUndefined();
    // one clock (virtual lab): an event right at the edge is decided
    expect(unsafeWindowVerdict(undefined, window([10_000]))).toBeUndefined();
    // an edge not given is not judged
    expect(unsafeWindowVerdict(clocks, { ...window([12_001]), toMs: undefined })).toBeUndefined();
  });

  it("no verdict when an event lies within the clock error of an edge (inside or outside)", () => {
    expect(unsafeWindowVerdict(clocks, window([10_020]))).toBe(
      "gratuitous ARPs after the move was requested: an event 20 ms from the window's start across host clocks; the clock offsets (tester 40 ms ± 2 ms (uncorrected)) make it uncertain by up to 42 ms, so whether it falls inside is unknown and no verdict",
    );
    expect(unsafeWindowVerdict(clocks, window([11_990]))).toMatch(/10 ms from the window's end/);
    expect(unsafeWindowVerdict(clocks, window([9_970]))).toMatch(/30 ms from the window's start/);
    // Two clocks add up: 10 ms from the edge, 2 + 2.3 ms of error once corrected.
    const both = [
      { host: "tester", corrected: true },
      { host: "sink", corrected: true },
    ];
    expect(unsafeWindowVerdict(clocks, window([10_010], both))).toBeUndefined();
    expect(unsafeWindowVerdict(clocks, window([10_004], both))).toMatch(/up to 4.3 ms/);
  });

  it("requireSafeWindow makes the case inconclusive with that reason", () => {
    const lab = { record: { clocks } } as unknown as Parameters<typeof requireSafeWindow>[0];
    expect(() => requireSafeWindow(lab, window([10_050]))).not.toThrow();
    let caught: unknown;
    try {
      requireSafeWindow(lab, window([10_050, 10_020]));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InconclusiveError);
    expect(isInconclusive(caught)).toBe(true);
    expect((caught as Error).message).toMatch(
      /^inconclusive: gratuitous ARPs .* 20 ms from the window's start/,
    );
    expect((caught as InconclusiveError).evidence).toMatchObject({ fromMs: 10_000, events: 2, clocks });
  });
});
