import { resolve } from "node:path";
import {
  addServerAddresses,
  type LoadRun,
  lanPaths,
  mbpsByMac,
  runLoad,
  wireDuplicates,
} from "../../lib/experiments/sharing-run.ts";
import { waitUntil } from "../../lib/remote/wait.ts";
import type { CaptureStats } from "../../lib/traffic/capture.ts";
import type { ChartEvent } from "../../lib/traffic/chart.ts";
import type { Timeline } from "../../lib/traffic/stream-tally.ts";
import { VRLS_TYPE } from "../../lib/wire/vrls.ts";
import type { VrlsControl, VrlsSubstitutionControl } from "../../vendor-adapters/types.ts";
import { bringUpDevice, type SuiteDevice, takeDown } from "../support/fixture.ts";
import { vrlsMessages } from "./frames.ts";
import { VrlsLab } from "./lab.ts";
import {
  describeLanMessages,
  type LanMessage,
  readLanMessages,
  startScenarioCaptures,
} from "./lan-capture.ts";
import { ADVERT_MS, clearMembers, limitMembers, REVIEW, reviewFlows } from "./review.ts";
import { longestGapsIn, sumTimelines } from "./traffic.ts";

/**
 * The substitution server scenario (seed Fig. 14, Fig. 15 P20-P26, Fig. 16 P30-P33, and
 * "when a failure occurs in substitution server 6 ... master router 3-1 performs the
 * processing") on its own lab, labs/vrls-fig14.yaml (Fig. 7 plus server 6 on hub 2),
 * brought up and torn down by the scenario:
 *
 * It runs on the suite's lab when the device's virtual router there has a substitution
 * server (the lab file's `coordinator:`), otherwise on labs/vrls-fig14.yaml (Fig. 7 plus
 * server 6), brought up and torn down by the scenario with its own adapter.
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
 * The server is the adapter's (VrlsControl.substitution: start, stop, crash, status;
 * capability vrls-substitution).
 */
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
  /** Addresses: the master, the backup whose responses the server transfers, the server. */
  who: { master: string; backup: string; server: string; members: string[]; names: Record<string, string> };
  /** The operation mode in force. */
  mode: string;
  /** LAN end systems' addresses of the scenario's lab. */
  lanEndSystems: string[];
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

async function waitServerAllocated(
  sub: VrlsSubstitutionControl,
  vrls: VrlsControl,
  backup: string,
  conditions: number,
  timeoutMs: number,
): Promise<CoordinatorStatus> {
  let st: CoordinatorStatus = { registered: false, master: null };
  return waitUntil(
    async () => {
      st = await sub.status();
      const b = await vrls.status(backup);
      return st.registered &&
        st.master?.inFlight === null &&
        Object.keys(st.master.allocation).length >= conditions &&
        b.epoch === st.master.epoch
        ? st
        : undefined;
    },
    {
      timeoutMs,
      everyMs: 100,
      what: `the substitution server's allocation of ${conditions} conditions, applied by ${backup}`,
      last: () => st,
    },
  ).catch(async (e: Error) => {
    throw new Error(`${e.message}\n${await sub.logs()}\n${await vrls.diagnostics()}`);
  });
}

/** The lab the scenario runs on: the suite's when its device has a substitution server, else Fig. 14. */
async function substitutionLab(suite: VrlsLab): Promise<{ v: VrlsLab; own?: SuiteDevice }> {
  if (suite.description.substitutionServer) return { v: suite };
  const own = await bringUpDevice(FIG14);
  try {
    if (!own.adapter.vrls) throw new Error(`${FIG14}: the device has no VRLS control surface`);
    return { v: new VrlsLab(own.lab, own.loaded, own.adapter.vrls), own };
  } catch (e) {
    await takeDown(own);
    throw e;
  }
}

export async function runSubstitutionScenario(suite: VrlsLab): Promise<SubstitutionScenario> {
  const { v, own } = await substitutionLab(suite);
  try {
    const vrls = own?.adapter.vrls ?? suite.vrls;
    return await substitutionPhases(v, vrls);
  } finally {
    await takeDown(own);
  }
}

