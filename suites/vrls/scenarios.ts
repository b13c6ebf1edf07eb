import { waitUntil } from "../../lib/remote/wait.ts";
import { TrafficAgent } from "../../lib/traffic/agent-client.ts";
import { Capture, type CaptureStats } from "../../lib/traffic/capture.ts";
import type { ChartEvent } from "../../lib/traffic/chart.ts";
import { forwardingTimeline } from "../../lib/traffic/forwarding-timeline.ts";
import { compareTcpWire } from "../../lib/traffic/tcp-compare.ts";
import { sendUdpStream } from "../../lib/traffic/udp.ts";
import type { VrlsControl, VrlsMode } from "../../vendor-adapters/types.ts";
import { suiteEnv } from "../support/env.ts";
import { vrlsMessages } from "./frames.ts";
import type { VrlsLab } from "./lab.ts";
import { firstOwnDone, type LanMessage, readLanMessages } from "./lan-capture.ts";
import { runStreams, type StreamsRun } from "./traffic.ts";

/**
 * The scenarios of the vrls suite's core cases (election, discovery, allocation, hand-off,
 * failures) on the suite's lab (lab.ts): each drives the device through its adapter's VRLS
 * control surface, sends real traffic from the lab's end systems and returns what the
 * cases judge. Review and substitution scenarios: review.ts, substitution.ts.
 */
export interface VrlsTarget {
  v: VrlsLab;
  vrls: VrlsControl;
}

/** Scheduling jitter of this shared 2-core machine (role's fault test: quiet baseline 9-26 ms). */
export const KILL_JITTER_MS = 60;
/** One hand-off after a failure: the reference needs ~10-20 ms (tandem bench handoff); a device gets 100. */
export const HANDOFF_BOUND_MS = 100;

