import { describe, expect } from "vitest";
import { vrlsCases as C } from "../../lib/certify/cases/vrls.ts";
import type { ChartEvent } from "../../lib/traffic/chart.ts";
import type { VrlsControl } from "../../vendor-adapters/types.ts";
import { requireCompleteCaptures } from "../support/evidence.ts";
import { useSuiteLab } from "../support/fixture.ts";
import { type CaseContext, certCase } from "../support/requirement.ts";
import { attachEvidence, type Evidence } from "./evidence.ts";
import {
  icmpMessages,
  isBroadcast,
  ofType,
  reviewRounds,
  sequenceOf,
  step,
  transfersOf,
  voluntaryRequest,
  vrlsLog,
  vrlsMessages,
} from "./frames.ts";
import { VrlsLab } from "./lab.ts";
import { describeLanMessages } from "./lan-capture.ts";
import {
  ADVERT_MS,
  deviationPct,
  REVIEW,
  type ReviewScenario,
  runReviewScenario,
  spreadPct,
  windowMbps,
} from "./review.ts";
import {
  backupFailureScenario,
  detectionMs,
  HANDOFF_BOUND_MS,
  handoffScenario,
  KILL_JITTER_MS,
  masterFailureScenario,
  type Startup,
  seqnumScenario,
  startupScenario,
  TIMER_DELAY_MS,
  type VrlsTarget,
} from "./scenarios.ts";
import { runSubstitutionScenario, SUB_JITTER_MS, type SubstitutionScenario } from "./substitution.ts";
import { runStreams, type StreamsRun } from "./traffic.ts";
import {
  decodeVrlsCapture,
  forwardedPackets,
  rateOrder,
  type TimerHandoff,
  timerHandoffs,
} from "./wire-judge.ts";

/**
 * VRLS (seed 000) on the lab of `tandem certify --lab` (default: the Fig. 7 lab). The
 * device is the virtual router of the hosts the lab file marks `device: true`; the suite
 * reads members, end systems, the far-side server, addresses and MACs from the lab file
 * (lab.ts), drives the device through its adapter's VRLS control surface, sends real UDP
 * and TCP streams from every end system and judges with the traffic analyzer (receiver
 * socket + far-side capture, attribution by source MAC) and a hub capture of the control
 * messages (frames.ts). The scenarios: scenarios.ts, review.ts, substitution.ts.
 */
const device = useSuiteLab("labs/vrls-fig7.yaml");

let model: VrlsLab | undefined;
function target(): VrlsTarget {
  const d = device();
  const vrls = d.adapter.vrls;
  if (!vrls) throw new Error(`device ${d.adapter.name} has no VRLS control surface`);
  model ??= new VrlsLab(d.lab, d.loaded, vrls);
  return { v: model, vrls };
}
const vrls = (): VrlsControl => target().vrls;

const memo = new Map<string, Promise<unknown>>();
function once<T>(name: string, fn: () => Promise<T>): Promise<T> {
  let p = memo.get(name) as Promise<T> | undefined;
  if (!p) {
    p = fn();
    memo.set(name, p);
  }
  return p;
}

const startup = () => once("startup", () => startupScenario(target()));

const sorted = (xs: readonly string[]) => [...xs].sort();

function startupEvidence(s: Startup, measured: Record<string, unknown>): Evidence {
  return {
    name: "startup",
    captures: [{ label: "capture of the hub (control messages)", path: s.capturePath }],
    measured: { ...measured, captures: s.captures },
  };
}

function streamsEvidence(
  name: string,
  run: StreamsRun,
  measured: Record<string, unknown>,
  events: readonly ChartEvent[] = [],
): Evidence {
  const { v } = target();
  return {
    name,
    captures: [{ label: `capture far side (${name})`, path: run.capturePath }],
    chart: {
      title: `packets/s forwarded per member (${name})`,
      timeline: run.timeline,
      names: v.names,
      events,
    },
    measured: {
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
  };
}

/** Each member gets floor(n/m) or ceil(n/m) of n end systems (Fig. 7: 6 over 2, three each). */
function balanced(counts: Record<string, number>, n: number, members: readonly string[]): boolean {
  const lo = Math.floor(n / members.length);
  const hi = Math.ceil(n / members.length);
  return members.every((m) => (counts[m] ?? 0) >= lo && (counts[m] ?? 0) <= hi);
}

async function electionCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const s = await startup();
  requireCompleteCaptures(s.captures);
  const advertisers = [
    ...new Set(
      vrlsMessages(s.messages, "advertisement")
        .filter((m) => m.tsMs > s.electedAt)
        .map((m) => v.hostOf(m.src)),
    ),
  ];
  await attachEvidence(ctx, startupEvidence(s, { master: s.master, advertisersAfterElection: advertisers }));
  expect(s.master, `master (${v.master.host} has the highest priority)`).toBe(v.master.host);
  expect(advertisers, "senders of advertisements (1) after the election").toEqual([v.master.host]);
}

