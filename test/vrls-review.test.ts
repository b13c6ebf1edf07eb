// Allocation review and reallocation (seed "Allocation reviewing and reallocation", Figs. 15,
// 10D-10F) on the Fig. 7 lab with per-member capacity limits (tbf on the far-side egress):
// skewed load lands on one member, its qdisc overflows, the review moves hash buckets by
// measured rate. Both triggers on the wire (backup: 6 -> 7 -> 8 -> 3 -> 4 -> 5; master:
// 7 -> 8 -> 3 -> 4), the hold-down between reviews, and the balance measured on the far
// segment by forwarding MAC. Plus the reviewer's decision rules, pure.
import { describe, expect, it } from "vitest";
import {
  addServerAddresses,
  deviationPct,
  type Flow,
  LAN_END_SYSTEM_ADDRESSES,
  LAN_END_SYSTEMS,
  lanPaths,
  limitCapacity,
  mbpsByMac,
  runLoad,
  SERVER,
  skewDestinations,
  wireDuplicates,
} from "../lib/experiments/sharing-run.ts";
import { withLab } from "../lib/lab/index.ts";
import { startVirtualRouter, virtualRouterConfig } from "../lib/roles/vrls/lab-harness.ts";
import { ReviewedCore } from "../lib/roles/vrls/reviewed-core.ts";
import { imbalancePct, loadsOf, Reviewer } from "../lib/roles/vrls/reviewer.ts";
import { RouterCore } from "../lib/roles/vrls/router-core.ts";
import { loadTopology } from "../lib/topology/load.ts";
import { findSequence, VrlsWireLog } from "../lib/traffic/wire-log.ts";

const RA = "198.18.1.2";
const RB = "198.18.1.3";
const FAR_MAC: Record<string, string> = { [RA]: "02:00:00:00:64:02", [RB]: "02:00:00:00:64:03" };
const OPTS = {
  imbalancePct: 30,
  overflowsPerUnit: 20,
  holdDownMs: 3000,
  collectMs: 300,
  minRateBps: 100_000,
};