/** `tandem certify --mode M` sets the operation mode of the cases that do not test a mode themselves. */
const DEFAULT_MODE = (["timer", "sequence-number", "exactly-once"] as const).find(
  (m) => m === suiteEnv().mode,
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the virtual router, lets the remote end systems be learned passively, waits for the allocation of every end system. */
export async function bringUp(
  { v, vrls }: VrlsTarget,
  mode: VrlsMode | undefined = DEFAULT_MODE,
  settings: { timerDelayMs?: number } = {},
): Promise<{ master: string; allocation: Record<string, string> }> {
  await vrls.start({
    infoResponders: v.lanEndSystems.map((e) => e.host),
    ...(mode ? { mode } : {}),
    ...settings,
  });
  // Members start within a few hundred ms of each other: a lower-priority member may lead
  // until the higher one preempts. The election result is the master that holds for 1 s.
  await vrls.waitForMaster(20_000);
  let seen = "";
  let since = Date.now();
  const master = await waitUntil(
    async () => {
      const m = (await vrls.master()) ?? "";
      if (m !== seen) {
        seen = m;
        since = Date.now();
        return undefined;
      }
      return m && Date.now() - since >= 1000 ? m : undefined;
    },
    { timeoutMs: 10_000, everyMs: 100, what: "one master holding for 1 s", last: () => seen },
  );
  // End systems behind another router: no directed broadcast reaches them, their traffic does.
  await Promise.all(
    v.remoteEndSystems.map((e, i) =>
      sendUdpStream(v.lab.host(e.host).remote, {
        streamId: 900 + i,
        dstIp: v.server.address,
        dstPort: 5999,
        pps: 200,
        count: 100,
      }),
    ),
  );
  const allocation = await vrls.waitAllocated(v.endSystems.length, 20_000);
  return { master, allocation };
}

export interface Startup {
  master: string;
  allocation: Record<string, string>;
  endSystems: { address: string; learnedBy: string }[];
  messages: LanMessage[];
  capturePath: string;
  /** tcpdump's closing statistics of the hub capture (cases that judge messages need it complete). */
  captures: CaptureStats[];
  electedAt: number;
}

/** Bring-up with the hub captured, then 1.5 s of steady state (adverts and responses). */
export async function startupScenario(t: VrlsTarget): Promise<Startup> {
  const { v, vrls } = t;
  const capture = await Capture.start(v.lab.host(v.hubWatch.host).remote, {
    interface: v.hubWatch.iface,
    filter: "vrrp or icmp",
    snapLength: 200,
    path: `/tmp/tandem-vrls-${v.lab.prefix}-startup.pcap`,
  });
  try {
    const { master, allocation } = await bringUp(t);
    const electedAt = Date.now();
    await sleep(1500); // the steady state the cases count messages in (time is the subject)
    const endSystems = await vrls.endSystems();
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
    throw new Error(`${(e as Error).message}\n${await vrls.diagnostics().catch(() => "")}`);
  }
}

/** The member after `current` in priority order (cyclic): where a hand-off moves a condition. */
export function nextMember(v: VrlsLab, current: string | undefined): string {
  const i = v.members.findIndex((m) => m.address === current);
  return v.members[(i + 1) % v.members.length]!.address;
}

/** The pace of handoffScenario's reallocations: one every 400 ms. */
export const HANDOFF_PACE_MS = 400;

/**
 * The timer delay the timer-mode case configures (VrlsSettings.timerDelayMs), instead of
 * the lab file's 20 ms. At 20 ms the delay equals the reference's own timer tick (retryMs
 * 20: a member re-checks its timed hand-off steps every 20 ms, and every received message
 * pushes that check back), so a member that waits the delay and one that ignores it both
 * start forwarding 20-40 ms after the allocation: the wire cannot tell them apart. 200 ms
 * is ten ticks, and half the reallocation pace (HANDOFF_PACE_MS), so every delay is over
 * before the next allocation arrives (an allocation during a delay may settle it early).
 */
export const TIMER_DELAY_MS = 200;

export interface MemberCapture {
  host: string;
  address: string;
  /** VRLS control messages on the member's LAN interface. */
  lan: Capture;
  /** What the member forwarded (its far interface, frames from its far MAC). */
  far: Capture;
}

/** Two captures on each member (one clock per member): its LAN interface (VRLS) and its far interface (forwarded). */
async function startMemberCaptures(v: VrlsLab, port: number): Promise<MemberCapture[]> {
  const out: MemberCapture[] = [];
  for (const m of v.members) {
    const remote = v.lab.host(m.host).remote;
    const lan = await Capture.start(remote, {
      interface: m.iface,
      filter: "ip proto 112",
      snapLength: 2048,
      path: `/tmp/tandem-vrls-${v.lab.prefix}-timer-${m.host}-lan.pcap`,
    });
    const far = await Capture.start(remote, {
      interface: m.farIface,
      filter: `udp dst port ${port} and ether src ${m.farMac}`,
      snapLength: 2048,
      path: `/tmp/tandem-vrls-${v.lab.prefix}-timer-${m.host}-far.pcap`,
    });
    out.push({ host: m.host, address: m.address, lan, far });
  }
  return out;
}

/**
 * Reallocations under load: every 400 ms one end system moves to the next member. With
 * `memberCaptures`, each member's LAN and far interfaces are captured throughout (the
 * timer-mode case judges each hand-off on the new owner's own wire).
 */
export async function handoffScenario(
  t: VrlsTarget,
  mode: "timer" | "exactly-once",
  port: number,
  options: { timerDelayMs?: number; memberCaptures?: boolean } = {},
) {
  const { v, vrls } = t;
  const { allocation } = await bringUp(
    t,
    mode,
    options.timerDelayMs !== undefined ? { timerDelayMs: options.timerDelayMs } : {},
  );
  const members = options.memberCaptures ? await startMemberCaptures(v, port) : [];
  const memberCaptureStats: CaptureStats[] = [];
  const hosts = v.endSystems.map((e) => e.host);
  let current = { ...allocation };
  let moves = 0;
  const events: ChartEvent[] = [];
  const run = await runStreams(v, hosts, {
    port,
    // 1000 pps per end system: a packet every ms, so a hand-off that lets two members
    // forward for even a millisecond shows up as duplicates on the wire.
    pps: 1000,
    durationMs: 9000,
    during: async () => {
      const until = Date.now() + 7500;
      for (let i = 0; Date.now() < until; i++) {
        const cond = v.endSystems[i % v.endSystems.length]!.address;
        const to = nextMember(v, current[cond]);
        events.push({
          atMs: Date.now(),
          label: `${v.endSystems[i % v.endSystems.length]!.host} to ${v.hostOf(to)}`,
          kind: "hand-off",
        });
        await vrls.reallocate({ [cond]: to });
        current = { ...current, [cond]: to };
        moves++;
        await sleep(HANDOFF_PACE_MS); // the pace of the reallocations (time is the subject)
      }
    },
  }).finally(async () => {
    for (const m of members) memberCaptureStats.push(await m.lan.stop(), await m.far.stop());
  });
  return { run, moves, mode: vrls.mode, events, members, memberCaptureStats };
}

/** Sequence-number mode: one TCP connection per end system while conditions move (seed Fig. 10C, type 5). */
export async function seqnumScenario(t: VrlsTarget, port: number) {
  const { v, vrls } = t;
  await bringUp(t, "sequence-number");
  const server = v.lab.host(v.server.host).remote;
  const sinkAgent = await TrafficAgent.launch(server);
  const clients: TrafficAgent[] = [];
  try {
    const sink = await sinkAgent.startTcpSink({ ports: [port] });
    // LAN side: a hub port sees every segment sent to the virtual MAC; far side: what was forwarded.
    const lan = await Capture.start(v.lab.host(v.hubWatch.host).remote, {
      interface: v.hubWatch.iface,
      filter: `tcp dst port ${port}`,
      snapLength: 200,
    });
    const far = await Capture.start(server, {
      interface: v.server.iface,
      filter: `tcp dst port ${port}`,
      snapLength: 200,
    });
    clients.push(
      ...(await Promise.all(v.endSystems.map((e) => TrafficAgent.launch(v.lab.host(e.host).remote)))),
    );
    const streams = await Promise.all(
      clients.map((c) =>
        c.startTcpStreams({
          dstIp: v.server.address,
          ports: [port],
          connections: 1,
          recordsPerSecond: 1000,
          recordBytes: 100,
        }),
      ),
    );
    await sleep(500); // connections established and streaming before the first move
    let current = await vrls.waitAllocated(v.endSystems.length);
    let moves = 0;
    const events: ChartEvent[] = [];
    // Twelve hand-offs (or as many as 15 s allow on a loaded machine).
    const until = Date.now() + 15_000;
    for (let i = 0; i < 12 && Date.now() < until; i++) {
      const cond = v.endSystems[i % v.endSystems.length]!.address;
      const to = nextMember(v, current[cond]);
      events.push({
        atMs: Date.now(),
        label: `${v.endSystems[i % v.endSystems.length]!.host} to ${v.hostOf(to)}`,
        kind: "hand-off",
      });
      await vrls.reallocate({ [cond]: to });
      current = { ...current, [cond]: to };
      moves++;
      await sleep(400); // the pace of the reallocations (time is the subject)
    }
    await Promise.all(streams.map((s) => s.stop()));
    await sleep(300); // the last segments reach the far side before the captures stop
    const sinkReport = await sink.stop();
    const captures = [await lan.stop(), await far.stop()];
    const tcp = await compareTcpWire(lan.reader(), far.reader(), port);
    // Segments per second towards the server by the member that forwarded them (far side).
    const { timeline } = await forwardingTimeline(far.path, v.server.address, {});
    return {
      tcp,
      moves,
      resets: sinkReport.totals.resets,
      lanPath: lan.path,
      farPath: far.path,
      captures,
      timeline,
      events,
    };
  } finally {
    await Promise.all([...clients, sinkAgent].map((c) => c.close().catch(() => undefined)));
  }
}

/** Per stream: did it resume (its last second reached the server)? */
function tailsOf(run: StreamsRun) {
  return run.results.map(({ host, result }) => {
    const lastLost = result.lostRanges.at(-1);
    return { host, lastLost, resumed: !lastLost || lastLost[1] < result.sent - 1000 };
  });
}

/** Waits until the master has allocated every end system away from `victim`. */
async function reallocatedAway(t: VrlsTarget, victim: string): Promise<Record<string, string>> {
  const away = t.v.member(victim).address;
  let last: Record<string, string> = {};
  return waitUntil(
    async () => {
      last = await t.vrls.waitAllocated(t.v.endSystems.length, 15_000);
      return Object.values(last).every((m) => m !== away) ? last : undefined;
    },
    {
      timeoutMs: 15_000,
      everyMs: 100,
      what: `every end system allocated away from ${victim}`,
      last: () => last,
    },
  );
}

/**
 * Streams from every end system at 1000 pps (a datagram per ms, so a gap is measured to
 * the millisecond); after 1.5 s `victim` fails (`how`), then the wait for a single master
 * and for every end system allocated away from the victim.
 */
async function failUnderLoad(
  t: VrlsTarget,
  victim: string,
  how: "crash" | "power-off",
  port: number,
  durationMs: number,
) {
  const { v, vrls } = t;
  let killedAt = 0;
  let takeoverAt = 0;
  let newMaster = "";
  let recovered: Record<string, string> = {};
  const run = await runStreams(
    v,
    v.endSystems.map((e) => e.host),
    {
      port,
      pps: 1000,
      durationMs,
      during: async () => {
        await sleep(1500); // steady forwarding before the failure (time is the subject)
        killedAt = Date.now();
        await vrls.failMember(victim, how);
        newMaster = await vrls.waitForMaster(15_000);
        takeoverAt = Date.now();
        recovered = await reallocatedAway(t, victim);
      },
    },
  );
  return { run, killedAt, takeoverAt, newMaster, recovered };
}

/** The master crashes under load; a backup takes over and re-serves everything. */
export async function masterFailureScenario(t: VrlsTarget, port: number) {
  const victim = t.v.master.host;
  const { allocation: before } = await bringUp(t);
  // crash: the agent dies, the member stays powered; what it forwarded must die with it.
  const { run, killedAt, takeoverAt, newMaster, recovered } = await failUnderLoad(
    t,
    victim,
    "crash",
    port,
    6000,
  );
  const gaps = run.results.map(({ host, result }) => {
    const lastLost = result.lostRanges.at(-1);
    const tailMs = lastLost && lastLost[1] >= result.sent - 1 ? lastLost[1] - lastLost[0] + 1 : 0; // 1 ms per datagram at 1000 pps
    return { host, ms: Math.max(result.longestInterruption?.ms ?? 0, tailMs), lost: result.lost };
  });
  const events: ChartEvent[] = [
    { atMs: killedAt, label: `${victim} crashed`, kind: "crash" },
    { atMs: takeoverAt, label: `${newMaster} master`, kind: "takeover" },
  ];
  return { victim, run, before, recovered, newMaster, tails: tailsOf(run), gaps, killedAt, events };
}

/** RFC 5798 Master_Down_Interval of the backup that takes over (3 x interval + skew). */
export function detectionMs(v: VrlsLab, backup: string): number {
  const interval = v.description.advertIntervalMs;
  return 3 * interval + ((256 - v.member(backup).priority) * interval) / 256;
}

/**
 * A backup dies as a whole router (power-off: its links down, then its process killed):
 * the master detects it (no response for the detection time) and re-serves its end
 * systems with one hand-off. Streams at 1000 pps per end system, so the gap is measured
 * to the millisecond; the hand-off is the master's on the hub (first allocation after the
 * kill -> its own confirmation with "done").
 */
export async function backupFailureScenario(t: VrlsTarget, port: number) {
  const { v, vrls } = t;
  const victim = v.backups[0]!;
  const master = v.master;
  const { allocation: before } = await bringUp(t);
  const { responseTimeoutMs: detection, key } = v.description;
  const victims = v.endSystems.filter((e) => before[e.address] === victim.address).map((e) => e.host);
  const lan = await Capture.start(v.lab.host(v.hubWatch.host).remote, {
    interface: v.hubWatch.iface,
    filter: "ip proto 112",
    snapLength: 2048,
    path: `/tmp/tandem-vrls-${v.lab.prefix}-backup-kill.pcap`,
  });
  try {
    const { run, killedAt, recovered } = await failUnderLoad(t, victim.host, "power-off", port, 5000);
    const lanStats = await lan.stop();
    const { messages } = await readLanMessages(lan.path);
    const first3 = vrlsMessages(messages, "allocation", master.address).find((m) => m.tsMs > killedAt);
    const done = first3 ? await firstOwnDone(lan.path, key, master.address, first3.tsMs) : undefined;
    const handoffMs = first3 && done ? Math.round(done - first3.tsMs) : null;
    const boundMs = handoffMs === null ? null : detection + handoffMs + KILL_JITTER_MS;
    const gaps = run.results
      .filter(({ host }) => victims.includes(host))
      .map(({ host, result }) => ({ host, ms: result.longestInterruption?.ms ?? 0 }));
    return {
      victim: victim.host,
      run,
      before,
      recovered,
      victims,
      detectionMs: detection,
      handoffMs,
      boundMs,
      gaps,
      tails: tailsOf(run),
      killedAt,
      key,
      lanPath: lan.path,
      lanStats,
      firstAllocationMs: first3 ? Math.round(first3.tsMs - killedAt) : null,
      events: [
        { atMs: killedAt, label: `${victim.host} powered off`, kind: "crash" },
        ...(first3
          ? [{ atMs: first3.tsMs, label: `${master.host} reallocates`, kind: "takeover" as const }]
          : []),
      ] as ChartEvent[],
    };
  } finally {
    await lan.stop();
    await vrls.restoreMember(victim.host);
  }
}