async function backupResponseCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const s = await startup();
  requireCompleteCaptures(s.captures);
  const window = s.messages.filter((m) => m.tsMs > s.electedAt);
  const adverts = vrlsMessages(window, "advertisement", v.master.address).length;
  const responses = Object.fromEntries(
    v.backups.map((b) => [b.host, vrlsMessages(window, "response", b.address).length]),
  );
  await attachEvidence(
    ctx,
    startupEvidence(s, { advertsFromMaster: adverts, responsesFromBackups: responses }),
  );
  expect(adverts, "advertisements in the 1.5 s window").toBeGreaterThan(5);
  for (const b of v.backups)
    expect(
      (responses[b.host] ?? 0) / adverts,
      `responses (2) of ${b.host} per advertisement`,
    ).toBeGreaterThanOrEqual(0.9);
}

async function discoveryIcmpCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const s = await startup();
  requireCompleteCaptures(s.captures);
  const requests = icmpMessages(s.messages, "informationRequest");
  const replies = sorted([...new Set(icmpMessages(s.messages, "informationReply").map((m) => m.src))]);
  const byIcmp = sorted(s.endSystems.filter((e) => e.learnedBy === "icmp-info").map((e) => e.address));
  const lan = sorted(v.lanEndSystems.map((e) => e.address));
  await attachEvidence(
    ctx,
    startupEvidence(s, {
      requests: requests.map((r) => `${r.src} -> ${r.dst}`),
      replies,
      learnedByIcmp: byIcmp,
    }),
  );
  expect(requests.length, "ICMP information requests (15) on the hub").toBeGreaterThan(0);
  expect(
    requests.every((r) => isBroadcast(r.dst)),
    "requests are broadcast",
  ).toBe(true);
  expect(replies, "ICMP information replies (16)").toEqual(lan);
  expect(byIcmp, "end systems registered from the replies").toEqual(lan);
}

async function discoveryPassiveCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const s = await startup();
  const passive = sorted(s.endSystems.filter((e) => e.learnedBy === "passive").map((e) => e.address));
  await attachEvidence(ctx, startupEvidence(s, { learnedPassively: passive }));
  expect(passive).toEqual(sorted(v.remoteEndSystems.map((e) => e.address)));
}

async function initialAllocationCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const s = await startup();
  const counts: Record<string, number> = {};
  for (const m of Object.values(s.allocation)) counts[v.hostOf(m)] = (counts[v.hostOf(m)] ?? 0) + 1;
  await attachEvidence(ctx, startupEvidence(s, { allocation: s.allocation, perMember: counts }));
  expect(Object.keys(s.allocation).length, "conditions allocated").toBe(v.endSystems.length);
  expect(
    balanced(
      counts,
      v.endSystems.length,
      v.members.map((m) => m.host),
    ),
    `${v.endSystems.length} end systems spread evenly over ${v.members.length} members: ${JSON.stringify(counts)}`,
  ).toBe(true);
}

async function allocationExchangeCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const s = await startup();
  requireCompleteCaptures(s.captures);
  const allocations = vrlsMessages(s.messages, "allocation", v.master.address);
  const confirmations = Object.fromEntries(
    v.backups.map((b) => [b.host, vrlsMessages(s.messages, "allocationConfirmation", b.address)]),
  );
  await attachEvidence(
    ctx,
    startupEvidence(s, {
      allocations: allocations.length,
      confirmations: Object.fromEntries(Object.entries(confirmations).map(([h, c]) => [h, c.length])),
    }),
  );
  expect(allocations.length, "allocations (3) from the master").toBeGreaterThan(0);
  for (const b of v.backups) {
    const c = confirmations[b.host] ?? [];
    expect(c.length, `confirmations (4) from ${b.host}`).toBeGreaterThan(0);
    expect(c[0]!.tsMs, `${b.host}'s first confirmation follows an allocation`).toBeGreaterThanOrEqual(
      allocations[0]!.tsMs,
    );
  }
}

async function sharingSteadyCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const s = await startup();
  const run = await runStreams(
    v,
    v.endSystems.map((e) => e.host),
    { port: 5000, pps: 500, durationMs: 3000 },
  );
  requireCompleteCaptures(run.captures);
  const wrong = run.results.flatMap(({ host, result }) => {
    const owner = s.allocation[v.address(host)] ?? "";
    const mac = v.members.find((m) => m.address === owner)?.farMac ?? owner;
    const expected = { [mac]: result.sent };
    return JSON.stringify(result.attribution) === JSON.stringify(expected)
      ? []
      : [`${host}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(result.attribution)}`];
  });
  await attachEvidence(ctx, streamsEvidence("steady", run, { allocation: s.allocation }));
  expect(run.totals.lost, "packets lost").toBe(0);
  expect(run.totals.dupWire + run.totals.dupReceiver, "packets duplicated").toBe(0);
  expect(wrong, "end systems not forwarded by exactly their member in charge").toEqual([]);
}

describe("vrls: virtual router, discovery and allocation (Fig. 7, Fig. 12)", () => {
  certCase(C["vrls.election"], electionCase);

  certCase(C["vrls.backup-response"], backupResponseCase);

  certCase(C["vrls.discovery-icmp"], discoveryIcmpCase);

  certCase(C["vrls.discovery-passive"], discoveryPassiveCase);

  certCase(C["vrls.initial-allocation"], initialAllocationCase);

  certCase(C["vrls.allocation-exchange"], allocationExchangeCase);

  certCase(C["vrls.sharing-steady"], sharingSteadyCase);
});

