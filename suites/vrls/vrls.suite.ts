import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { vrlsCases as C } from "../../lib/certify/cases/vrls.ts";
import type { Lab } from "../../lib/lab/index.ts";
import { coreOptionsFor } from "../../lib/roles/vrls/config.ts";
import { virtualRouterConfig } from "../../lib/roles/vrls/lab-harness.ts";
import { loadTopology } from "../../lib/topology/load.ts";
import { TrafficAgent } from "../../lib/traffic/agent-client.ts";
import { Capture, type CaptureStats } from "../../lib/traffic/capture.ts";
import { type ChartEvent, renderTimelineSvg } from "../../lib/traffic/chart.ts";
import { compareTcpWire } from "../../lib/traffic/tcp-compare.ts";
import { sendUdpStream } from "../../lib/traffic/udp.ts";
import { findSequence } from "../../lib/traffic/wire-log.ts";
import { ICMP_TYPE } from "../../lib/wire/icmp.ts";
import { VRLS_TYPE } from "../../lib/wire/vrls.ts";
import { createAdapter } from "../../vendor-adapters/index.ts";
import type { VendorAdapter, VrlsControl } from "../../vendor-adapters/types.ts";
import { suiteEnv } from "../support/env.ts";
import { requireCompleteCaptures } from "../support/evidence.ts";
import { upSuiteLab } from "../support/lab.ts";
import { type CaseContext, certCase, recordDevice, useDevice } from "../support/requirement.ts";
import {
  countBy,
  describeLanMessages,
  firstOwnDone,
  type LanMessage,
  readLanMessages,
} from "./lan-capture.ts";
import {
  ADVERT_MS,
  deviationPct,
  dutOverrides,
  RA,
  RB,
  REVIEW,
  type ReviewScenario,
  runReviewScenario,
  spreadPct,
  windowMbps,
} from "./review.ts";
import { runSubstitutionScenario, SUB, SUB_JITTER_MS, type SubstitutionScenario } from "./substitution.ts";
import { runStreams, type StreamsRun } from "./traffic.ts";

/**
 * VRLS (seed 000) on the Fig. 7 lab: routers A (ra) and B (rb) on hub 2 with end systems
 * 1-1..1-4, router C (rc) in front of 1-5/1-6, a far-side server. The device is the
 * virtual router; the suite drives it through the adapter's VRLS control surface, sends
 * real UDP streams from every end system and judges with the traffic analyzer
 * (receiver socket + far-side capture, attribution by source MAC) and a hub capture of
 * the control messages.
 */
const env = suiteEnv();
const LAB_FILE = resolve(env.lab ?? "labs/vrls-fig7.yaml");
const LAN_ES = ["es1", "es2", "es3", "es4"];
const ES = [...LAN_ES, "es5", "es6"];
const ES_ADDR: Record<string, string> = {
  es1: "198.18.1.11",
  es2: "198.18.1.12",
  es3: "198.18.1.13",
  es4: "198.18.1.14",
  es5: "198.18.2.11",
  es6: "198.18.2.12",
};
const MEMBER: Record<string, { addr: string; farMac: string }> = {
  ra: { addr: "198.18.1.2", farMac: "02:00:00:00:64:02" },
  rb: { addr: "198.18.1.3", farMac: "02:00:00:00:64:03" },
};
const NAMES: Record<string, string> = {
  "02:00:00:00:64:02": "router A (ra)",
  "02:00:00:00:64:03": "router B (rb)",
};
/** Scheduling jitter of this shared 2-core machine (role's fault test: quiet baseline 9-26 ms). */
const KILL_JITTER_MS = 60;
/** One hand-off after a failure: the reference needs ~10-20 ms (tandem bench handoff); a device gets 100. */
const HANDOFF_BOUND_MS = 100;
const hostOfAddr = (a: string) => Object.entries(MEMBER).find(([, m]) => m.addr === a)?.[0] ?? a;

let lab: Lab | undefined;
let adapter: VendorAdapter | undefined;
useDevice(() => (adapter && lab ? { adapter, lab: lab.name } : undefined));

beforeAll(async () => {
  await mkdir(env.out, { recursive: true });
  lab = await upSuiteLab(LAB_FILE);
  adapter = createAdapter(env.dut, {
    hosts: { ra: lab.host("ra"), rb: lab.host("rb") },
    primary: "ra",
    workDir: `/tmp/tandem-dut-${lab.prefix}`,
    options: env.dutOptions,
    lab,
  });
  await recordDevice(adapter);
}, 180_000);

afterAll(async () => {
  await adapter?.dispose().catch(() => undefined);
  await lab?.down();
}, 60_000);

function vrls(): VrlsControl {
  const v = adapter?.vrls;
  if (!v || !lab) throw new Error("the device has no VRLS control surface");
  return v;
}

/** Starts the virtual router, lets es5/es6 be learned passively, waits for the 6-condition allocation. */
type Mode = "timer" | "sequence-number" | "exactly-once";
/** `tandem certify --mode M` sets the operation mode of the cases that do not test a mode themselves. */
const DEFAULT_MODE = (["timer", "sequence-number", "exactly-once"] as const).find((m) => m === env.mode);

