// The substitution server (seed Figs. 14-16, P20-P33) on the Fig. 14 lab: it registers
// (type 9 -> 10), allocates (type 3 from the server, applied by both routers; the master
// records it without a response, P24, and the backup's responses reach the master through
// the server, P25), runs a review requested by an overloaded backup (6 -> server, 7 from
// the server, 8, the end systems asked again, P33, 3 from the server, 4), and when it is
// killed the master does the work again with no interruption of forwarding (far-side
// capture: no gap beyond the machine's jitter, no duplicate).
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
import { startCoordinator } from "../lib/roles/vrls/coordinator.ts";
import {
  startInfoResponders,
  startVirtualRouter,
  virtualRouterConfig,
} from "../lib/roles/vrls/lab-harness.ts";
import { loadTopology } from "../lib/topology/load.ts";
import { findSequence, VrlsWireLog } from "../lib/traffic/wire-log.ts";
import { VRLS_TYPE } from "../lib/wire/vrls.ts";

const RA = "198.18.1.2";
const RB = "198.18.1.3";
const SUB = "198.18.1.6";
const BUCKETS = 32;

interface CoordinatorStatus {
  registered: boolean;
  master: { epoch: number; allocation: Record<string, string>; inFlight: unknown } | null;
  counters?: Record<string, number>;
}