async function handoffExactlyOnceCase(ctx: CaseContext): Promise<void> {
  const { run, moves, mode, events } = await handoffScenario(target(), "exactly-once", 5100);
  requireCompleteCaptures(run.captures);
  await attachEvidence(ctx, streamsEvidence("exactly-once", run, { mode, reallocations: moves }, events));
  expect(moves, "reallocations done").toBeGreaterThanOrEqual(6);
  expect(
    { lost: run.totals.lost, dupReceiver: run.totals.dupReceiver, dupWire: run.totals.dupWire },
    `${moves} hand-offs in mode ${mode}`,
  ).toEqual({ lost: 0, dupReceiver: 0, dupWire: 0 });
}

async function handoffTimerCase(ctx: CaseContext): Promise<void> {
  const delay = TIMER_DELAY_MS;
  const { run, moves, mode, events, members, memberCaptureStats } = await handoffScenario(
    target(),
    "timer",
    5200,
    { timerDelayMs: delay, memberCaptures: true },
  );
  requireCompleteCaptures([...run.captures, ...memberCaptureStats]);
  const { v } = target();
  // Per hand-off, on the new owner's own wire: the allocation (3) arriving on its LAN
  // interface (seed: "when receiving an allocation packet ... generates a certain delay
  // before the start of routing processing"; its confirmation (4) goes out at the same
  // time) -> its first forwarded packet of the condition on its far interface.
  const handoffs: TimerHandoff[] = [];
  let undecodable = 0;
  for (const m of members) {
    const lan = await decodeVrlsCapture(m.lan.path, v.description.key);
    const far = await forwardedPackets(m.far.path);
    undecodable += far.undecodable;
    handoffs.push(...timerHandoffs(m.address, lan, far.packets));
  }
  handoffs.sort((a, b) => a.allocationAtMs - b.allocationAtMs);
  // The bound: the configured delay less the scheduling jitter of this shared machine
  // (KILL_JITTER_MS). A member starts its delay when its agent reads the allocation, never
  // before the allocation is on its wire, so an honest member forwards >= `delay` after it;
  // the master taking a condition over starts its delay as it applies its own allocation,
  // which can precede the allocation leaving its interface by a descheduled send. A member
  // that ignores the delay forwards at its next timer tick (reference: about 20 ms) plus
  // that jitter. Measured on this machine (2026-12-03): honest 202-244 ms, the seeded fault
  // vrls-timer-delay-ignored 4-79 ms (two runs each); the bound 200 - 60 = 140 ms sits between them.
  const bound = delay - KILL_JITTER_MS;
  const judged = handoffs.filter((h) => h.firstForwardAfterMs !== null);
  const early = judged.filter((h) => h.firstForwardAfterMs! < bound);
  const neverForwarded = handoffs.filter((h) => h.firstForwardAfterMs === null);
  await attachEvidence(ctx, {
    ...streamsEvidence(
      "timer",
      run,
      {
        mode,
        configuredTimerDelayMs: delay,
        boundMs: bound,
        schedulingJitterMs: KILL_JITTER_MS,
        reallocations: moves,
        handoffsOnTheWire: handoffs.map((h) => ({
          ...h,
          from: v.hostOf(h.from),
          to: v.hostOf(h.to),
          allocationAtMs: Math.round(h.allocationAtMs - run.timeline.startMs),
        })),
        firstForwardAfterMs: judged.map((h) => h.firstForwardAfterMs),
        earlyHandoffs: early.length,
        undecodableForwardedFrames: undecodable,
        memberCaptures: memberCaptureStats,
        lossAllowedInTimerMode: run.totals.lost,
      },
      events,
    ),
    captures: [
      { label: "capture far side (timer)", path: run.capturePath },
      ...members.flatMap((m) => [
        { label: `capture ${m.host} LAN interface (VRLS messages)`, path: m.lan.path },
        { label: `capture ${m.host} far interface (forwarded by ${m.host})`, path: m.far.path },
      ]),
    ],
  });
  expect(moves, "reallocations done").toBeGreaterThanOrEqual(6);
  expect(
    judged.length,
    "hand-offs on the wire with a forwarded packet by the new owner",
  ).toBeGreaterThanOrEqual(6);
  const earliest = early.reduce<TimerHandoff | undefined>(
    (a, h) => (a && a.firstForwardAfterMs! <= h.firstForwardAfterMs! ? a : h),
    undefined,
  );
  expect(
    early.length,
    `hand-offs whose new owner forwarded earlier than the configured delay ${delay} ms less ${KILL_JITTER_MS} ms jitter after the allocation (3), of ${judged.length}${earliest ? `; earliest: ${earliest.condition} to ${v.hostOf(earliest.to)} after ${earliest.firstForwardAfterMs} ms` : ""}`,
  ).toBe(0);
  expect(
    neverForwarded.map((h) => `${h.condition} to ${v.hostOf(h.to)} (serial ${h.serial})`),
    "hand-offs whose new owner never forwarded the condition",
  ).toEqual([]);
  expect(
    { dupReceiver: run.totals.dupReceiver, dupWire: run.totals.dupWire },
    `${moves} hand-offs in mode ${mode}`,
  ).toEqual({ dupReceiver: 0, dupWire: 0 });
}