describe("reviewer decision rules (pure)", () => {
  it("a backup over its threshold asks once per hold-down; the master collects, decides by rate, holds down", () => {
    const alloc = new Map([
      ["a", RA],
      ["b", RB],
      ["c", RB],
    ]);
    const rates = new Map([
      ["a", 1e6],
      ["b", 5e6],
      ["c", 5e6],
    ]);
    const backup = new Reviewer(RB, OPTS);
    const ctx = { now: 0, role: "backup" as const, master: RA, healthy: [], allocation: alloc, epoch: 1 };
    const s = { at: 0, rates, mine: ["b", "c"], overflowsPerUnit: 0 };
    expect(backup.onSample(s, ctx).filter((a) => a.type === "send")).toHaveLength(1);
    expect(backup.onSample({ ...s, at: 1000 }, { ...ctx, now: 1000 })).toHaveLength(0);
    expect(backup.onSample({ ...s, at: 3100 }, { ...ctx, now: 3100 }).some((a) => a.type === "send")).toBe(
      true,
    );
    // The balanced member does not ask.
    const ra = new Reviewer(RA, OPTS);
    expect(
      ra.onSample(
        { at: 0, rates, mine: ["a"], overflowsPerUnit: 0 },
        { ...ctx, role: "master", healthy: [RA, RB] },
      ),
    ).toHaveLength(0);
    // Master: request -> 7 to the backup -> 8 -> reallocate by rate; a second request is suppressed.
    const sends = ra.onReviewRequest(RB, 10, [RA, RB], 1, true).filter((a) => a.type === "send");
    expect(sends.map((a) => a.type === "send" && a.message.type)).toEqual(["rateRequest"]);
    const d = ra.onRateResponse(
      RB,
      {
        type: "rateResponse",
        epoch: 1,
        rates: [
          { condition: "b", bps: 5e6 },
          { condition: "c", bps: 5e6 },
        ],
        overflowsPerUnit: 100,
      },
      20,
      alloc,
      [RA, RB],
    );
    expect(d.some((a) => a.type === "reallocateByRate")).toBe(true);
    expect(ra.onReviewRequest(RB, 2000, [RA, RB], 1, true).some((a) => a.type === "send")).toBe(false);
    expect(ra.counters.suppressed).toBe(1);
    expect(imbalancePct(loadsOf(alloc, rates, [RA, RB]).values())).toBeGreaterThan(100);
  });

  it("a backup that answered a flow rate request (7) does not ask (6) within the hold-down after it", () => {
    const alloc = new Map([
      ["a", RA],
      ["b", RB],
    ]);
    const rb = new Reviewer(RB, OPTS);
    const ctx = (now: number) => ({
      now,
      role: "backup" as const,
      master: RA,
      healthy: [],
      allocation: alloc,
      epoch: 1,
    });
    const hot = (at: number) => ({ at, rates: new Map([["b", 5e6]]), mine: ["b"], overflowsPerUnit: 100 });
    // The master's voluntary review reaches rb first: rb answers (8) ...
    expect(rb.onRateRequest(RA, 1, 1000).map((a) => a.type === "send" && a.message.type)).toEqual([
      "rateResponse",
    ]);
    // ... and, overloaded a moment later, must not start another review in its hold-down.
    expect(rb.onSample(hot(1100), ctx(1100))).toEqual([]);
    expect(rb.onSample(hot(3900), ctx(3900))).toEqual([]);
    expect(rb.onSample(hot(4001), ctx(4001)).some((a) => a.type === "send")).toBe(true);
  });

  it("the hold-down runs from when a request leaves, not from when its flow sample was started", () => {
    // rb, a backup of ra: a flow monitor sample whose counter read began at 4000 is handed
    // over at 5000 (a slow `tc` spawn), stamped 4000 as the agent used to. The request
    // leaves at 5000, so the hold-down lasts until 8000; started at 4000 it ended at 7000
    // and a request at 7900 left inside it.
    const core = new RouterCore({
      vrid: 51,
      self: RB,
      priority: 100,
      advertIntervalCs: 10,
      preempt: true,
      virtualAddresses: ["198.18.1.1"],
      members: [
        { id: RA, priority: 200 },
        { id: RB, priority: 100 },
      ],
      mode: "exactly-once",
      timerDelayMs: 20,
      retryMs: 20,
      maxRetries: 25,
      responseTimeoutMs: 450,
      discoveryMs: 100,
      infoRequestIntervalMs: 0,
      subnets: [{ cidr: "198.18.1.0/24", via: null }],
      conditions: { kind: "address" },
    });
    const reviewed = new ReviewedCore(core, OPTS);
    reviewed.handle({ type: "startup", now: 0 });
    reviewed.handle({ type: "advertisement", now: 10, from: RA, priority: 200, maxAdverIntCs: 10 });
    expect(core.role).toBe("backup");
    const requests = (now: number, sampledAt = now) =>
      reviewed
        .handle({ type: "flowSample", now, sampledAt, rates: new Map(), overflowsPerUnit: 100 })
        .filter((a) => a.type === "send" && a.message.type === "reviewRequest").length;
    reviewed.handle({ type: "advertisement", now: 5000, from: RA, priority: 200, maxAdverIntCs: 10 });
    expect(requests(4000)).toBe(1);
    expect(requests(7900)).toBe(0);
    // An event stamped in the past (the agent's old behaviour) cannot move the clock back.
    reviewed.handle({ type: "advertisement", now: 7950, from: RA, priority: 200, maxAdverIntCs: 10 });
    expect(requests(7000, 7000)).toBe(0);
    expect(requests(8001)).toBe(1);
  });

  it("no reallocation when the by-rate allocation does not clearly help", () => {
    const alloc = new Map([
      ["a", RA],
      ["b", RB],
    ]);
    const ra = new Reviewer(RA, OPTS);
    ra.onSample(
      { at: 0, rates: new Map([["a", 5e6]]), mine: ["a"], overflowsPerUnit: 0 },
      { now: 0, role: "backup", master: null, healthy: [], allocation: alloc, epoch: 1 },
    );
    ra.onReviewRequest(RB, 10, [RA, RB], 1, true);
    const d = ra.onRateResponse(
      RB,
      { type: "rateResponse", epoch: 1, rates: [{ condition: "b", bps: 4e6 }], overflowsPerUnit: 200 },
      20,
      alloc,
      [RA, RB],
    );
    expect(d.some((a) => a.type === "reallocateByRate")).toBe(false);
    expect(ra.decisions[0]?.reallocated).toBe(false);
  });
});

