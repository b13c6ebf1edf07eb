import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { estimateRemainingMs, readDurations, recordDurations } from "../lib/certify/durations.ts";
import { CertifyDisplay, FaultsDisplay } from "../lib/cli/progress.ts";

// The plain (CI) form of `tandem certify` progress and the case-history estimate.
// test/certify-cli.test.ts reads the same lines from a real run.
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("certify progress, not on a terminal", () => {
  it("prints lab steps when finished, one line per finished case and the report steps", () => {
    const lines: string[] = [];
    const d = new CertifyDisplay(false, (l) => lines.push(l));
    d.handle({
      type: "cases",
      cases: [
        { id: "vrls.sharing-steady", requirements: ["VRLS-ALLOC-003"] },
        { id: "vrls.handoff", requirements: ["VRLS-HO-001", "VRLS-HO-002"] },
      ],
      history: { cases: { "vrls.sharing-steady": 4000, "vrls.handoff": 6000 } },
    });
    d.handle({ type: "lab-progress", step: "namespaces", done: 3, total: 11 });
    d.handle({ type: "lab-progress", step: "namespaces", done: 11, total: 11 });
    d.handle({ type: "lab-up", prefix: "tdabcde", ms: 2345 });
    d.handle({ type: "case-start", id: "vrls.sharing-steady" });
    d.handle({
      type: "case-end",
      id: "vrls.sharing-steady",
      outcome: "pass",
      durationMs: 4512,
      requirements: ["VRLS-ALLOC-003"],
    });
    d.handle({
      type: "case-end",
      id: "vrls.handoff",
      outcome: "fail",
      durationMs: 61000,
      requirements: ["VRLS-HO-001", "VRLS-HO-002"],
    });
    d.handle({ type: "step", step: "report", detail: "summary" });
    d.stop();
    expect(lines).toEqual([
      "suite: 2 cases; estimated ~10 s from earlier runs",
      "lab: namespaces 11/11",
      "lab: tdabcde up in 2.3 s",
      "[1/2] pass  VRLS-ALLOC-003 vrls.sharing-steady 4.5 s",
      "[2/2] fail  VRLS-HO-001,VRLS-HO-002 vrls.handoff 61.0 s",
      "report: summary",
    ]);
  });

  it("says so when there is no history to estimate from", () => {
    const lines: string[] = [];
    const d = new CertifyDisplay(false, (l) => lines.push(l));
    d.handle({ type: "cases", cases: [{ id: "vrrp.one", requirements: [] }], history: { cases: {} } });
    expect(lines).toEqual(["suite: 1 cases; no earlier run to estimate the time from"]);
  });
});

describe("faults progress, not on a terminal", () => {
  it("prints the campaign's plan and one line per finished run, with caught/missed so far", () => {
    const lines: string[] = [];
    const d = new FaultsDisplay(false, (l) => lines.push(l));
    const suite = "natlb" as const;
    d.handle({ type: "run-start", suite, run: "clean", index: 0, total: 2 });
    d.handle({ type: "case-end", suite, run: "clean", id: "natlb.dnat", outcome: "pass" });
    d.handle({
      type: "run-end",
      suite,
      run: "clean",
      index: 0,
      total: 2,
      verdict: "certified",
      caught: 0,
      missed: 0,
      line: "clean: certified (10 pass, 0 fail) in 38 s",
    });
    d.handle({ type: "run-start", suite, run: "natlb-no-garp", index: 1, total: 2 });
    d.handle({
      type: "run-end",
      suite,
      run: "natlb-no-garp",
      index: 1,
      total: 2,
      verdict: "caught",
      caught: 1,
      missed: 0,
      line: "fault 1/2 natlb-no-garp: CAUGHT (expected NATLB-MOVE-002; failed NATLB-MOVE-002) 12 s; so far 1 caught, 0 missed",
    });
    d.stop();
    expect(lines).toEqual([
      "[faults natlb] clean run (whole suite), then 2 fault run(s)",
      "[faults natlb] clean: certified (10 pass, 0 fail) in 38 s",
      "[faults natlb] fault 1/2 natlb-no-garp: CAUGHT (expected NATLB-MOVE-002; failed NATLB-MOVE-002) 12 s; so far 1 caught, 0 missed",
    ]);
  });
});

describe("case history", () => {
  it("estimates the time left from earlier durations, the mean for unknown cases", () => {
    const h = { labMs: 3000, cases: { a: 10_000, b: 20_000 } };
    expect(estimateRemainingMs({ cases: {} }, ["a"], undefined, undefined)).toBeUndefined();
    expect(estimateRemainingMs(h, ["a", "b"], undefined, undefined)).toBe(30_000);
    // c is unknown (mean 15 s); a has run 4 s of its 10; the lab is 1 s into its 3.
    expect(estimateRemainingMs(h, ["b", "c"], { id: "a", elapsedMs: 4000 }, { elapsedMs: 1000 })).toBe(
      20_000 + 15_000 + 6000 + 2000,
    );
    // A case that overruns its history adds nothing (never a negative time).
    expect(estimateRemainingMs(h, [], { id: "a", elapsedMs: 12_000 }, undefined)).toBe(0);
  });

  it("keeps the last duration per case, per suite and device", async () => {
    dir = await mkdtemp(join(tmpdir(), "tandem-durations-"));
    const file = join(dir, "tandem", "case-durations.json");
    await recordDurations("vrls", "reference", { labMs: 2000, cases: { a: 1, b: 2 } }, file);
    await recordDurations("vrls", "reference", { cases: { b: 3 } }, file);
    await recordDurations("vrrp", "keepalived", { cases: { x: 9 } }, file);
    expect(await readDurations("vrls", "reference", file)).toEqual({ labMs: 2000, cases: { a: 1, b: 3 } });
    expect(await readDurations("vrrp", "keepalived", file)).toEqual({ cases: { x: 9 } });
    expect(await readDurations("natlb", "reference", file)).toEqual({ cases: {} });
    expect(JSON.parse(await readFile(file, "utf8"))).toHaveProperty(["vrls/reference", "cases", "a"], 1);
  });
});