describe("vrls: hand-off under load", () => {
  certCase(C["vrls.handoff-exactly-once"], handoffExactlyOnceCase, 180_000);

  certCase(C["vrls.handoff-timer"], handoffTimerCase, 180_000);
});

async function handoffSeqnumCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const r = await seqnumScenario(target(), 6500);
  requireCompleteCaptures(r.captures);
  await attachEvidence(ctx, {
    name: "seqnum",
    captures: [
      { label: "capture of the hub (TCP sent)", path: r.lanPath },
      { label: "capture far side (TCP forwarded)", path: r.farPath },
    ],
    chart: {
      title: "TCP segments/s forwarded per member (seqnum)",
      timeline: r.timeline,
      names: v.names,
      events: r.events,
    },
    measured: {
      mode: vrls().mode,
      reallocations: r.moves,
      tcp: r.tcp,
      resets: r.resets,
      captures: r.captures,
    },
  });
  expect(r.moves, "reallocations done").toBeGreaterThanOrEqual(6);
  expect(r.tcp.connections, "TCP connections seen").toBe(v.endSystems.length);
  expect(r.tcp.sent, "TCP data segments sent").toBeGreaterThan(1000);
  expect(
    { lost: r.tcp.lost, duplicated: r.tcp.duplicated, resets: r.resets },
    `${r.moves} hand-offs in mode ${vrls().mode}`,
  ).toEqual({ lost: 0, duplicated: 0, resets: 0 });
}

describe("vrls: sequence-number hand-off (TCP)", () => {
  certCase(C["vrls.handoff-seqnum"], handoffSeqnumCase, 180_000);
});

/** The review scenario (review.ts), run once and judged by five cases. */
const reviewScenario = () => once("review", () => runReviewScenario(target()));

function reviewEvidence(r: ReviewScenario, measured: Record<string, unknown>): Evidence {
  const { v } = target();
  return {
    name: "review",
    captures: [
      { label: "capture of the hub (VRRP/VRLS messages)", path: r.lanCapturePath },
      { label: "capture far side (forwarded)", path: r.farCapturePath },
    ],
    listing: { label: "messages on the hub (decoded with lib/wire)", text: r.listing },
    chart: {
      title: `packets/s forwarded per member (run 1 skew onto ${v.hostOf(r.backup)}, run 2 skew onto ${v.hostOf(r.master)})`,
      timeline: r.timeline,
      names: v.names,
      events: r.events,
      originMs: r.run1.startedAt,
      wide: true,
    },
    logs: { label: "router agent logs", text: r.agentLogs },
    measured: {
      review: REVIEW,
      mode: r.mode,
      advertIntervalMs: ADVERT_MS,
      capacityMbitPerMember: 4,
      run1: r.run1,
      run2: r.run2,
      allocations: r.allocations,
      reviewerState: r.reviewStatus,
      captures: r.captures,
      ...measured,
    },
  };
}

const t0 = (r: ReviewScenario, at: number | undefined) =>
  at === undefined ? null : Math.round(at - r.run1.startedAt);
const atMs = (r: ReviewScenario, path: { type: number; src: string; at: number }[] | null) =>
  path?.map((m) => ({ type: m.type, src: m.src, atMs: t0(r, m.at) })) ?? null;

async function reviewBackupCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const r = await reviewScenario();
  requireCompleteCaptures([r.captures.lan]);
  const log = vrlsLog(r.messages);
  const [RA, RB] = [r.master, r.backup];
  const path = sequenceOf(
    log,
    [
      step("reviewRequest", RB),
      step("flowRateRequest", RA),
      step("flowRateResponse", RB),
      step("allocation", RA),
      step("allocationConfirmation"),
    ],
    r.run1.startedAt,
  );
  // Every flow rate request (7) of the master is answered by every backup (8) within the
  // collection time (Fig. 10F).
  // Each flow rate request (7) of the master, sent to one backup, is answered by that
  // backup (8) within the collection time (Fig. 10F).
  const unanswered = ofType(log, "flowRateRequest", RA)
    .filter(
      (m) =>
        !ofType(log, "flowRateResponse", m.dst).some((x) => x.at >= m.at && x.at <= m.at + REVIEW.collectMs),
    )
    .map((m) => t0(r, m.at));
  await attachEvidence(
    ctx,
    reviewEvidence(r, {
      backupTriggeredSequenceMs: atMs(r, path),
      unansweredFlowRateRequestsMs: unanswered,
    }),
  );
  expect(
    path,
    `6 (${v.hostOf(RB)}) -> 7 (master) -> 8 -> 3 (master) -> 4 on the hub during run 1`,
  ).not.toBeNull();
  expect(path![0]!.at, "the review request comes while run 1 skews onto the backup").toBeLessThan(
    r.run1.endedAt,
  );
  expect(unanswered, "flow rate requests (7) without a response (8) from the backup asked").toEqual([]);
}