/** What the phases share: the lab, the device, who is who. */
interface Phase {
  v: VrlsLab;
  vrls: VrlsControl;
  sub: VrlsSubstitutionControl;
  /** Member addresses: the master and the backup the scenario watches; the server's address. */
  RA: string;
  RB: string;
  SUB: string;
  lanHosts: string[];
  logs: string[];
}

const SETTINGS = { mode: "exactly-once" as const, advertIntervalMs: ADVERT_MS };

/** Phase A: address conditions; the server discovers and allocates (P20-P26). */
async function phaseA(p: Phase): Promise<SubstitutionScenario["a"]> {
  const { v, vrls, sub } = p;
  const startedAt = Date.now();
  await vrls.start({ ...SETTINGS, discoveryMs: 300, infoResponders: p.lanHosts });
  try {
    await sub.start();
    await vrls.waitForMaster(15_000, v.master.host);
    const server = await waitServerAllocated(sub, vrls, v.backups[0]!.host, p.lanHosts.length, 20_000);
    await new Promise((r) => setTimeout(r, 500)); // the allocation's confirmations on the wire
    const [raSt, rbSt] = await Promise.all([vrls.status(v.master.host), vrls.status(v.backups[0]!.host)]);
    return {
      startedAt,
      server,
      raMasterEngine: raSt.master,
      owners: { ra: raSt.owners, rb: rbSt.owners },
      messages: [],
    };
  } finally {
    p.logs.push(`==== phase A ====\n${await vrls.logs()}`);
    await vrls.stop();
  }
}

/**
 * Phase B: hash-bucket conditions under capacity limits; a skew onto the backup makes it
 * ask the server for a review (P30-P33); then, under load, the server crashes.
 */
