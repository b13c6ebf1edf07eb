import { resolve } from "node:path";
import {
  addServerAddresses,
  type Flow,
  LAN_END_SYSTEM_ADDRESSES,
  LAN_END_SYSTEMS,
  type LoadRun,
  lanPaths,
  limitCapacity,
  mbpsByMac,
  runLoad,
  SERVER,
  skewDestinations,
  wireDuplicates,
} from "../../lib/experiments/sharing-run.ts";
import { type Lab, upLab } from "../../lib/lab/index.ts";
import { startCoordinator } from "../../lib/roles/vrls/coordinator.ts";
import {
  type RunningVirtualRouter,
  startInfoResponders,
  startVirtualRouter,
  virtualRouterConfig,
} from "../../lib/roles/vrls/lab-harness.ts";
import { ReviewSpec } from "../../lib/roles/vrls/review-config.ts";
import { loadTopology } from "../../lib/topology/load.ts";
import type { CaptureStats } from "../../lib/traffic/capture.ts";
import type { ChartEvent } from "../../lib/traffic/chart.ts";
import type { Timeline } from "../../lib/traffic/stream-tally.ts";
import type { VendorAdapter } from "../../vendor-adapters/types.ts";
import {
  describeLanMessages,
  type LanMessage,
  readLanMessages,
  startScenarioCaptures,
} from "./lan-capture.ts";
import { ADVERT_MS, dutOverrides, dutRouterFaults, FAR_MAC, RA, RB } from "./review.ts";
import { longestGapsIn, sumTimelines } from "./traffic.ts";

/**
 * The substitution server scenario (seed Fig. 14, Fig. 15 P20-P26, Fig. 16 P30-P33, and
 * "when a failure occurs in substitution server 6 ... master router 3-1 performs the
 * processing") on its own lab, labs/vrls-fig14.yaml (Fig. 7 plus server 6 on hub 2),
 * brought up and torn down by the scenario:
 *
 * - phase A, address conditions: the server registers (9 -> 10), asks the end systems
 *   (ICMP 15 -> 16) and allocates (3); the master rests and records the allocation without
 *   a response (P24); the backup's response (4) goes to the server, which transfers it,
 *   unchanged, to the master (P25); the master's markers (5) go to the backup (P26);
 * - phase B, hash-bucket conditions and tbf capacity limits (as the review scenario):
 *   skew onto the backup, which asks the server for a review (6 -> server, 7, 8); the
 *   server asks the end systems again (ICMP 15 -> 16, P33), then reallocates (3, 4);
 *   then, under 4 x 500 pps, the server is killed (cable pulled, process killed): the
 *   master takes the work back with no interruption and no duplicate on the far side.
 *
 * Stand-in (reported): the adapters' VrlsControl has no substitution-server operations
 * and the reference adapter does not declare `vrls-substitution` yet, so for the
 * reference the scenario drives the role's own harness (startVirtualRouter,
 * startCoordinator) on the Fig. 14 lab. Other devices cannot run it.
 */
export const SUB = "198.18.1.6";
const FIG14 = resolve("labs/vrls-fig14.yaml");
const BUCKETS = 32;
/** Scheduling jitter of this shared machine (the role's coordinator test: 60 ms). */
export const SUB_JITTER_MS = 60;

export interface CoordinatorStatus {
  registered: boolean;
  master: { epoch: number; allocation: Record<string, string>; inFlight: unknown } | null;
  counters?: Record<string, number>;
}

export interface SubstitutionScenario {
  key: string;
  /** Phase A (address conditions). */
  a: {
    startedAt: number;
    server: CoordinatorStatus;
    raMasterEngine: unknown;
    owners: { ra: Record<string, string>; rb: Record<string, string> };
    messages: LanMessage[];
  };
  /** Phase B (buckets, review, server killed). */
  b: {
    startedAt: number;
    reviewRun: { startedAt: number; endedAt: number; duplicates: number; after: Record<string, number> };
    killRun: {
      startedAt: number;
      endedAt: number;
      killedAt: number;
      duplicates: number;
      /** Longest gap per stream over the whole run (the senders' start included). */
      gapsMs: { stream: number; ms: number }[];
      /** Longest gap per stream from 200 ms before the kill to the end of the run. */
      gapsAroundKillMs: { stream: number; ms: number; fromMs: number | null }[];
    };
    raAfter: { master: unknown; counters: Record<string, number> };
    rbOwners: Record<string, string>;
    messages: LanMessage[];
  };
  lanCapturePath: string;
  farCapturePath: string;
  /**
   * tcpdump's closing statistics: hub 2 (messages), the far-side evidence capture (the
   * kill run's gaps come from it), and the far-side captures of phase B's two runs.
   */
  captures: { lan: CaptureStats; far: CaptureStats; reviewRun: CaptureStats; killRun: CaptureStats };
  listing: string;
  timeline: Timeline;
  events: ChartEvent[];
  logs: string;
}