async function reviewMasterCase(ctx: CaseContext): Promise<void> {
  const r = await reviewScenario();
  requireCompleteCaptures([r.captures.lan]);
  const log = vrlsLog(r.messages);
  const seven = voluntaryRequest(log, r.run2.startedAt);
  const path = seven
    ? sequenceOf(
        log,
        [
          step("flowRateRequest", r.master),
          step("flowRateResponse", r.backup),
          step("allocation", r.master),
          step("allocationConfirmation"),
        ],
        seven.at,
      )
    : null;
  await attachEvidence(
    ctx,
    reviewEvidence(r, {
      masterTriggeredSequenceMs: atMs(r, path),
      run2StartedAtMs: t0(r, r.run2.startedAt),
    }),
  );
  expect(
    seven,
    "a flow rate request (7) from the master during run 2 with no review request (6) before it",
  ).toBeDefined();
  expect(seven!.src, "sender of the voluntary 7").toBe(r.master);
  expect(path, "7 (master) -> 8 (backup) -> 3 (master) -> 4 on the hub during run 2").not.toBeNull();
}

async function reviewHolddownCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const r = await reviewScenario();
  requireCompleteCaptures([r.captures.lan, r.captures.far, r.captures.run2]);
  const log = vrlsLog(r.messages);
  const hold = REVIEW.holdDownMs;
  // Wire timestamps vs the agent's clock: a message may leave up to a scheduling delay
  // after the hold-down started; 100 ms covers that on this loaded machine.
  const tolerance = 100;
  // One round: the master's 7 to each backup, sent together.
  const rounds = reviewRounds(log, REVIEW.collectMs);
  const requests = ofType(log, "reviewRequest");
  const gaps = rounds.slice(1).map((m, i) => m.at - rounds[i]!.at);
  // Per backup: the time between two review requests (6) of the same member.
  const requestGaps = requests.flatMap((m, i) => {
    const before = requests
      .slice(0, i)
      .filter((x) => x.src === m.src)
      .at(-1);
    return before ? [m.at - before.at] : [];
  });
  // A backup does not ask within the hold-down after a flow rate request it answered.
  const earlyRequests = requests
    .filter((q) => rounds.some((m) => m.at < q.at && q.at - m.at < hold - tolerance))
    .map((q) => t0(r, q.at));
  const seven = voluntaryRequest(log, r.run2.startedAt);
  const previous = rounds.filter((m) => seven && m.at < seven.at).at(-1);
  // The master had a review due while it was held down: run 2's skew, measured on the
  // far side from 1.5 s into run 2 (the monitor's window) up to its flow rate request.
  const heldFrom = r.run2.startedAt + 1500;
  const heldTo = seven?.at ?? r.run2.endedAt;
  const held = heldTo - heldFrom >= 500 ? windowMbps(v, r.loads.run2, heldFrom, heldTo) : null;
  const heldSpread = held ? spreadPct(Object.values(held)) : null;
  await attachEvidence(
    ctx,
    reviewEvidence(r, {
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
    }),
  );
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
}

async function reallocationByRateCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const r = await reviewScenario();
  requireCompleteCaptures([r.captures.lan, r.captures.far, r.captures.run1, r.captures.run2]);
  const log = vrlsLog(r.messages);
  const firstRealloc1 = ofType(log, "allocation").find(
    (m) => m.at > r.run1.startedAt && m.at < r.run1.endedAt,
  );
  const seven = voluntaryRequest(log, r.run2.startedAt);
  const before1 =
    firstRealloc1 && firstRealloc1.at - (r.run1.startedAt + 300) >= 300
      ? windowMbps(v, r.loads.run1, r.run1.startedAt + 300, firstRealloc1.at)
      : null;
  const before2 = seven ? windowMbps(v, r.loads.run2, r.run2.startedAt + 300, seven.at) : null;
  const dev = {
    before1: before1 ? deviationPct(Object.values(before1)) : null,
    after1: deviationPct(Object.values(r.run1.after)),
    before2: before2 ? deviationPct(Object.values(before2)) : null,
    after2: deviationPct(Object.values(r.run2.after)),
  };
  // Biggest first, on the wire: each reallocation (3) after a review round against the
  // rates the backups reported in that round's flow rate responses (8), decoded with lib/wire.
  const decoded = await decodeVrlsCapture(r.lanCapturePath, r.key);
  const rounds = rateOrder(decoded, r.master, REVIEW.collectMs).map((x) => ({
    ...x,
    requestAtMs: t0(r, x.requestAtMs),
    allocationAtMs: x.allocationAtMs === null ? null : t0(r, x.allocationAtMs),
    orderByRouter: x.orderByRouter.map((o) => ({
      ...o,
      router: v.hostOf(o.router),
      ...(o.previousRouter ? { previousRouter: v.hostOf(o.previousRouter) } : {}),
    })),
  }));
  const reallocations = rounds.filter((x) => x.allocationSerial !== null);
  // A list with fewer than two reported conditions cannot show an order.
  const compared = reallocations.reduce(
    (n, x) => n + x.orderByRouter.reduce((k, o) => k + Math.max(0, o.rates.length - 1), 0),
    0,
  );
  const positive = reallocations.reduce(
    (n, x) => n + x.orderByRouter.reduce((k, o) => k + o.rates.filter((b) => b > 0).length, 0),
    0,
  );
  await attachEvidence(
    ctx,
    reviewEvidence(r, {
      mbps: { before1, after1: r.run1.after, before2, after2: r.run2.after },
      deviationFromMeanPct: dev,
      firstReallocationRun1Ms: t0(r, firstRealloc1?.at),
      orderOnTheWire: {
        note: "per review round: the reallocation (3) lists each router's conditions in the order it placed them; rates (bit/s) are those the backups reported (8) for the conditions listed, in that order; the master's own conditions have no rate on the wire",
        rounds,
        adjacentPairsCompared: compared,
      },
    }),
  );
  expect(
    reallocations.length,
    "review rounds (7 -> 8) followed by a reallocation (3)",
  ).toBeGreaterThanOrEqual(1);
  expect(
    positive,
    "conditions with a non-zero reported rate (8) in the reallocations",
  ).toBeGreaterThanOrEqual(2);
  expect(
    compared,
    "adjacent pairs of reported conditions in the reallocations' lists",
  ).toBeGreaterThanOrEqual(2);
  const inversions = reallocations.flatMap((x) =>
    x.inversions.map(
      (i) =>
        `serial ${x.allocationSerial} to ${v.hostOf(i.router)}: ${i.after} (${i.afterBps} bit/s) placed after ${i.before} (${i.beforeBps} bit/s)`,
    ),
  );
  expect(
    inversions.length,
    `reallocation by rate, biggest first: conditions placed after one with a lower reported rate (8), of ${compared} pairs compared${inversions.length ? `; first: ${inversions[0]}` : ""}`,
  ).toBe(0);
  expect(
    dev.before1 ?? Number.NaN,
    "skew before run 1's review (deviation from the mean, %)",
  ).toBeGreaterThan(15);
  expect(dev.after1, "run 1, last 3 s: per-member rate's deviation from the mean, %").toBeLessThanOrEqual(15);
  expect(
    dev.before2 ?? Number.NaN,
    "skew before run 2's review (deviation from the mean, %)",
  ).toBeGreaterThan(15);
  expect(dev.after2, "run 2, last 3 s: per-member rate's deviation from the mean, %").toBeLessThanOrEqual(15);
}