async function phaseB(p: Phase): Promise<{ b: SubstitutionScenario["b"]; r1: LoadRun; r2: LoadRun }> {
  const { v, vrls, sub } = p;
  const startedAt = Date.now();
  await limitMembers(v, 4);
  // The end systems answer the server's information requests again: before a review's
  // reallocation it collects them anew (Fig. 16 P33).
  await vrls.start({
    ...SETTINGS,
    discoveryMs: 100,
    conditions: { kind: "bucket", over: "src+dst", count: BUCKETS, seed: 0 },
    review: { ...REVIEW, holdDownMs: 3000 },
    infoResponders: p.lanHosts,
  });
  try {
    await sub.start();
    await vrls.waitForMaster(15_000, v.master.host);
    const st = await waitServerAllocated(sub, vrls, v.backups[0]!.host, BUCKETS, 20_000);
    const paths = await lanPaths(v.lab, v.description.vrid, v.loadPlace);
    const { base, skewOnto } = reviewFlows(v, BUCKETS);
    const r1 = await runLoad(v.lab, [...base(1), ...skewOnto(p.RB, st.master?.allocation ?? {}, 11)], {
      ppsPerFlow: 85,
      durationMs: 8000,
      frameBytes: 1000,
      port: 6600,
      paths,
      server: v.server,
    });
    const after = mbpsByMac(
      r1.analysis,
      r1.endedAt - 3000,
      r1.endedAt,
      1000,
      v.members.map((m) => m.farMac),
    );
    let killedAt = 0;
    const r2 = await runLoad(
      v.lab,
      base(21),
      // The server's silence is noticed after the response timeout (4 x 500 + 50 ms):
      // the run goes on for 3 s after that.
      { ppsPerFlow: 500, durationMs: 5000, frameBytes: 100, port: 6700, paths, server: v.server },
      async () => {
        await new Promise((r) => setTimeout(r, 1000)); // steady forwarding before the kill
        killedAt = Date.now();
        await sub.crash();
      },
    );
    await new Promise((r) => setTimeout(r, 300)); // the master's takeover settles before it is read
    const [raAfter, rbAfter] = await Promise.all([
      vrls.status(v.master.host),
      vrls.status(v.backups[0]!.host),
    ]);
    const b: SubstitutionScenario["b"] = {
      startedAt,
      reviewRun: {
        startedAt: r1.startedAt,
        endedAt: r1.endedAt,
        duplicates: wireDuplicates(r1.analysis),
        after: Object.fromEntries(v.members.map((m) => [m.address, after[m.farMac] ?? 0])),
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
      raAfter: { master: raAfter.master, counters: raAfter.counters },
      rbOwners: rbAfter.owners,
      messages: [],
    };
    return { b, r1, r2 };
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await sub.logs()}\n${await vrls.diagnostics()}`);
  } finally {
    p.logs.push(`==== phase B ====\n${await vrls.logs()}`);
    await vrls.stop();
    await clearMembers(v);
  }
}

async function substitutionPhases(v: VrlsLab, vrls: VrlsControl): Promise<SubstitutionScenario> {
  const sub = vrls.substitution;
  const serverHost = v.description.substitutionServer;
  if (!sub || !serverHost) throw new Error(`${v.loaded.file}: the device has no substitution server`);
  const p: Phase = {
    v,
    vrls,
    sub,
    RA: v.master.address,
    RB: v.backups[0]!.address,
    SUB: v.pointOf(serverHost, v.description.interface).address,
    lanHosts: v.lanEndSystems.map((e) => e.host),
    logs: [],
  };
  await addServerAddresses(v.lab, v.loadPlace);
  const { lan, far } = await startScenarioCaptures(v, "substitution", {
    lanFilter: "ip proto 112 or icmp",
    farPorts: [6600, 6700],
  });
  try {
    const a = await phaseA(p);
    const { b, r1, r2 } = await phaseB(p);
    const lanStats = await lan.stop();
    const farStats = await far.stop();
    // Each stream's tail counts, up to its own last send (the run's end is later by the
    // time its generator took to report over SSH).
    const lastSends = new Map(r2.senders.map((x) => [x.streamId, x.lastSendMs]));
    const killStreams = p.lanHosts.map((_, i) => 21 + i); // base(21): one per LAN end system
    b.killRun.gapsAroundKillMs = (
      await longestGapsIn(far.path, killStreams, b.killRun.killedAt - 200, b.killRun.endedAt, lastSends)
    ).map((g) => ({ ...g, fromMs: g.fromMs === null ? null : Math.round(g.fromMs - b.killRun.killedAt) }));
    const { messages } = await readLanMessages(lan.path);
    a.messages = messages.filter((m) => m.tsMs >= a.startedAt && m.tsMs < b.startedAt);
    b.messages = messages.filter((m) => m.tsMs >= b.startedAt);
    let timeline: Timeline | undefined;
    for (const s of [...r1.analysis.streams, ...r2.analysis.streams])
      timeline = timeline ? sumTimelines(timeline, s.timeline) : s.timeline;
    const who = (x: string) => (x === p.SUB ? "server" : v.hostOf(x));
    return {
      key: v.description.key,
      who: {
        master: p.RA,
        backup: p.RB,
        server: p.SUB,
        members: v.members.map((m) => m.address),
        names: v.names,
      },
      mode: vrls.mode,
      lanEndSystems: v.lanEndSystems.map((e) => e.address),
      a,
      b,
      lanCapturePath: lan.path,
      farCapturePath: far.path,
      captures: { lan: lanStats, far: farStats, reviewRun: r1.capture, killRun: r2.capture },
      listing: await describeLanMessages(lan.path, v.description.key, { originMs: a.startedAt }),
      timeline: timeline ?? { binMs: 50, startMs: r1.startedAt, series: {} },
      events: [
        ...[...vrlsMessages(b.messages, "reviewRequest"), ...vrlsMessages(b.messages, "flowRateRequest")].map(
          (m) => ({
            atMs: m.tsMs,
            label: `${m.type} from ${who(m.src)}`,
            kind: m.type === VRLS_TYPE.flowRateRequest ? ("allocation" as const) : ("other" as const),
          }),
        ),
        { atMs: b.killRun.killedAt, label: "server killed", kind: "crash" },
      ],
      logs: p.logs.join("\n"),
    };
  } finally {
    await lan.stop();
    await far.stop();
  }
}