describe("VRLS review on the Fig. 7 lab with capacity limits", () => {
  it("backup-triggered then master-triggered review on the wire; balanced after; hold-down respected", async () => {
    const loaded = loadTopology("labs/vrls-fig7.yaml");
    await withLab(loaded, async (lab) => {
      const BUCKETS = 32;
      await addServerAddresses(lab);
      await limitCapacity(lab, ["ra", "rb"], 4);
      const vr = await startVirtualRouter(
        lab,
        virtualRouterConfig(loaded, "vr1", {
          advertIntervalMs: 100,
          mode: "exactly-once",
          discoveryMs: 100,
          conditions: { kind: "bucket", over: "src+dst", count: BUCKETS, seed: 0 },
          review: { ...OPTS, sampleMs: 250, windowMs: 1000, timeUnitMs: 1000 },
        }),
      );
      const wire = await VrlsWireLog.start(lab, "es4");
      let log: Awaited<ReturnType<VrlsWireLog["stop"]>> = [];
      try {
        await vr.waitForMaster(15_000, "ra");
        const initial = await vr.waitAllocated(BUCKETS);
        const paths = await lanPaths(lab, 51);
        const base: Flow[] = LAN_END_SYSTEMS.map((h, i) => ({ host: h, dst: SERVER, streamId: 1 + i }));
        const avoid = base.map((f) => ({ src: LAN_END_SYSTEM_ADDRESSES[f.host] as string, dst: f.dst }));
        const skewOnto = (owner: string, allocation: Record<string, string>, first: number): Flow[] =>
          skewDestinations({
            src: LAN_END_SYSTEM_ADDRESSES.es1 as string,
            owner,
            allocation,
            buckets: BUCKETS,
            seed: 0,
            flows: 9,
            avoid,
          }).map((dst, i) => ({ host: "es1", dst, streamId: first + i }));
        const load = { ppsPerFlow: 85, durationMs: 9000, frameBytes: 1000, paths };

        // 1. Skew onto the backup (rb): it overflows and asks for a review (type 6).
        const run1Start = Date.now();
        const r1 = await runLoad(lab, [...base, ...skewOnto(RB, initial, 11)], { ...load, port: 6100 });
        const after1 = mbpsByMac(r1.analysis, r1.endedAt - 3000, r1.endedAt, 1000, [
          FAR_MAC[RA]!,
          FAR_MAC[RB]!,
        ]);
        const s1 = await vr.status("ra");
        await new Promise((r) => setTimeout(r, 3200)); // past the hold-down
        const realloc = await vr.waitAllocated(BUCKETS);

        // 2. Skew onto the master (ra): it collects on its own (type 7 without a 6).
        const run2Start = Date.now();
        const r2 = await runLoad(lab, [...base, ...skewOnto(RA, realloc, 31)], { ...load, port: 6200 });
        const after2 = mbpsByMac(r2.analysis, r2.endedAt - 3000, r2.endedAt, 1000, [
          FAR_MAC[RA]!,
          FAR_MAC[RB]!,
        ]);
        const s2 = await vr.status("ra");
        log = await wire.stop();
        const ext = log.filter((m) => m.type >= 3);
        const dups = [...r1.analysis.streams, ...r2.analysis.streams]
          .filter((x) => x.duplicates > 0)
          .map((x) => ({ stream: x.streamId, dup: x.duplicatesPerLabel }));
        const diag = `${JSON.stringify({ after1, after2, dups, s1: s1.review, s2: s2.review })}\n${ext
          .map((m) => `${m.at} ${m.src} ${m.type}`)
          .join("\n")}`;

        const backupPath = findSequence(
          log,
          [
            { type: 6, src: RB },
            { type: 7, src: RA },
            { type: 8, src: RB },
            { type: 3, src: RA },
            { type: 4 },
            { type: 5 },
          ],
          run1Start,
        );
        expect(backupPath, diag).not.toBeNull();
        // Master path: a 7 with no 6 in the second before it.
        const voluntary = log.find(
          (m) =>
            m.type === 7 &&
            m.at >= run2Start &&
            !log.some((x) => x.type === 6 && x.at <= m.at && x.at > m.at - 1000),
        );
        expect(voluntary, diag).toBeDefined();
        expect(
          findSequence(
            log,
            [{ type: 7, src: RA }, { type: 8, src: RB }, { type: 3, src: RA }, { type: 4 }],
            voluntary!.at,
          ),
          diag,
        ).not.toBeNull();
        // Hold-down: review rounds (type 7) and requests (type 6) at least holdDownMs apart.
        const rounds = log.filter((m) => m.type === 7).map((m) => m.at);
        const requests = log.filter((m) => m.type === 6).map((m) => m.at);
        for (const xs of [rounds, requests])
          for (let i = 1; i < xs.length; i++)
            expect((xs[i] as number) - (xs[i - 1] as number), diag).toBeGreaterThan(OPTS.holdDownMs - 100);
        // Balanced after each review (analyzer's figures: far-side frames per forwarding MAC).
        expect(deviationPct(Object.values(after1)), diag).toBeLessThanOrEqual(15);
        expect(deviationPct(Object.values(after2)), diag).toBeLessThanOrEqual(15);
        expect(wireDuplicates(r1.analysis) + wireDuplicates(r2.analysis), diag).toBe(0);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${await vr.diagnostics()}`);
      } finally {
        await wire.stop().catch(() => undefined);
        await vr.stop();
      }
    });
  }, 170_000);
});