async function reviewExactlyOnceCase(ctx: CaseContext): Promise<void> {
  const r = await reviewScenario();
  requireCompleteCaptures([r.captures.lan, r.captures.far, r.captures.run1, r.captures.run2]);
  const reallocations = ofType(vrlsLog(r.messages), "allocation").filter(
    (m) => m.at > r.run1.startedAt,
  ).length;
  await attachEvidence(
    ctx,
    reviewEvidence(r, {
      allocationMessagesDuringTheRuns: reallocations,
      duplicates: { run1: r.run1.duplicatesByStream, run2: r.run2.duplicatesByStream },
    }),
  );
  expect(reallocations, "allocations (3) sent by the reviews").toBeGreaterThan(0);
  // Loss is not judged here: the tbf capacity limits drop by design.
  expect(
    { run1: r.run1.duplicates, run2: r.run2.duplicates },
    "frames forwarded twice (far side) across the review reallocations",
  ).toEqual({ run1: 0, run2: 0 });
}

describe("vrls: allocation review and reallocation (Fig. 15, Figs. 10D-10F)", () => {
  certCase(C["vrls.review-backup"], reviewBackupCase, 150_000);

  certCase(C["vrls.review-master"], reviewMasterCase, 150_000);

  certCase(C["vrls.review-holddown"], reviewHolddownCase, 150_000);

  certCase(C["vrls.reallocation-by-rate"], reallocationByRateCase, 150_000);

  certCase(C["vrls.review-exactly-once"], reviewExactlyOnceCase, 150_000);
});

/** The substitution server scenario (substitution.ts), run once for three cases. */
const substitutionScenario = () => once("substitution", () => runSubstitutionScenario(target().v));

function substitutionEvidence(r: SubstitutionScenario, measured: Record<string, unknown>): Evidence {
  return {
    name: "substitution",
    captures: [
      { label: "capture of the hub (VRRP/VRLS, ICMP)", path: r.lanCapturePath },
      { label: "capture far side (forwarded)", path: r.farCapturePath },
    ],
    listing: { label: "messages on the hub (decoded with lib/wire, t = 0 at phase A)", text: r.listing },
    chart: {
      title: "packets/s forwarded per member (review through the server, then the server killed)",
      timeline: r.timeline,
      names: r.who.names,
      events: r.events,
      wide: true,
    },
    logs: { label: "router and server agent logs", text: r.logs },
    measured: {
      phaseA: { server: r.a.server, masterEngine: r.a.raMasterEngine, owners: r.a.owners },
      phaseB: {
        reviewRun: r.b.reviewRun,
        killRun: r.b.killRun,
        masterAfter: r.b.raAfter,
        backupOwners: r.b.rbOwners,
      },
      captures: r.captures,
      ...measured,
    },
  };
}

/** How long the server may take to pass a backup's response on (this machine's jitter included). */
const TRANSFER_WITHIN_MS = 500;