async function bringUp(mode: Mode | undefined = DEFAULT_MODE) {
  const v = vrls();
  await v.start({ infoResponders: LAN_ES, ...(mode ? { mode } : {}) });
  // Members start within a few hundred ms of each other: a lower-priority member may lead
  // until the higher one preempts. The election result is the master that holds for 1 s.
  await v.waitForMaster(20_000);
  let master = "";
  let stableSince = Date.now();
  for (const until = Date.now() + 10_000; Date.now() < until; ) {
    const m = (await v.master()) ?? "";
    if (m !== master) {
      master = m;
      stableSince = Date.now();
    } else if (m && Date.now() - stableSince >= 1000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // es5/es6 sit behind router C: no directed broadcast reaches them, their traffic does.
  await Promise.all(
    ["es5", "es6"].map((h, i) =>
      sendUdpStream(lab!.host(h).remote, {
        streamId: 900 + i,
        dstIp: "198.18.100.10",
        dstPort: 5999,
        pps: 200,
        count: 100,
      }),
    ),
  );
  const allocation = await v.waitAllocated(6, 20_000);
  return { master, allocation };
}

const memo = new Map<string, Promise<unknown>>();
function once<T>(name: string, fn: () => Promise<T>): Promise<T> {
  let p = memo.get(name) as Promise<T> | undefined;
  if (!p) {
    p = fn();
    memo.set(name, p);
  }
  return p;
}

interface Startup {
  master: string;
  allocation: Record<string, string>;
  endSystems: { address: string; learnedBy: string }[];
  messages: LanMessage[];
  capturePath: string;
  /** tcpdump's closing statistics of the hub capture (cases that judge messages need it complete). */
  captures: CaptureStats[];
  electedAt: number;
}

const startup = () =>
  once("startup", async (): Promise<Startup> => {
    const capture = await Capture.start(lab!.host("es1").remote, {
      interface: "eth0",
      filter: "vrrp or icmp",
      snapLength: 200,
      path: `/tmp/tandem-vrls-${lab!.prefix}-startup.pcap`,
    });
    try {
      const { master, allocation } = await bringUp();
      const electedAt = Date.now();
      await new Promise((r) => setTimeout(r, 1500)); // adverts and responses in steady state
      const endSystems = await vrls().endSystems();
      const stats = await capture.stop();
      const { messages } = await readLanMessages(capture.path);
      return {
        master,
        allocation,
        endSystems,
        messages,
        capturePath: capture.path,
        captures: [stats],
        electedAt,
      };
    } catch (e) {
      await capture.stop();
      throw new Error(
        `${(e as Error).message}\n${await vrls()
          .diagnostics()
          .catch(() => "")}`,
      );
    }
  });

async function attachStartup(ctx: CaseContext, s: Startup, measured: Record<string, unknown>) {
  await ctx.attachFile("capture hub 2 (control messages)", s.capturePath, "application/vnd.tcpdump.pcap");
  await ctx.attachText(
    "measurements",
    JSON.stringify({ ...measured, captures: s.captures }, null, 2),
    "application/json",
    "measurements.json",
  );
}

async function attachStreams(
  ctx: CaseContext,
  name: string,
  run: StreamsRun,
  measured: Record<string, unknown>,
  events: ChartEvent[] = [],
) {
  await ctx.attachFile(`capture far side (${name})`, run.capturePath, "application/vnd.tcpdump.pcap");
  const svg = await renderTimelineSvg(run.timeline, {
    title: `packets/s forwarded per router (${name})`,
    names: NAMES,
    events,
    width: 760,
    height: 260,
  });
  await ctx.attachText("forwarding timeline", svg, "image/svg+xml", `timeline-${name}.svg`);
  await ctx.attachText(
    "measurements",
    JSON.stringify(
      {
        ...measured,
        totals: run.totals,
        captures: run.captures,
        perEndSystem: run.results.map(({ host, result }) => ({
          host,
          sent: result.sent,
          received: result.received,
          lost: result.lost,
          duplicated: result.duplicated,
          attribution: result.attribution,
        })),
      },
      null,
      2,
    ),
    "application/json",
    `measurements-${name}.json`,
  );
}

describe("vrls: virtual router, discovery and allocation (Fig. 7, Fig. 12)", () => {
  certCase(C["vrls.election"], async (ctx) => {
    const s = await startup();
    requireCompleteCaptures(s.captures);
    const advertisers = [
      ...new Set(
        s.messages
          .filter((m) => m.kind === "vrrp" && m.type === 1 && m.tsMs > s.electedAt)
          .map((m) => hostOfAddr(m.src)),
      ),
    ];
    await attachStartup(ctx, s, { master: s.master, advertisersAfterElection: advertisers });
    expect(s.master, "master (router A has the highest priority)").toBe("ra");
    expect(advertisers, "senders of type 1 advertisements after the election").toEqual(["ra"]);
  });

  certCase(C["vrls.backup-response"], async (ctx) => {
    const s = await startup();
    requireCompleteCaptures(s.captures);
    const window = s.messages.filter((m) => m.tsMs > s.electedAt);
    const adverts = countBy(window, "vrrp", 1, MEMBER.ra!.addr);
    const responses = countBy(window, "vrrp", 2, MEMBER.rb!.addr);
    await attachStartup(ctx, s, { advertsFromMaster: adverts, responsesFromBackup: responses });
    expect(adverts, "advertisements in the 1.5 s window").toBeGreaterThan(5);
    expect(responses / adverts, "responses (type 2) per advertisement").toBeGreaterThanOrEqual(0.9);
  });

  certCase(C["vrls.discovery-icmp"], async (ctx) => {
    const s = await startup();
    requireCompleteCaptures(s.captures);
    const requests = s.messages.filter((m) => m.kind === "icmp" && m.type === 15);
    const replies = [
      ...new Set(s.messages.filter((m) => m.kind === "icmp" && m.type === 16).map((m) => m.src)),
    ].sort();
    const byIcmp = s.endSystems
      .filter((e) => e.learnedBy === "icmp-info")
      .map((e) => e.address)
      .sort();
    await attachStartup(ctx, s, {
      requests: requests.map((r) => `${r.src} -> ${r.dst}`),
      replies,
      learnedByIcmp: byIcmp,
    });
    expect(requests.length, "ICMP information requests (type 15) on hub 2").toBeGreaterThan(0);
    expect(
      requests.every((r) => r.dst === "255.255.255.255" || r.dst.endsWith(".255")),
      "requests are broadcast",
    ).toBe(true);
    expect(replies, "ICMP information replies (type 16)").toEqual(LAN_ES.map((h) => ES_ADDR[h]!).sort());
    expect(byIcmp, "end systems registered from the replies").toEqual(LAN_ES.map((h) => ES_ADDR[h]!).sort());
  });

  certCase(C["vrls.discovery-passive"], async (ctx) => {
    const s = await startup();
    const passive = s.endSystems
      .filter((e) => e.learnedBy === "passive")
      .map((e) => e.address)
      .sort();
    await attachStartup(ctx, s, { learnedPassively: passive });
    expect(passive).toEqual([ES_ADDR.es5, ES_ADDR.es6]);
  });

  certCase(C["vrls.initial-allocation"], async (ctx) => {
    const s = await startup();
    const counts: Record<string, number> = {};
    for (const m of Object.values(s.allocation)) counts[hostOfAddr(m)] = (counts[hostOfAddr(m)] ?? 0) + 1;
    await attachStartup(ctx, s, { allocation: s.allocation, perRouter: counts });
    expect(Object.keys(s.allocation).length, "conditions allocated").toBe(6);
    expect(counts, "Fig. 7: six end systems over two routers").toEqual({ ra: 3, rb: 3 });
  });

  certCase(C["vrls.allocation-exchange"], async (ctx) => {
    const s = await startup();
    requireCompleteCaptures(s.captures);
    const allocations = s.messages.filter(
      (m) => m.kind === "vrrp" && m.type === 3 && m.src === MEMBER.ra!.addr,
    );
    const confirmations = s.messages.filter(
      (m) => m.kind === "vrrp" && m.type === 4 && m.src === MEMBER.rb!.addr,
    );
    await attachStartup(ctx, s, { allocations: allocations.length, confirmations: confirmations.length });
    expect(allocations.length, "allocations (type 3) from the master").toBeGreaterThan(0);
    expect(confirmations.length, "confirmations (type 4) from the backup").toBeGreaterThan(0);
    expect(confirmations[0]!.tsMs, "the first confirmation follows an allocation").toBeGreaterThanOrEqual(
      allocations[0]!.tsMs,
    );
  });

  certCase(C["vrls.sharing-steady"], async (ctx) => {
    const s = await startup();
    const run = await runStreams(lab!, ES, { port: 5000, pps: 500, durationMs: 3000 });
    requireCompleteCaptures(run.captures);
    const wrong = run.results.flatMap(({ host, result }) => {
      const owner = hostOfAddr(s.allocation[ES_ADDR[host]!] ?? "");
      const expected = { [MEMBER[owner]?.farMac ?? owner]: result.sent };
      return JSON.stringify(result.attribution) === JSON.stringify(expected)
        ? []
        : [`${host}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(result.attribution)}`];
    });
    await attachStreams(ctx, "steady", run, { allocation: s.allocation });
    expect(run.totals.lost, "packets lost").toBe(0);
    expect(run.totals.dupWire + run.totals.dupReceiver, "packets duplicated").toBe(0);
    expect(wrong, "end systems not forwarded by exactly their router in charge").toEqual([]);
  });
});

/** Reallocations under load: every 400 ms one end system moves to the other router. */
async function handoffRun(mode: "timer" | "exactly-once", port: number) {
  const { allocation } = await bringUp(mode);
  let current = { ...allocation };
  let moves = 0;
  const run = await runStreams(lab!, ES, {
    port,
    // 1000 pps per end system: a packet every ms, so a hand-off that lets both routers
    // forward for even a millisecond shows up as duplicates on the wire.
    pps: 1000,
    durationMs: 9000,
    during: async () => {
      const until = Date.now() + 7500;
      for (let i = 0; Date.now() < until; i++) {
        const cond = ES_ADDR[ES[i % ES.length]!]!;
        const to = current[cond] === MEMBER.ra!.addr ? MEMBER.rb!.addr : MEMBER.ra!.addr;
        await vrls().reallocate({ [cond]: to });
        current = { ...current, [cond]: to };
        moves++;
        await new Promise((r) => setTimeout(r, 400));
      }
    },
  });
  return { run, moves, mode: vrls().mode };
}

describe("vrls: hand-off under load", () => {
  certCase(
    C["vrls.handoff-exactly-once"],
    async (ctx) => {
      const { run, moves, mode } = await handoffRun("exactly-once", 5100);
      requireCompleteCaptures(run.captures);
      await attachStreams(ctx, "exactly-once", run, { mode, reallocations: moves });
      expect(moves, "reallocations done").toBeGreaterThanOrEqual(6);
      expect(
        { lost: run.totals.lost, dupReceiver: run.totals.dupReceiver, dupWire: run.totals.dupWire },
        `${moves} hand-offs in mode ${mode}`,
      ).toEqual({ lost: 0, dupReceiver: 0, dupWire: 0 });
    },
    180_000,
  );

  certCase(
    C["vrls.handoff-timer"],
    async (ctx) => {
      const { run, moves, mode } = await handoffRun("timer", 5200);
      requireCompleteCaptures(run.captures);
      await attachStreams(ctx, "timer", run, {
        mode,
        reallocations: moves,
        lossAllowedInTimerMode: run.totals.lost,
      });
      expect(moves, "reallocations done").toBeGreaterThanOrEqual(6);
      expect(
        { dupReceiver: run.totals.dupReceiver, dupWire: run.totals.dupWire },
        `${moves} hand-offs in mode ${mode}`,
      ).toEqual({ dupReceiver: 0, dupWire: 0 });
    },
    180_000,
  );
});

/** Sequence-number mode: one TCP connection per end system while conditions move (seed Fig. 10C, type 5). */
async function seqnumRun(port: number) {
  await bringUp("sequence-number");
  const server = lab!.host("server").remote;
  const sinkAgent = await TrafficAgent.launch(server);
  const clients: TrafficAgent[] = [];
  try {
    const sink = await sinkAgent.startTcpSink({ ports: [port] });
    // LAN side: a hub port (es1) sees every segment sent to the virtual MAC; far side: what was forwarded.
    const lan = await Capture.start(lab!.host("es1").remote, {
      interface: "eth0",
      filter: `tcp dst port ${port}`,
      snapLength: 200,
    });
    const far = await Capture.start(server, {
      interface: "eth0",
      filter: `tcp dst port ${port}`,
      snapLength: 200,
    });
    clients.push(...(await Promise.all(ES.map((h) => TrafficAgent.launch(lab!.host(h).remote)))));
    const streams = await Promise.all(
      clients.map((c) =>
        c.startTcpStreams({
          dstIp: "198.18.100.10",
          ports: [port],
          connections: 1,
          recordsPerSecond: 1000,
          recordBytes: 100,
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, 500));
    let current = (await vrls().waitAllocated(6)) as Record<string, string>;
    let moves = 0;
    // Twelve hand-offs (or as many as 15 s allow on a loaded machine).
    const until = Date.now() + 15_000;
    for (let i = 0; i < 12 && Date.now() < until; i++) {
      const cond = ES_ADDR[ES[i % ES.length]!]!;
      const to = current[cond] === MEMBER.ra!.addr ? MEMBER.rb!.addr : MEMBER.ra!.addr;
      await vrls().reallocate({ [cond]: to });
      current = { ...current, [cond]: to };
      moves++;
      await new Promise((r) => setTimeout(r, 400));
    }
    await Promise.all(streams.map((s) => s.stop()));
    await new Promise((r) => setTimeout(r, 300));
    const sinkReport = await sink.stop();
    const captures = [await lan.stop(), await far.stop()];
    const tcp = await compareTcpWire(lan.reader(), far.reader(), port);
    return { tcp, moves, resets: sinkReport.totals.resets, lanPath: lan.path, farPath: far.path, captures };
  } finally {
    await Promise.all([...clients, sinkAgent].map((c) => c.close().catch(() => undefined)));
  }
}

describe("vrls: sequence-number hand-off (TCP)", () => {
  certCase(
    C["vrls.handoff-seqnum"],
    async (ctx) => {
      const r = await seqnumRun(6500);
      requireCompleteCaptures(r.captures);
      await ctx.attachFile("capture hub 2 (TCP sent)", r.lanPath, "application/vnd.tcpdump.pcap");
      await ctx.attachFile("capture far side (TCP forwarded)", r.farPath, "application/vnd.tcpdump.pcap");
      await ctx.attachText(
        "measurements",
        JSON.stringify(
          { mode: vrls().mode, reallocations: r.moves, tcp: r.tcp, resets: r.resets, captures: r.captures },
          null,
          2,
        ),
        "application/json",
        "measurements-seqnum.json",
      );
      expect(r.moves, "reallocations done").toBeGreaterThanOrEqual(6);
      expect(r.tcp.connections, "TCP connections seen").toBe(6);
      expect(r.tcp.sent, "TCP data segments sent").toBeGreaterThan(1000);
      expect(
        { lost: r.tcp.lost, duplicated: r.tcp.duplicated, resets: r.resets },
        `${r.moves} hand-offs in mode ${vrls().mode}`,
      ).toEqual({ lost: 0, duplicated: 0, resets: 0 });
    },
    180_000,
  );
});

/** The review scenario (review.ts), run once and judged by four cases. */
const reviewScenario = () => once("review", () => runReviewScenario(adapter!, lab!, loadTopology(LAB_FILE)));

async function attachReview(ctx: CaseContext, r: ReviewScenario, measured: Record<string, unknown>) {
  await ctx.attachFile(
    "capture hub 2 (VRRP/VRLS messages)",
    r.lanCapturePath,
    "application/vnd.tcpdump.pcap",
  );
  await ctx.attachText(
    "messages on hub 2 (decoded with lib/wire)",
    r.listing,
    "text/plain",
    "review-messages.txt",
  );
  await ctx.attachFile("capture far side (forwarded)", r.farCapturePath, "application/vnd.tcpdump.pcap");
  const svg = await renderTimelineSvg(r.timeline, {
    title: "packets/s forwarded per router (run 1 skew onto rb, run 2 skew onto ra)",
    names: NAMES,
    events: r.events,
    originMs: r.run1.startedAt,
    width: 900,
    height: 300,
  });
  await ctx.attachText("forwarding timeline", svg, "image/svg+xml", "timeline-review.svg");
  await ctx.attachText("router agent logs", r.agentLogs, "text/plain", "router-agents.log");
  await ctx.attachText(
    "measurements",
    JSON.stringify(
      {
        review: REVIEW,
        handoff: dutOverrides(),
        advertIntervalMs: ADVERT_MS,
        capacityMbitPerMember: 4,
        run1: r.run1,
        run2: r.run2,
        allocations: r.allocations,
        reviewerState: r.reviewStatus,
        captures: r.captures,
        ...measured,
      },
      null,
      2,
    ),
    "application/json",
    "measurements-review.json",
  );
}

const vrlsMessages = (r: ReviewScenario) =>
  r.messages
    .filter((m) => m.kind === "vrrp")
    .map((m) => ({ at: m.tsMs, src: m.src, dst: m.dst, type: m.type }));
const t0 = (r: ReviewScenario, at: number | undefined) =>
  at === undefined ? null : Math.round(at - r.run1.startedAt);

/** Run 2's master-triggered round: the first 7 after run 2 started with no 6 since run 2 started. */
function voluntaryRound(r: ReviewScenario) {
  const log = vrlsMessages(r);
  const seven = log.find(
    (m) =>
      m.type === 7 &&
      m.at >= r.run2.startedAt &&
      !log.some((x) => x.type === 6 && x.at >= r.run2.startedAt && x.at <= m.at),
  );
  return { log, seven };
}

describe("vrls: allocation review and reallocation (Fig. 15, Figs. 10D-10F)", () => {
  certCase(
    C["vrls.review-backup"],
    async (ctx) => {
      const r = await reviewScenario();
      requireCompleteCaptures([r.captures.lan]);
      const log = vrlsMessages(r);
      const path = findSequence(
        log,
        [{ type: 6, src: RB }, { type: 7, src: RA }, { type: 8, src: RB }, { type: 3, src: RA }, { type: 4 }],
        r.run1.startedAt,
      );
      // Every flow rate request (7) of the master is answered by the backup (8) within the
      // collection time (Fig. 10F).
      const unanswered = log
        .filter((m) => m.type === 7 && m.src === RA)
        .filter(
          (m) =>
            !log.some((x) => x.type === 8 && x.src === RB && x.at >= m.at && x.at <= m.at + REVIEW.collectMs),
        )
        .map((m) => t0(r, m.at));
      await attachReview(ctx, r, {
        backupTriggeredSequenceMs:
          path?.map((m) => ({ type: m.type, src: m.src, atMs: t0(r, m.at) })) ?? null,
        unansweredFlowRateRequestsMs: unanswered,
      });
      expect(path, "6 (rb) -> 7 (ra) -> 8 (rb) -> 3 (ra) -> 4 on hub 2 during run 1").not.toBeNull();
      expect(path![0]!.at, "the review request comes while run 1 skews onto rb").toBeLessThan(r.run1.endedAt);
      expect(unanswered, "flow rate requests (7) without a response (8) from rb").toEqual([]);
    },
    150_000,
  );

  certCase(
    C["vrls.review-master"],
    async (ctx) => {
      const r = await reviewScenario();
      requireCompleteCaptures([r.captures.lan]);
      const { log, seven } = voluntaryRound(r);
      const path = seven
        ? findSequence(
            log,
            [{ type: 7, src: RA }, { type: 8, src: RB }, { type: 3, src: RA }, { type: 4 }],
            seven.at,
          )
        : null;
      await attachReview(ctx, r, {
        masterTriggeredSequenceMs:
          path?.map((m) => ({ type: m.type, src: m.src, atMs: t0(r, m.at) })) ?? null,
        run2StartedAtMs: t0(r, r.run2.startedAt),
      });
      expect(
        seven,
        "a flow rate request (7) from ra during run 2 with no review request (6) before it",
      ).toBeDefined();
      expect(seven!.src, "sender of the voluntary 7").toBe(RA);
      expect(path, "7 (ra) -> 8 (rb) -> 3 (ra) -> 4 on hub 2 during run 2").not.toBeNull();
    },
    150_000,
  );

  certCase(
    C["vrls.review-holddown"],
    async (ctx) => {
      const r = await reviewScenario();
      requireCompleteCaptures([r.captures.lan, r.captures.far, r.captures.run2]);
      const log = vrlsMessages(r);
      const hold = REVIEW.holdDownMs;
      // Wire timestamps vs the agent's clock: a message may leave up to a scheduling delay
      // after the hold-down started; 100 ms covers that on this loaded machine.
      const tolerance = 100;
      const rounds = log.filter((m) => m.type === 7);
      const requests = log.filter((m) => m.type === 6);
      const gaps = rounds.slice(1).map((m, i) => m.at - rounds[i]!.at);
      const requestGaps = requests.slice(1).map((m, i) => m.at - requests[i]!.at);
      // A backup does not ask within the hold-down after a flow rate request it answered.
      const earlyRequests = requests
        .filter((q) => rounds.some((m) => m.at < q.at && q.at - m.at < hold - tolerance))
        .map((q) => t0(r, q.at));
      const { seven } = voluntaryRound(r);
      const previous = rounds.filter((m) => seven && m.at < seven.at).at(-1);
      // The master had a review due while it was held down: run 2's skew, measured on the
      // far side from 1.5 s into run 2 (the monitor's window) up to its flow rate request.
      const heldFrom = r.run2.startedAt + 1500;
      const heldTo = seven?.at ?? r.run2.endedAt;
      const held = heldTo - heldFrom >= 500 ? windowMbps(r.loads.run2, heldFrom, heldTo) : null;
      const heldSpread = held ? spreadPct(Object.values(held)) : null;
      await attachReview(ctx, r, {
        holdDownMs: hold,
        toleranceMs: tolerance,
        flowRateRequestsAtMs: rounds.map((m) => t0(r, m.at)),
        reviewRequestsAtMs: requests.map((m) => t0(r, m.at)),
        gapsBetweenRoundsMs: gaps,
        gapsBetweenRequestsMs: requestGaps,
        earlyRequestsMs: earlyRequests,
        run2StartedAtMs: t0(r, r.run2.startedAt),
        heldDownWindowMs: [t0(r, heldFrom), t0(r, heldTo)],
        heldDownMbps: held,
        heldDownSpreadPct: heldSpread,
      });
      expect(rounds.length, "review rounds (7) on the wire: one per run").toBeGreaterThanOrEqual(2);
      for (const g of gaps)
        expect(g, "time between two review rounds (7)").toBeGreaterThanOrEqual(hold - tolerance);
      for (const g of requestGaps)
        expect(g, "time between two review requests (6)").toBeGreaterThanOrEqual(hold - tolerance);
      expect(earlyRequests, "review requests (6) within the hold-down after a 7").toEqual([]);
      expect(seven, "run 2's review did happen once the hold-down was over").toBeDefined();
      expect(seven!.at - previous!.at, "run 2's review waited for the hold-down").toBeGreaterThanOrEqual(
        hold - tolerance,
      );
      // Otherwise the hold-down was not exercised: the master must have been over its
      // threshold (imbalance) while it waited.
      expect(heldSpread ?? Number.NaN, "imbalance while held down, (max-min)/mean %").toBeGreaterThan(
        REVIEW.imbalancePct,
      );
    },
    150_000,
  );

  certCase(
    C["vrls.reallocation-by-rate"],
    async (ctx) => {
      const r = await reviewScenario();
      requireCompleteCaptures([r.captures.lan, r.captures.far, r.captures.run1, r.captures.run2]);
      const log = vrlsMessages(r);
      const firstRealloc1 = log.find((m) => m.type === 3 && m.at > r.run1.startedAt && m.at < r.run1.endedAt);
      const { seven } = voluntaryRound(r);
      const before1 =
        firstRealloc1 && firstRealloc1.at - (r.run1.startedAt + 300) >= 300
          ? windowMbps(r.loads.run1, r.run1.startedAt + 300, firstRealloc1.at)
          : null;
      const before2 = seven ? windowMbps(r.loads.run2, r.run2.startedAt + 300, seven.at) : null;
      const dev = {
        before1: before1 ? deviationPct(Object.values(before1)) : null,
        after1: deviationPct(Object.values(r.run1.after)),
        before2: before2 ? deviationPct(Object.values(before2)) : null,
        after2: deviationPct(Object.values(r.run2.after)),
      };
      await attachReview(ctx, r, {
        mbps: { before1, after1: r.run1.after, before2, after2: r.run2.after },
        deviationFromMeanPct: dev,
        firstReallocationRun1Ms: t0(r, firstRealloc1?.at),
      });
      expect(
        dev.before1 ?? Number.NaN,
        "skew before run 1's review (deviation from the mean, %)",
      ).toBeGreaterThan(15);
      expect(dev.after1, "run 1, last 3 s: per-member rate's deviation from the mean, %").toBeLessThanOrEqual(
        15,
      );
      expect(
        dev.before2 ?? Number.NaN,
        "skew before run 2's review (deviation from the mean, %)",
      ).toBeGreaterThan(15);
      expect(dev.after2, "run 2, last 3 s: per-member rate's deviation from the mean, %").toBeLessThanOrEqual(
        15,
      );
    },
    150_000,
  );

  certCase(
    C["vrls.review-exactly-once"],
    async (ctx) => {
      const r = await reviewScenario();
      requireCompleteCaptures([r.captures.lan, r.captures.far, r.captures.run1, r.captures.run2]);
      const reallocations = vrlsMessages(r).filter((m) => m.type === 3 && m.at > r.run1.startedAt).length;
      await attachReview(ctx, r, {
        mode: "exactly-once",
        allocationMessagesDuringTheRuns: reallocations,
        duplicates: { run1: r.run1.duplicatesByStream, run2: r.run2.duplicatesByStream },
      });
      expect(reallocations, "allocations (3) sent by the reviews").toBeGreaterThan(0);
      // Loss is not judged here: the tbf capacity limits drop by design.
      expect(
        { run1: r.run1.duplicates, run2: r.run2.duplicates },
        "frames forwarded twice (far side) across the review reallocations",
      ).toEqual({ run1: 0, run2: 0 });
    },
    150_000,
  );
});

/** The substitution server scenario (substitution.ts, its own Fig. 14 lab), run once for two cases. */
const substitutionScenario = () => once("substitution", () => runSubstitutionScenario(adapter!));

async function attachSubstitution(
  ctx: CaseContext,
  r: SubstitutionScenario,
  measured: Record<string, unknown>,
) {
  await ctx.attachFile(
    "capture hub 2 of the Fig. 14 lab (VRRP/VRLS, ICMP)",
    r.lanCapturePath,
    "application/vnd.tcpdump.pcap",
  );
  await ctx.attachText(
    "messages on hub 2 (decoded with lib/wire, t = 0 at phase A)",
    r.listing,
    "text/plain",
    "substitution-messages.txt",
  );
  await ctx.attachFile("capture far side (forwarded)", r.farCapturePath, "application/vnd.tcpdump.pcap");
  const svg = await renderTimelineSvg(r.timeline, {
    title: "packets/s forwarded per router (review through the server, then the server killed)",
    names: NAMES,
    events: r.events,
    width: 900,
    height: 300,
  });
  await ctx.attachText("forwarding timeline", svg, "image/svg+xml", "timeline-substitution.svg");
  await ctx.attachText("router and server agent logs", r.logs, "text/plain", "agents.log");
  await ctx.attachText(
    "measurements",
    JSON.stringify(
      {
        phaseA: { server: r.a.server, raMasterEngine: r.a.raMasterEngine, owners: r.a.owners },
        phaseB: {
          reviewRun: r.b.reviewRun,
          killRun: r.b.killRun,
          raAfter: r.b.raAfter,
          rbOwners: r.b.rbOwners,
        },
        captures: r.captures,
        ...measured,
      },
      null,
      2,
    ),
    "application/json",
    "measurements-substitution.json",
  );
}

const asLog = (ms: readonly LanMessage[]) =>
  ms.filter((m) => m.kind === "vrrp").map((m) => ({ at: m.tsMs, src: m.src, dst: m.dst, type: m.type }));

/** How long the server may take to pass a backup's response on (this machine's jitter included). */
const TRANSFER_WITHIN_MS = 500;

/**
 * Fig. 15 P25 on the wire: each response (4) of the backup that the server received (sent to
 * it, or multicast) after `fromMs`, and the server's transfer of it to the master: the same
 * message (sender and sequence) from the server's address to the master's, within
 * TRANSFER_WITHIN_MS.
 */
function transfersOf(ms: readonly LanMessage[], fromMs: number) {
  const responses = ms.filter(
    (m) =>
      m.kind === "vrrp" &&
      m.type === VRLS_TYPE.allocationConfirmation &&
      m.src === RB &&
      (m.dst === SUB || m.dst === "224.0.0.18") &&
      m.tsMs >= fromMs,
  );
  const copies = ms.filter(
    (m) =>
      m.kind === "vrrp" &&
      m.type === VRLS_TYPE.allocationConfirmation &&
      m.src === SUB &&
      m.dst === RA &&
      m.sender === RB,
  );
  return responses.map((m) => {
    const copy = copies.find((c) => c.sequence === m.sequence && c.tsMs >= m.tsMs);
    return {
      atMs: m.tsMs,
      sequence: m.sequence,
      transferredAfterMs: copy ? Math.round((copy.tsMs - m.tsMs) * 10) / 10 : null,
    };
  });
}

describe("vrls: substitution server (Figs. 14-16)", () => {
  certCase(
    C["vrls.substitution"],
    async (ctx) => {
      const r = await substitutionScenario();
      requireCompleteCaptures([r.captures.lan]);
      const logA = asLog(r.a.messages);
      const registration = findSequence(logA, [
        { type: 9, src: SUB },
        { type: 10, src: RA },
        { type: 3, src: SUB },
      ]);
      const infoRequests = r.a.messages.filter((m) => m.kind === "icmp" && m.type === 15 && m.src === SUB);
      const infoReplies = [
        ...new Set(
          r.a.messages.filter((m) => m.kind === "icmp" && m.type === 16 && m.dst === SUB).map((m) => m.src),
        ),
      ].sort();
      const serverAlloc = r.a.server.master?.allocation ?? {};
      const firstServerAlloc = logA.find((m) => m.type === 3 && m.src === SUB);
      const answersBy = (src: string) =>
        logA.filter((m) => m.type === 4 && m.src === src && firstServerAlloc && m.at >= firstServerAlloc.at);
      const masterAnswers = answersBy(RA);
      const backupAnswers = answersBy(RB);
      // P25: the backup's responses reach the master through the server, unchanged.
      const transfers = firstServerAlloc ? transfersOf(r.a.messages, firstServerAlloc.at) : [];
      const untransferred = transfers.filter(
        (t) => t.transferredAfterMs === null || t.transferredAfterMs > TRANSFER_WITHIN_MS,
      );
      // P26: the master's sequence number information / markers go straight to the backup.
      const mode = dutOverrides().mode;
      const directMarkers = logA.filter(
        (m) =>
          m.type === VRLS_TYPE.sequenceInfo &&
          m.src === RA &&
          m.dst === RB &&
          firstServerAlloc &&
          m.at >= firstServerAlloc.at,
      ).length;
      await attachSubstitution(ctx, r, {
        registrationSequence: registration?.map((m) => ({ type: m.type, src: m.src })) ?? null,
        icmpInfoRequestsFromServer: infoRequests.length,
        icmpInfoRepliesToServer: infoReplies,
        masterConfirmationsOfServerAllocation: masterAnswers.length,
        backupConfirmationsOfServerAllocation: backupAnswers.length,
        backupResponsesTransferredToMaster: transfers,
        transferWithinMs: TRANSFER_WITHIN_MS,
        mode,
        sequenceInfoMasterToBackup: directMarkers,
      });
      expect(registration, "9 (server) -> 10 (master) -> 3 (server) on hub 2").not.toBeNull();
      expect(infoRequests.length, "ICMP information requests (15) from the server").toBeGreaterThan(0);
      expect(infoReplies, "ICMP information replies (16) to the server").toEqual(
        LAN_ES.map((h) => ES_ADDR[h]!).sort(),
      );
      expect(
        LAN_ES.map((h) => ES_ADDR[h]!).filter((a) => !(a in serverAlloc)),
        "LAN end systems missing from the server's allocation",
      ).toEqual([]);
      expect(new Set(Object.values(serverAlloc)), "routers in the server's allocation").toEqual(
        new Set([RA, RB]),
      );
      expect(r.a.raMasterEngine, "the master's own allocation engine rests").toBeNull();
      expect(r.a.owners.ra, "the master records the server's allocation").toEqual(serverAlloc);
      expect(r.a.owners.rb, "the backup applies the server's allocation").toEqual(serverAlloc);
      expect(backupAnswers.length, "the backup confirms the server's allocation (4)").toBeGreaterThan(0);
      expect(transfers.length, "the backup's responses (4) the server received").toBeGreaterThan(0);
      expect(
        untransferred,
        `P25: backup responses the server did not transfer to the master (same sender and sequence, from ${SUB} to ${RA}) within ${TRANSFER_WITHIN_MS} ms`,
      ).toEqual([]);
      if (mode !== "timer")
        expect(
          directMarkers,
          "P26: sequence number information (5) from the master straight to the backup",
        ).toBeGreaterThan(0);
      // P24 "records the information ... without transmitting a response"; last, so that every
      // other check of the case has run when this one fails.
      expect(
        masterAnswers.length,
        "confirmations (4) the master sent for the server's allocation (P24: none)",
      ).toBe(0);
    },
    150_000,
  );

  certCase(
    C["vrls.substitution-review"],
    async (ctx) => {
      const r = await substitutionScenario();
      requireCompleteCaptures([r.captures.lan, r.captures.far, r.captures.reviewRun]);
      const logB = asLog(r.b.messages);
      const review = findSequence(
        logB,
        [{ type: 6, src: RB }, { type: 7, src: SUB }, { type: 8 }, { type: 3, src: SUB }, { type: 4 }],
        r.b.reviewRun.startedAt,
      );
      const requestsB = logB.filter(
        (m) =>
          m.type === VRLS_TYPE.reviewRequest &&
          m.at >= r.b.reviewRun.startedAt &&
          m.at < r.b.killRun.killedAt,
      );
      const masterRounds = logB.filter(
        (m) => m.type === VRLS_TYPE.flowRateRequest && m.src === RA && m.at < r.b.killRun.killedAt,
      );
      const dev = deviationPct(Object.values(r.b.reviewRun.after));
      // P33: after the flow rate responses (8) and before the reallocation (3), the server
      // asks the end systems again (ICMP 15) and their answers (16) come back to it.
      const lastRate = review?.[2];
      const realloc = review?.[3];
      const icmpB = r.b.messages.filter((m) => m.kind === "icmp");
      const asked =
        lastRate && realloc
          ? icmpB.filter(
              (m) =>
                m.type === ICMP_TYPE.informationRequest &&
                m.src === SUB &&
                m.tsMs > lastRate.at &&
                m.tsMs < realloc.at,
            )
          : [];
      const answered = asked[0]
        ? icmpB.filter(
            (m) =>
              m.type === ICMP_TYPE.informationReply &&
              m.dst === SUB &&
              m.tsMs > asked[0]!.tsMs &&
              m.tsMs <= realloc!.at,
          )
        : [];
      const at = (t: number | undefined) =>
        t === undefined ? null : Math.round(t - r.b.reviewRun.startedAt);
      await attachSubstitution(ctx, r, {
        reviewSequence:
          review?.map((m) => ({ type: m.type, src: m.src, dst: m.dst, atMs: at(m.at) })) ?? null,
        reviewRequestDestinations: requestsB.map((m) => m.dst),
        masterFlowRateRequests: masterRounds.length,
        deviationAfterReviewPct: dev,
        p33InformationRequestsAtMs: asked.map((m) => at(m.tsMs)),
        p33RepliesToServer: answered.map((m) => ({ from: m.src, atMs: at(m.tsMs) })),
      });
      expect(review, "6 (rb) -> 7 (server) -> 8 -> 3 (server) -> 4 on hub 2").not.toBeNull();
      expect(
        asked.length,
        "P33: ICMP information requests (15) from the server between the flow rate responses (8) and the reallocation (3)",
      ).toBeGreaterThan(0);
      expect(
        answered.length,
        "P33: end systems' replies (16) to the server before the reallocation (3) (it reallocates only after collecting)",
      ).toBeGreaterThan(0);
      expect(
        requestsB.filter((m) => m.dst !== SUB).map((m) => m.dst),
        "review requests (6) not addressed to the server",
      ).toEqual([]);
      expect(masterRounds.length, "flow rate requests (7) from the master while the server works").toBe(0);
      expect(dev, "after the server's review, last 3 s: deviation from the mean, %").toBeLessThanOrEqual(15);
    },
    150_000,
  );

  certCase(
    C["vrls.substitution-failure"],
    async (ctx) => {
      const r = await substitutionScenario();
      requireCompleteCaptures([r.captures.far, r.captures.killRun]);
      const k = r.b.killRun;
      const master = r.b.raAfter.master as { allocation?: Record<string, string> } | null;
      await attachSubstitution(ctx, r, {
        killedAtMs: k.killedAt - k.startedAt,
        gapsMs: k.gapsMs,
        gapsAroundKillMs: k.gapsAroundKillMs,
        duplicates: k.duplicates,
        jitterMs: SUB_JITTER_MS,
        coordinatorFaults: r.b.raAfter.counters.coordinatorFaults ?? 0,
      });
      expect(r.b.raAfter.counters.coordinatorFaults ?? 0, "server faults the master noticed").toBe(1);
      expect(master, "the master's own allocation engine runs again").not.toBeNull();
      expect(master?.allocation, "the master goes on with the server's allocation (no move)").toEqual(
        r.b.rbOwners,
      );
      expect(k.duplicates, "frames forwarded twice (far side) around the server's death").toBe(0);
      // Judged from 200 ms before the kill to the end of the run: the whole-run figures
      // (measurements) also hold the senders' own start-up, unrelated to the server.
      expect(k.gapsAroundKillMs.length, "streams seen around the kill").toBe(4);
      expect(
        k.gapsAroundKillMs.filter((g) => g.ms >= SUB_JITTER_MS),
        `streams interrupted for ${SUB_JITTER_MS} ms or more around the server's death (4 x 500 pps)`,
      ).toEqual([]);
    },
    150_000,
  );
});

describe("vrls: failures", () => {
  async function failureRun(victim: "ra" | "rb", port: number) {
    const { allocation: before } = await bringUp();
    let recovered: Record<string, string> = {};
    let newMaster = "";
    let killedAt = 0;
    const run = await runStreams(lab!, ES, {
      port,
      pps: 1000,
      durationMs: 6000,
      during: async () => {
        await new Promise((r) => setTimeout(r, 1500));
        killedAt = Date.now();
        // The agent dies; the member stays powered: what it forwarded must die with it.
        await vrls().failMember(victim, "crash");
        newMaster = await vrls().waitForMaster(15_000);
        const until = Date.now() + 15_000;
        for (;;) {
          recovered = await vrls().waitAllocated(6, 15_000);
          if (Object.values(recovered).every((m) => m !== MEMBER[victim]!.addr) || Date.now() > until) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      },
    });
    // Traffic resumed: every stream's last second reached the server. A stream whose loss
    // runs to its end never resumed: interrupted from its first lost datagram to the end.
    const tails = run.results.map(({ host, result }) => {
      const lastLost = result.lostRanges.at(-1);
      return { host, lastLost, resumed: !lastLost || lastLost[1] < result.sent - 1000 };
    });
    const gaps = run.results.map(({ host, result }) => {
      const lastLost = result.lostRanges.at(-1);
      const tailMs = lastLost && lastLost[1] >= result.sent - 1 ? lastLost[1] - lastLost[0] + 1 : 0; // 1 ms per datagram at 1000 pps
      return { host, ms: Math.max(result.longestInterruption?.ms ?? 0, tailMs), lost: result.lost };
    });
    return { run, before, recovered, newMaster, tails, gaps, killedAt };
  }

  /** RFC 5798 Master_Down_Interval of the backup that takes over (3 x interval + skew). */
  function detectionMs(backup: string): number {
    const vr = virtualRouterConfig(loadTopology(LAB_FILE));
    const interval = vr.spec.advertIntervalMs;
    const priority = vr.members.find((m) => m.host === backup)?.priority ?? 100;
    return 3 * interval + ((256 - priority) * interval) / 256;
  }

  certCase(
    C["vrls.master-failure"],
    async (ctx) => {
      const r = await failureRun("ra", 5300);
      requireCompleteCaptures(r.run.captures);
      const detection = detectionMs("rb");
      const boundMs = Math.round(detection + HANDOFF_BOUND_MS + KILL_JITTER_MS);
      const survivors = ES.filter((h) => r.before[ES_ADDR[h]!] === MEMBER.rb!.addr);
      await attachStreams(
        ctx,
        "master-failure",
        r.run,
        {
          newMaster: r.newMaster,
          allocationBefore: r.before,
          allocation: r.recovered,
          detectionMs: detection,
          boundMs,
          gapsMs: r.gaps,
          survivors,
          duplicates: { receiver: r.run.totals.dupReceiver, wire: r.run.totals.dupWire },
          tails: r.tails,
        },
        [{ atMs: r.killedAt, label: "ra crashed", kind: "crash" }],
      );
      expect(r.newMaster, "new master").toBe("rb");
      // A dead master never forwards beside its successor.
      expect(
        { dupReceiver: r.run.totals.dupReceiver, dupWire: r.run.totals.dupWire },
        "packets forwarded twice (the crashed master still forwarding?)",
      ).toEqual({ dupReceiver: 0, dupWire: 0 });
      expect(
        r.gaps.filter((g) => g.ms > boundMs),
        `streams interrupted longer than detection ${detection} ms + one hand-off ${HANDOFF_BOUND_MS} ms + ${KILL_JITTER_MS} ms`,
      ).toEqual([]);
      expect(
        r.gaps.filter((g) => survivors.includes(g.host) && g.lost > 0),
        "router B's own end systems lost datagrams",
      ).toEqual([]);
      expect(Object.keys(r.recovered).length, "conditions in the rebuilt allocation").toBe(6);
      expect(
        Object.values(r.recovered).every((m) => m === MEMBER.rb!.addr),
        "everything on router B",
      ).toBe(true);
      expect(
        r.tails.filter((t) => !t.resumed),
        "streams that did not resume",
      ).toEqual([]);
    },
    180_000,
  );

  certCase(
    C["vrls.backup-failure"],
    async (ctx) => {
      const r = await backupKillRun(5400);
      requireCompleteCaptures([r.lanStats, ...r.run.captures]);
      const members = await vrls().members();
      const lanList = await describeLanMessages(r.lanPath, r.key, { originMs: r.killedAt });
      await ctx.attachFile("capture hub 2 (VRRP/VRLS messages)", r.lanPath, "application/vnd.tcpdump.pcap");
      await ctx.attachText(
        "messages on hub 2 (decoded with lib/wire, t = 0 at the kill)",
        lanList,
        "text/plain",
        "backup-kill-messages.txt",
      );
      await attachStreams(
        ctx,
        "backup-failure",
        r.run,
        {
          members,
          allocationBefore: r.before,
          allocationAfter: r.recovered,
          victimEndSystems: r.victims,
          detectionMs: r.detectionMs,
          handoffOnWireMs: r.handoffMs,
          jitterMs: KILL_JITTER_MS,
          boundMs: r.boundMs,
          gapsMs: r.gaps,
          firstAllocationAfterKillMs: r.firstAllocationMs,
          tails: r.tails,
        },
        [{ atMs: r.killedAt, label: "rb killed", kind: "crash" }],
      );
      expect(
        members.find((m) => m.id === MEMBER.rb!.addr)?.condition,
        "router B's condition in the master's table",
      ).toBe("faulty");
      expect(
        Object.values(r.recovered).every((m) => m === MEMBER.ra!.addr),
        "everything back on router A",
      ).toBe(true);
      expect(r.victims.length, "end systems router B served before the kill").toBeGreaterThan(0);
      expect(
        r.handoffMs,
        "the master's reallocation (3 -> its own 4, done) on hub 2 after the kill",
      ).not.toBeNull();
      expect(
        r.gaps.filter((g) => g.ms > r.boundMs!),
        `router B's end systems re-served within detection ${r.detectionMs} ms + one hand-off ${r.handoffMs} ms + ${KILL_JITTER_MS} ms`,
      ).toEqual([]);
      expect(
        { dupReceiver: r.run.totals.dupReceiver, dupWire: r.run.totals.dupWire },
        "packets forwarded twice",
      ).toEqual({ dupReceiver: 0, dupWire: 0 });
      expect(
        r.tails.filter((t) => !t.resumed),
        "streams that did not resume",
      ).toEqual([]);
    },
    180_000,
  );

  /**
   * A backup dies as a whole router (cables pulled by the lab, then its process killed):
   * the master detects it (no response for the detection time) and re-serves its end
   * systems with one hand-off. Streams at 1000 pps per end system, so the gap is measured
   * to the millisecond; the hand-off is the master's on hub 2 (first allocation after the
   * kill -> its own confirmation with "done").
   */
  async function backupKillRun(port: number) {
    const { allocation: before } = await bringUp();
    const loaded = loadTopology(LAB_FILE);
    const detectionMs = coreOptionsFor(virtualRouterConfig(loaded), "ra").responseTimeoutMs;
    const key = virtualRouterConfig(loaded).spec.key;
    const victims = ES.filter((h) => before[ES_ADDR[h]!] === MEMBER.rb!.addr);
    const lan = await Capture.start(lab!.host("es1").remote, {
      interface: "eth0",
      filter: "ip proto 112",
      snapLength: 2048,
      path: `/tmp/tandem-vrls-${lab!.prefix}-backup-kill.pcap`,
    });
    let killedAt = 0;
    let recovered: Record<string, string> = {};
    try {
      const run = await runStreams(lab!, ES, {
        port,
        pps: 1000,
        durationMs: 5000,
        during: async () => {
          await new Promise((r) => setTimeout(r, 1500));
          killedAt = Date.now();
          await vrls().failMember("rb", "power-off");
          const until = Date.now() + 15_000;
          for (;;) {
            recovered = await vrls().waitAllocated(6, 15_000);
            if (Object.values(recovered).every((m) => m !== MEMBER.rb!.addr) || Date.now() > until) break;
            await new Promise((r) => setTimeout(r, 100));
          }
        },
      });
      const lanStats = await lan.stop();
      const { messages } = await readLanMessages(lan.path);
      const first3 = messages.find(
        (m) => m.kind === "vrrp" && m.type === 3 && m.src === MEMBER.ra!.addr && m.tsMs > killedAt,
      );
      const done = first3 ? await firstOwnDone(lan.path, key, MEMBER.ra!.addr, first3.tsMs) : undefined;
      const handoffMs = first3 && done ? Math.round(done - first3.tsMs) : null;
      const boundMs = handoffMs === null ? null : detectionMs + handoffMs + KILL_JITTER_MS;
      const gaps = run.results
        .filter(({ host }) => victims.includes(host))
        .map(({ host, result }) => ({ host, ms: result.longestInterruption?.ms ?? 0 }));
      const tails = run.results.map(({ host, result }) => {
        const lastLost = result.lostRanges.at(-1);
        return { host, lastLost, resumed: !lastLost || lastLost[1] < result.sent - 1000 };
      });
      return {
        run,
        before,
        recovered,
        victims,
        detectionMs,
        handoffMs,
        boundMs,
        gaps,
        tails,
        killedAt,
        key,
        lanPath: lan.path,
        lanStats,
        firstAllocationMs: first3 ? Math.round(first3.tsMs - killedAt) : null,
      };
    } finally {
      await lan.stop();
      await vrls().restoreMember("rb");
    }
  }
});

// Cases the suite cannot drive yet (skipped with their reason). vitest fails a file on an
// empty describe ("No test found in suite"), so the group exists only when it has cases.
const notYetDriven = Object.values(C).filter((d) => d.notYetAvailable);
if (notYetDriven.length > 0) {
  describe("vrls: not driven by the suite yet", () => {
    for (const def of notYetDriven) {
      certCase(def, async () => {
        throw new Error(`${def.id}: no implementation yet`);
      });
    }
  });
}