function assertReference(adapter: VendorAdapter): void {
  if (adapter.name !== "reference")
    throw new Error(
      `device ${adapter.name}: the adapter interface (VrlsControl) has no substitution-server operations; only the reference is driven, through its role harness`,
    );
}

async function waitServerAllocated(
  sub: Awaited<ReturnType<typeof startCoordinator>>,
  vr: RunningVirtualRouter,
  conditions: number,
  timeoutMs: number,
): Promise<CoordinatorStatus> {
  let st: CoordinatorStatus = { registered: false, master: null };
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    st = await sub.call<CoordinatorStatus>("status");
    const rb = await vr.status("rb");
    if (
      st.registered &&
      st.master?.inFlight === null &&
      Object.keys(st.master.allocation).length >= conditions &&
      rb.member.epoch === st.master.epoch
    )
      return st;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `the substitution server did not allocate ${conditions} conditions within ${timeoutMs} ms: ${JSON.stringify(st)}\n${sub.logText()}\n${await vr.diagnostics()}`,
  );
}

export async function runSubstitutionScenario(adapter: VendorAdapter): Promise<SubstitutionScenario> {
  assertReference(adapter);
  const loaded = loadTopology(FIG14);
  const lab: Lab = await upLab(loaded);
  const logs: string[] = [];
  try {
    await addServerAddresses(lab);
    const { lan, far } = await startScenarioCaptures(lab, "substitution", {
      lanFilter: "ip proto 112 or icmp",
      farPorts: [6600, 6700],
    });
    try {
      // ---- Phase A: address conditions, the server discovers and allocates (P20-P26).
      const aStartedAt = Date.now();
      const cfgA = virtualRouterConfig(loaded, undefined, {
        advertIntervalMs: ADVERT_MS,
        ...dutOverrides(),
        discoveryMs: 300,
      });
      const responders = await startInfoResponders(lab, LAN_END_SYSTEMS);
      let vr = await startVirtualRouter(lab, { ...cfgA, ...dutRouterFaults() });
      let sub = await startCoordinator(lab, cfgA);
      let a: SubstitutionScenario["a"];
      try {
        await vr.waitForMaster(15_000, "ra");
        const server = await waitServerAllocated(sub, vr, LAN_END_SYSTEMS.length, 20_000);
        await new Promise((r) => setTimeout(r, 500)); // the allocation's confirmations on the wire
        const [raSt, rbSt] = await Promise.all([vr.status("ra"), vr.status("rb")]);
        a = {
          startedAt: aStartedAt,
          server,
          raMasterEngine: raSt.master,
          owners: { ra: raSt.member.owners, rb: rbSt.member.owners },
          messages: [],
        };
      } finally {
        logs.push(`==== phase A: sub ====\n${sub.logText()}`);
        for (const [h, ag] of vr.agents) logs.push(`==== phase A: ${h} ====\n${ag.logText()}`);
        await sub.stop().catch(() => undefined);
        await vr.stop();
        await Promise.all(responders.map((x) => x.stop().catch(() => undefined)));
      }

      // ---- Phase B: buckets under capacity limits; review through the server (P30-P33); server killed.
      const bStartedAt = Date.now();
      await limitCapacity(lab, ["ra", "rb"], 4);
      const cfgB = virtualRouterConfig(loaded, undefined, {
        advertIntervalMs: ADVERT_MS,
        ...dutOverrides(),
        discoveryMs: 100,
        conditions: { kind: "bucket", over: "src+dst", count: BUCKETS, seed: 0 },
        review: ReviewSpec.parse({
          imbalancePct: 30,
          overflowsPerUnit: 20,
          holdDownMs: 3000,
          collectMs: 300,
          minRateBps: 100_000,
          sampleMs: 250,
          windowMs: 1000,
          timeUnitMs: 1000,
        }),
      });
      // The end systems answer the server's information requests again: before a review's
      // reallocation it collects them anew (Fig. 16 P33).
      const respondersB = await startInfoResponders(lab, LAN_END_SYSTEMS);
      vr = await startVirtualRouter(lab, { ...cfgB, ...dutRouterFaults() });
      sub = await startCoordinator(lab, cfgB);
      let b: SubstitutionScenario["b"];
      let r1: LoadRun | undefined;
      let r2: LoadRun | undefined;
      try {
        await vr.waitForMaster(15_000, "ra");
        const st = await waitServerAllocated(sub, vr, BUCKETS, 20_000);
        const allocation = st.master?.allocation ?? {};
        const paths = await lanPaths(lab, cfgB.spec.vrid);
        const base = (first: number): Flow[] =>
          LAN_END_SYSTEMS.map((h, i) => ({ host: h, dst: SERVER, streamId: first + i }));
        const skew = skewDestinations({
          src: LAN_END_SYSTEM_ADDRESSES.es1 as string,
          owner: RB,
          allocation,
          buckets: BUCKETS,
          seed: 0,
          flows: 9,
          avoid: base(0).map((f) => ({ src: LAN_END_SYSTEM_ADDRESSES[f.host] as string, dst: f.dst })),
        }).map((dst, i) => ({ host: "es1", dst, streamId: 11 + i }));
        r1 = await runLoad(lab, [...base(1), ...skew], {
          ppsPerFlow: 85,
          durationMs: 8000,
          frameBytes: 1000,
          port: 6600,
          paths,
        });
        const after = mbpsByMac(r1.analysis, r1.endedAt - 3000, r1.endedAt, 1000, [
          FAR_MAC[RA] as string,
          FAR_MAC[RB] as string,
        ]);
        let killedAt = 0;
        const subPid = sub.pid;
        r2 = await runLoad(
          lab,
          base(21),
          // The server's silence is noticed after the response timeout (4 x 500 + 50 ms):
          // the run goes on for 3 s after that.
          { ppsPerFlow: 500, durationMs: 5000, frameBytes: 100, port: 6700, paths },
          async () => {
            await new Promise((r) => setTimeout(r, 1000));
            killedAt = Date.now();
            await lab.host("sub").exec(`ip link set eth0 down; kill -9 ${subPid}`);
          },
        );
        await new Promise((r) => setTimeout(r, 300));
        const [raAfter, rbAfter] = await Promise.all([vr.status("ra"), vr.status("rb")]);
        b = {
          startedAt: bStartedAt,
          reviewRun: {
            startedAt: r1.startedAt,
            endedAt: r1.endedAt,
            duplicates: wireDuplicates(r1.analysis),
            after: { [RA]: after[FAR_MAC[RA] as string] ?? 0, [RB]: after[FAR_MAC[RB] as string] ?? 0 },
          },
          killRun: {
            startedAt: r2.startedAt,
            endedAt: r2.endedAt,
            killedAt,
            duplicates: wireDuplicates(r2.analysis),
            gapsMs: r2.analysis.streams.map((s) => ({
              stream: s.streamId,
              ms: Math.round((s.longestInterruption?.ms ?? 0) * 10) / 10,
            })),
            gapsAroundKillMs: [],
          },
          raAfter: { master: raAfter.master, counters: raAfter.counters as Record<string, number> },
          rbOwners: rbAfter.member.owners,
          messages: [],
        };
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${sub.logText()}\n${await vr.diagnostics()}`);
      } finally {
        logs.push(`==== phase B: sub ====\n${sub.logText()}`);
        for (const [h, ag] of vr.agents) logs.push(`==== phase B: ${h} ====\n${ag.logText()}`);
        await sub.stop().catch(() => undefined);
        await vr.stop();
        await Promise.all(respondersB.map((x) => x.stop().catch(() => undefined)));
      }
      const lanStats = await lan.stop();
      const farStats = await far.stop();
      // Each stream's tail counts, up to its own last send (the run's end is later by the
      // time its generator took to report over SSH).
      const lastSends = new Map(r2.senders.map((x) => [x.streamId, x.lastSendMs]));
      b.killRun.gapsAroundKillMs = (
        await longestGapsIn(
          far.path,
          [21, 22, 23, 24],
          b.killRun.killedAt - 200,
          b.killRun.endedAt,
          lastSends,
        )
      ).map((g) => ({ ...g, fromMs: g.fromMs === null ? null : Math.round(g.fromMs - b.killRun.killedAt) }));
      const { messages } = await readLanMessages(lan.path);
      a.messages = messages.filter((m) => m.tsMs >= aStartedAt && m.tsMs < bStartedAt);
      b.messages = messages.filter((m) => m.tsMs >= bStartedAt);
      let timeline: Timeline | undefined;
      for (const s of [...r1.analysis.streams, ...r2.analysis.streams])
        timeline = timeline ? sumTimelines(timeline, s.timeline) : s.timeline;
      const who = (x: string) => (x === RA ? "ra" : x === RB ? "rb" : x === SUB ? "server" : x);
      return {
        key: cfgA.spec.key,
        a,
        b,
        lanCapturePath: lan.path,
        farCapturePath: far.path,
        captures: { lan: lanStats, far: farStats, reviewRun: r1.capture, killRun: r2.capture },
        listing: await describeLanMessages(lan.path, cfgA.spec.key, { originMs: aStartedAt }),
        timeline: timeline ?? { binMs: 50, startMs: r1.startedAt, series: {} },
        events: [
          ...b.messages
            .filter((m) => m.kind === "vrrp" && (m.type === 6 || m.type === 7))
            .map((m) => ({
              atMs: m.tsMs,
              label: `${m.type} from ${who(m.src)}`,
              kind: m.type === 7 ? ("allocation" as const) : ("other" as const),
            })),
          { atMs: b.killRun.killedAt, label: "server killed", kind: "crash" },
        ],
        logs: logs.join("\n"),
      };
    } finally {
      await lan.stop();
      await far.stop();
    }
  } finally {
    await lab.down();
  }
}