async function substitutionCase(ctx: CaseContext): Promise<void> {
  const r = await substitutionScenario();
  const { master: RA, backup: RB, server: SUB } = r.who;
  requireCompleteCaptures([r.captures.lan]);
  const logA = vrlsLog(r.a.messages);
  const registration = sequenceOf(logA, [
    step("registration", SUB),
    step("registrationAck", RA),
    step("allocation", SUB),
  ]);
  const infoRequests = icmpMessages(r.a.messages, "informationRequest").filter((m) => m.src === SUB);
  const infoReplies = sorted([
    ...new Set(
      icmpMessages(r.a.messages, "informationReply")
        .filter((m) => m.dst === SUB)
        .map((m) => m.src),
    ),
  ]);
  const serverAlloc = r.a.server.master?.allocation ?? {};
  const firstServerAlloc = ofType(logA, "allocation", SUB)[0];
  const answersBy = (src: string) =>
    ofType(logA, "allocationConfirmation", src).filter(
      (m) => firstServerAlloc && m.at >= firstServerAlloc.at,
    );
  const masterAnswers = answersBy(RA);
  const backupAnswers = answersBy(RB);
  // P25: the backup's responses reach the master through the server, unchanged.
  const transfers = firstServerAlloc
    ? transfersOf(r.a.messages, firstServerAlloc.at, { backup: RB, server: SUB, master: RA })
    : [];
  const untransferred = transfers.filter(
    (t) => t.transferredAfterMs === null || t.transferredAfterMs > TRANSFER_WITHIN_MS,
  );
  // P26: the master's sequence number information / markers go straight to the backup.
  const directMarkers = ofType(logA, "sequenceInfo", RA).filter(
    (m) => m.dst === RB && firstServerAlloc && m.at >= firstServerAlloc.at,
  ).length;
  await attachEvidence(
    ctx,
    substitutionEvidence(r, {
      registrationSequence: registration?.map((m) => ({ type: m.type, src: m.src })) ?? null,
      icmpInfoRequestsFromServer: infoRequests.length,
      icmpInfoRepliesToServer: infoReplies,
      masterConfirmationsOfServerAllocation: masterAnswers.length,
      backupConfirmationsOfServerAllocation: backupAnswers.length,
      backupResponsesTransferredToMaster: transfers,
      transferWithinMs: TRANSFER_WITHIN_MS,
      mode: r.mode,
      sequenceInfoMasterToBackup: directMarkers,
    }),
  );
  expect(registration, "9 (server) -> 10 (master) -> 3 (server) on the hub").not.toBeNull();
  expect(infoRequests.length, "ICMP information requests (15) from the server").toBeGreaterThan(0);
  expect(infoReplies, "ICMP information replies (16) to the server").toEqual(sorted(r.lanEndSystems));
  expect(
    r.lanEndSystems.filter((a) => !(a in serverAlloc)),
    "LAN end systems missing from the server's allocation",
  ).toEqual([]);
  expect(new Set(Object.values(serverAlloc)), "members in the server's allocation").toEqual(
    new Set(r.who.members),
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
  if (!r.mode.startsWith("timer"))
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
}

async function substitutionReviewCase(ctx: CaseContext): Promise<void> {
  const r = await substitutionScenario();
  const { master: RA, backup: RB, server: SUB } = r.who;
  requireCompleteCaptures([r.captures.lan, r.captures.far, r.captures.reviewRun]);
  const logB = vrlsLog(r.b.messages);
  const review = sequenceOf(
    logB,
    [
      step("reviewRequest", RB),
      step("flowRateRequest", SUB),
      step("flowRateResponse"),
      step("allocation", SUB),
      step("allocationConfirmation"),
    ],
    r.b.reviewRun.startedAt,
  );
  const requestsB = ofType(logB, "reviewRequest").filter(
    (m) => m.at >= r.b.reviewRun.startedAt && m.at < r.b.killRun.killedAt,
  );
  const masterRounds = ofType(logB, "flowRateRequest", RA).filter((m) => m.at < r.b.killRun.killedAt);
  const dev = deviationPct(Object.values(r.b.reviewRun.after));
  // P33: after the flow rate responses (8) and before the reallocation (3), the server
  // asks the end systems again (ICMP 15) and their answers (16) come back to it.
  const lastRate = review?.[2];
  const realloc = review?.[3];
  const asked =
    lastRate && realloc
      ? icmpMessages(r.b.messages, "informationRequest").filter(
          (m) => m.src === SUB && m.tsMs > lastRate.at && m.tsMs < realloc.at,
        )
      : [];
  const answered = asked[0]
    ? icmpMessages(r.b.messages, "informationReply").filter(
        (m) => m.dst === SUB && m.tsMs > asked[0]!.tsMs && m.tsMs <= realloc!.at,
      )
    : [];
  const at = (t: number | undefined) => (t === undefined ? null : Math.round(t - r.b.reviewRun.startedAt));
  await attachEvidence(
    ctx,
    substitutionEvidence(r, {
      reviewSequence: review?.map((m) => ({ type: m.type, src: m.src, dst: m.dst, atMs: at(m.at) })) ?? null,
      reviewRequestDestinations: requestsB.map((m) => m.dst),
      masterFlowRateRequests: masterRounds.length,
      deviationAfterReviewPct: dev,
      p33InformationRequestsAtMs: asked.map((m) => at(m.tsMs)),
      p33RepliesToServer: answered.map((m) => ({ from: m.src, atMs: at(m.tsMs) })),
    }),
  );
  expect(review, "6 (backup) -> 7 (server) -> 8 -> 3 (server) -> 4 on the hub").not.toBeNull();
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
}

async function substitutionFailureCase(ctx: CaseContext): Promise<void> {
  const r = await substitutionScenario();
  requireCompleteCaptures([r.captures.far, r.captures.killRun]);
  const k = r.b.killRun;
  const master = r.b.raAfter.master as { allocation?: Record<string, string> } | null;
  await attachEvidence(
    ctx,
    substitutionEvidence(r, {
      killedAtMs: k.killedAt - k.startedAt,
      gapsMs: k.gapsMs,
      gapsAroundKillMs: k.gapsAroundKillMs,
      duplicates: k.duplicates,
      jitterMs: SUB_JITTER_MS,
      coordinatorFaults: r.b.raAfter.counters.coordinatorFaults ?? 0,
    }),
  );
  expect(r.b.raAfter.counters.coordinatorFaults ?? 0, "server faults the master noticed").toBe(1);
  expect(master, "the master's own allocation engine runs again").not.toBeNull();
  expect(master?.allocation, "the master goes on with the server's allocation (no move)").toEqual(
    r.b.rbOwners,
  );
  expect(k.duplicates, "frames forwarded twice (far side) around the server's death").toBe(0);
  // Judged from 200 ms before the kill to the end of the run: the whole-run figures
  // (measurements) also hold the senders' own start-up, unrelated to the server.
  expect(k.gapsAroundKillMs.length, "streams seen around the kill").toBe(r.lanEndSystems.length);
  expect(
    k.gapsAroundKillMs.filter((g) => g.ms >= SUB_JITTER_MS),
    `streams interrupted for ${SUB_JITTER_MS} ms or more around the server's death (${r.lanEndSystems.length} x 500 pps)`,
  ).toEqual([]);
}

describe("vrls: substitution server (Figs. 14-16)", () => {
  certCase(C["vrls.substitution"], substitutionCase, 150_000);

  certCase(C["vrls.substitution-review"], substitutionReviewCase, 150_000);

  certCase(C["vrls.substitution-failure"], substitutionFailureCase, 150_000);
});

async function masterFailureCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const r = await masterFailureScenario(target(), 5300);
  requireCompleteCaptures(r.run.captures);
  const successor = v.backups[0]!;
  const detection = detectionMs(v, successor.host);
  const boundMs = Math.round(detection + HANDOFF_BOUND_MS + KILL_JITTER_MS);
  const victimAddr = v.member(r.victim).address;
  const survivors = v.endSystems.filter((e) => r.before[e.address] !== victimAddr).map((e) => e.host);
  await attachEvidence(
    ctx,
    streamsEvidence(
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
      r.events,
    ),
  );
  expect(r.newMaster, "new master (the highest-priority backup)").toBe(successor.host);
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
    "the surviving members' own end systems lost datagrams",
  ).toEqual([]);
  expect(Object.keys(r.recovered).length, "conditions in the rebuilt allocation").toBe(v.endSystems.length);
  expect(
    Object.values(r.recovered).filter((m) => m === victimAddr),
    `conditions still on the crashed ${r.victim}`,
  ).toEqual([]);
  expect(
    r.tails.filter((t) => !t.resumed),
    "streams that did not resume",
  ).toEqual([]);
}