describe("VRLS substitution server on the Fig. 14 lab", () => {
  it("registers, allocates, reviews through the server; killed, the master takes over without interruption", async () => {
    const loaded = loadTopology("labs/vrls-fig14.yaml");
    await withLab(loaded, async (lab) => {
      await addServerAddresses(lab);
      await limitCapacity(lab, ["ra", "rb"], 4);
      const cfg = virtualRouterConfig(loaded, "vr1", {
        advertIntervalMs: 100,
        discoveryMs: 100,
        conditions: { kind: "bucket", over: "src+dst", count: BUCKETS, seed: 0 },
        review: {
          imbalancePct: 30,
          overflowsPerUnit: 20,
          holdDownMs: 3000,
          collectMs: 300,
          minRateBps: 100_000,
          sampleMs: 250,
          windowMs: 1000,
          timeUnitMs: 1000,
        },
      });
      const wire = await VrlsWireLog.start(lab, "es4");
      // The end systems answer ICMP information requests (P33 before the review's reallocation).
      const responders = await startInfoResponders(lab, LAN_END_SYSTEMS);
      const vr = await startVirtualRouter(lab, cfg);
      const sub = await startCoordinator(lab, cfg);
      try {
        await vr.waitForMaster(15_000, "ra");
        // P20-P24: registered, and the routers apply the server's allocation.
        let st: CoordinatorStatus = { registered: false, master: null };
        const until = Date.now() + 15_000;
        while (Date.now() < until) {
          st = await sub.call<CoordinatorStatus>("status");
          const rbSt = await vr.status("rb");
          if (
            st.registered &&
            st.master?.inFlight === null &&
            Object.keys(st.master.allocation).length === BUCKETS &&
            rbSt.member.epoch === st.master.epoch
          )
            break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const allocation = st.master?.allocation ?? {};
        expect(Object.keys(allocation), `${JSON.stringify(st)}\n${sub.logText()}`).toHaveLength(BUCKETS);
        expect(new Set(Object.values(allocation))).toEqual(new Set([RA, RB]));
        const raSt = await vr.status("ra");
        expect(raSt.master, "the master rests while the server allocates").toBeNull();

        // P30-P32: skew onto rb's buckets; rb asks the server for a review.
        const paths = await lanPaths(lab, 51);
        const base: Flow[] = LAN_END_SYSTEMS.map((h, i) => ({ host: h, dst: SERVER, streamId: 1 + i }));
        const skew = skewDestinations({
          src: LAN_END_SYSTEM_ADDRESSES.es1 as string,
          owner: RB,
          allocation,
          buckets: BUCKETS,
          seed: 0,
          flows: 9,
          avoid: base.map((f) => ({ src: LAN_END_SYSTEM_ADDRESSES[f.host] as string, dst: f.dst })),
        }).map((dst, i) => ({ host: "es1", dst, streamId: 11 + i }));
        const reviewStart = Date.now();
        const r1 = await runLoad(lab, [...base, ...skew], {
          ppsPerFlow: 85,
          durationMs: 8000,
          frameBytes: 1000,
          port: 6600,
          paths,
        });
        const after1 = mbpsByMac(r1.analysis, r1.endedAt - 3000, r1.endedAt, 1000, [
          "02:00:00:00:64:02",
          "02:00:00:00:64:03",
        ]);

        const reviewCounters = (await sub.call<CoordinatorStatus>("status")).counters ?? {};

        // The server dies during steady forwarding: the master takes over, nothing stops.
        let killedAt = 0;
        const r2 = await runLoad(
          lab,
          base,
          { ppsPerFlow: 500, durationMs: 3000, frameBytes: 100, port: 6700, paths },
          async () => {
            await new Promise((r) => setTimeout(r, 1000));
            killedAt = Date.now();
            await lab.host("sub").exec(`ip link set eth0 down; kill -9 ${sub.pid}`);
          },
        );
        await new Promise((r) => setTimeout(r, 300));
        const raAfter = await vr.status("ra");
        const log = await wire.stop();

        const gaps = r2.analysis.streams.map((s) => s.longestInterruption?.ms ?? -1);
        const dups = [wireDuplicates(r1.analysis), wireDuplicates(r2.analysis)];
        const diag = `${JSON.stringify({ dups, after1, gaps, killedAt, raMaster: raAfter.master, counters: raAfter.counters, reviewCounters })}\n${log
          .filter((m) => m.type >= 3)
          .map((m) => `${m.at} ${m.src}>${m.dst} ${m.type}`)
          .join("\n")}\n${sub.logText()}`;

        expect(
          findSequence(log, [
            { type: VRLS_TYPE.registration, src: SUB },
            { type: VRLS_TYPE.registrationAck, src: RA },
            { type: VRLS_TYPE.allocation, src: SUB },
          ]),
          diag,
        ).not.toBeNull();
        const firstServerAllocation =
          log.find((m) => m.type === VRLS_TYPE.allocation && m.src === SUB)?.at ?? 0;
        const fromServerOn = log.filter(
          (m) =>
            m.type === VRLS_TYPE.allocationConfirmation && m.at >= firstServerAllocation && m.at < killedAt,
        );
        // P24: the master records the server's allocations without a response.
        expect(
          fromServerOn.filter((m) => m.src === RA),
          diag,
        ).toEqual([]);
        // P25: the backup responds to the server, which transfers the response to the master.
        expect(fromServerOn.filter((m) => m.src === RB && m.dst === SUB).length, diag).toBeGreaterThan(0);
        expect(fromServerOn.filter((m) => m.src === SUB && m.dst === RA).length, diag).toBeGreaterThan(0);
        // P33: the review's reallocation came after the end systems were asked again.
        expect(reviewCounters["infoRequests.review"] ?? 0, diag).toBeGreaterThan(0);
        expect(reviewCounters.reviewReallocations ?? 0, diag).toBeGreaterThan(0);
        expect(
          findSequence(
            log,
            [{ type: 6, src: RB }, { type: 7, src: SUB }, { type: 8 }, { type: 3, src: SUB }, { type: 4 }],
            reviewStart,
          ),
          diag,
        ).not.toBeNull();
        expect(
          log.filter((m) => m.type === 6 && m.at >= reviewStart).every((m) => m.dst === SUB),
          diag,
        ).toBe(true);
        expect(deviationPct(Object.values(after1)), diag).toBeLessThanOrEqual(15);
        // Work handed back: the master engine runs again, with the server's allocation.
        expect(raAfter.master, diag).not.toBeNull();
        expect(raAfter.counters.coordinatorFaults, diag).toBe(1);
        expect(raAfter.master?.allocation, diag).toEqual(
          Object.fromEntries(Object.entries((await vr.status("rb")).member.owners)),
        );
        expect(dups, diag).toEqual([0, 0]);
        for (const g of gaps) expect(g, diag).toBeLessThan(60);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${await vr.diagnostics()}`);
      } finally {
        await wire.stop().catch(() => undefined);
        await sub.stop().catch(() => undefined);
        await vr.stop();
        await Promise.all(responders.map((x) => x.stop().catch(() => undefined)));
      }
    });
  }, 170_000);
});