async function backupFailureCase(ctx: CaseContext): Promise<void> {
  const { v } = target();
  const r = await backupFailureScenario(target(), 5400);
  requireCompleteCaptures([r.lanStats, ...r.run.captures]);
  const members = await vrls().members();
  const victimAddr = v.member(r.victim).address;
  const lanList = await describeLanMessages(r.lanPath, r.key, { originMs: r.killedAt });
  const evidence = streamsEvidence(
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
    r.events,
  );
  await attachEvidence(ctx, {
    ...evidence,
    captures: [
      { label: "capture of the hub (VRRP/VRLS messages)", path: r.lanPath },
      ...(evidence.captures ?? []),
    ],
    listing: { label: "messages on the hub (decoded with lib/wire, t = 0 at the kill)", text: lanList },
  });
  expect(
    members.find((m) => m.id === victimAddr)?.condition,
    `${r.victim}'s condition in the master's table`,
  ).toBe("faulty");
  expect(
    Object.values(r.recovered).filter((m) => m === victimAddr),
    `conditions still on the failed ${r.victim}`,
  ).toEqual([]);
  expect(r.victims.length, `end systems ${r.victim} served before the failure`).toBeGreaterThan(0);
  expect(
    r.handoffMs,
    "the master's reallocation (3 -> its own 4, done) on the hub after the failure",
  ).not.toBeNull();
  expect(
    r.gaps.filter((g) => g.ms > r.boundMs!),
    `${r.victim}'s end systems re-served within detection ${r.detectionMs} ms + one hand-off ${r.handoffMs} ms + ${KILL_JITTER_MS} ms`,
  ).toEqual([]);
  expect(
    { dupReceiver: r.run.totals.dupReceiver, dupWire: r.run.totals.dupWire },
    "packets forwarded twice",
  ).toEqual({ dupReceiver: 0, dupWire: 0 });
  expect(
    r.tails.filter((t) => !t.resumed),
    "streams that did not resume",
  ).toEqual([]);
}

describe("vrls: failures", () => {
  certCase(C["vrls.master-failure"], masterFailureCase, 180_000);

  certCase(C["vrls.backup-failure"], backupFailureCase, 180_000);
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
