/**
 * The VRLS reference router agent (one member of one virtual router), started on a lab
 * host over SSH. It wires the pure RouterCore (RFC 5798 + the seed's extension) to:
 *  - raw sockets in process (RawIo, the tandem-rawio addon): VRRP/VRLS (IP protocol 112, 224.0.0.18 and
 *    unicast to registered addresses), ICMP information replies (type 16), advertisements
 *    and gratuitous ARP sent from the virtual MAC;
 *  - the data plane (MemberDataplane: macvlan with the virtual MAC, nftables sets,
 *    NFQUEUE HoldQueue).
 * JSON-RPC methods: status, show, reallocate, waitIdle, handoffStats, handoffTrace, counters.
 */
import { readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { setPriority } from "node:os";
import { dirname } from "node:path";
import { monitorEventLoopDelay, PerformanceObserver, performance } from "node:perf_hooks";
import { Link, setThreadAffinity, setThreadScheduler } from "tandem-netlink";
import { deleteTable, inProcessNft, listCounters, replaceTable } from "../../dataplane/index.ts";
import { agentArgs, log, notify, serveAgent } from "../../remote/agent-runtime.ts";
import { localHost } from "../../remote/command.ts";
import { heldWithin, pause } from "../../remote/wait.ts";
import { intToIp, maskOf, parseCidr } from "../../topology/address.ts";
import { gratuitousArpFrame } from "../../wire/arp.ts";
import { ETHERTYPE, encodeEthernet } from "../../wire/ethernet.ts";
import { decodeIcmp, encodeIcmp, ICMP_TYPE } from "../../wire/icmp.ts";
import { decodeIpv4, encodeIpv4, IP_PROTOCOL } from "../../wire/ipv4.ts";
import { ReplayWindow } from "../../wire/replay.ts";
import { decodeVrls, encodeVrlsIpv4, VRLS_TYPE, type VrlsMessage as WireMessage } from "../../wire/vrls.ts";
import { encodeVrrp, VRRP_MULTICAST, virtualMac, vrrpChecksum } from "../../wire/vrrp.ts";
import { type VrrpRejectReason, validateVrrpPacket } from "../../wire/vrrp-validate.ts";
import type { RouterAgentArgs } from "./agent-args.ts";
import { MemberDataplane } from "./dataplane.ts";
import { FlowMonitor, type FlowReading } from "./flow-monitor.ts";
import { HandoffTrace } from "./handoff-trace.ts";
import type { Disposition } from "./member.ts";
import type { Destination, FlowMarker, VrlsMessage } from "./messages.ts";
import { OWNER_MAPS } from "./owner-table.ts";
import { RawIo } from "./rawio.ts";
import { RealtimeBoost } from "./realtime-boost.ts";
import { ReviewedCore, type ReviewedEvent } from "./reviewed-core.ts";
import { type CoreAction, RouterCore } from "./router-core.ts";
import {
  arpConflictTable,
  arpConflictTableName,
  LogLimiter,
  RxLimiter,
  rxGuardTable,
  rxGuardTableName,
} from "./rx-guard.ts";
import { fromWire, toWire } from "./wire-map.ts";

const args = agentArgs<RouterAgentArgs>();
/** Seeded faults (lib/roles/seeded-faults.ts): each `faults.has(...)` sits where its behaviour is. */
const faults: ReadonlySet<string> = new Set(args.core.faults ?? []);
const core = new RouterCore(
  faults.has("vrls-timer-delay-ignored") ? { ...args.core, timerDelayMs: 0 } : args.core,
);
// Issue 6: review messages (types 6-8) and flow monitor samples go through the reviewer.
const reviewed = new ReviewedCore(
  core,
  args.review
    ? {
        ...args.review,
        ...(faults.has("vrls-review-in-holddown") ? { holdDownMs: 0 } : {}),
        ...(faults.has("vrls-no-master-review") ? { masterTriggers: false } : {}),
      }
    : undefined,
  { bypassCoordinator: faults.has("vrls-sub-review-bypassed") },
);
const self = args.core.self;
const vrid = args.core.vrid;
const key = Buffer.from(args.key, "utf8");
const vmac = virtualMac(vrid);
const replay = new ReplayWindow();
const transferReplay = new ReplayWindow();
const incarnation = Math.floor(Date.now() / 1000) >>> 0;
let sequence = 0;
const rx: Record<string, number> = {};
const count = (k: string) => {
  rx[k] = (rx[k] ?? 0) + 1;
};
const now = () => performance.now();
// Issue 15: genuine control messages come from the other members and the coordinator. The
// kernel guard (rx-guard.ts) sheds malformed and excess protocol-112 packets before the raw
// socket; the limiter bounds what the agent authenticates per sender and in all.
const peers = [
  ...args.core.members.map((m) => m.id).filter((id) => id !== self),
  ...(args.core.coordinator ? [args.core.coordinator] : []),
];
const rxGuard = { family: "ip" as const, table: rxGuardTableName(vrid) };
const limiter = new RxLimiter({ peers }, now());
const dropLog = new LogLimiter(1000);
let guardCounters: Record<string, number> | null = null;
/** SCHED_FIFO while a hand-off is in flight here (issue 11; args.realtime). */
const boost = new RealtimeBoost({
  setScheduler: setThreadScheduler,
  onRefused: (m) => log(`cannot use SCHED_FIFO, staying at nice -10: ${m}`),
});
/** True while this agent takes part in a hand-off: as master with an allocation in flight, or as a member. */
function inHandoff(): boolean {
  if (args.realtime === "always") return true;
  if (args.realtime !== "handoff") return false;
  return (core.role === "master" && core.master.busy) || !core.member.complete || pending.length > 0;
}
/** Reads the kernel guard's counters (in process: one netlink round trip). */
async function refreshGuard(): Promise<void> {
  try {
    const m = await listCounters(nft, rxGuard);
    guardCounters = Object.fromEntries([...m].map(([k, c]) => [k, c.packets]));
  } catch (e) {
    log(`rx guard counters: ${(e as Error).message}`);
  }
}
// Issue 15: gratuitous ARP claiming the VIP from another MAC. The kernel counts such ARP
// packets (table arp vrls<VRID>_arp, rx-guard.ts); the agent reads the counter every
// ARP_POLL_MS and, as master, counts the conflicts (rx.arpConflict) and re-asserts the VIP
// with its own gratuitous ARP (tx.garpReassert).
const arpGuard = { family: "arp" as const, table: arpConflictTableName(vrid) };
const ARP_POLL_MS = 50;
/**
 * A second gratuitous ARP this long after the first: Linux ignores an ARP that would
 * change a neighbour entry updated less than locktime (1 s by default) ago, so the first
 * re-assertion, 50 ms after the spoof, does not move the end systems back; this one does.
 */
const ARP_REASSERT_REPEAT_MS = 1100;
let arpRepeat: NodeJS.Timeout | undefined;
function reassertVip(): void {
  io.sendFrame(gratuitousArpFrame(vmac, args.virtualAddress));
  count("tx.garp");
  count("tx.garpReassert");
}
let arpConflictsSeen = 0;
const arpLog = new LogLimiter(1000);
async function pollArpConflicts(): Promise<void> {
  let packets: number;
  try {
    packets = (await listCounters(nft, arpGuard)).get("arp_conflict")?.packets ?? 0;
  } catch (e) {
    arpLog.line(now(), `arp conflict counter: ${(e as Error).message}`, log);
    return;
  }
  const fresh = packets - arpConflictsSeen;
  arpConflictsSeen = packets;
  if (fresh <= 0 || stopped) return;
  rx["rx.arpConflict"] = (rx["rx.arpConflict"] ?? 0) + fresh;
  if (core.role !== "master" || faults.has("vrrp-no-garp")) return;
  reassertVip();
  if (arpRepeat) clearTimeout(arpRepeat);
  arpRepeat = setTimeout(() => {
    arpRepeat = undefined;
    if (!stopped && core.role === "master") reassertVip();
  }, ARP_REASSERT_REPEAT_MS);
  arpRepeat.unref();
  arpLog.line(
    now(),
    `address conflict: ${fresh} ARP packet(s) for ${args.virtualAddress} from another MAC; re-asserted`,
    log,
  );
}
/**
 * How much longer an old owner observes once told to stop when the new owner named no held
 * packet (see stopAndSendMarkers).
 */
const STOP_SETTLE_MS = 2;
/**
 * How long an old owner observes at most while waiting to take in one of the packets the new
 * owner holds (type 4 extension). Past it the stop goes ahead and is counted
 * (`handoff.heldNotObserved`): the lag it covers is milliseconds.
 */
const HELD_OBSERVE_WAIT_MS = 20;
/** Held packets named in one confirmation at most (type 4 extension; 96 x 12 bytes). */
const HELD_SAMPLE_PER_MESSAGE = 96;
/** How long a new owner waits, at most, for a packet to name in its "holding" confirmation. */
const HELD_NAME_WAIT_MS = 5;
/** How long a new owner waits for the old owner's last forwarded packet to be held (then releases the whole flow). */
const MARKER_WAIT_MS = 3;

/**
 * RFC 9568 Accept_Mode in force: the address owner (priority 255) always accepts; otherwise
 * the configured setting (absent: true). The seeded faults invert it where it is false / true.
 */
function acceptModeInForce(): boolean {
  if (args.core.priority === 255) return true;
  if (args.acceptMode === false) return faults.has("vrrp-accept-mode-ignored");
  return !faults.has("vrrp-accept-mode-forced");
}

// One persistent libnftables context for the agent's life: its owner table dies with it.
const nft = inProcessNft();
const dp = new MemberDataplane({
  host: localHost({ timeoutMs: 30_000 }),
  nft,
  fateSharing: args.fateSharing !== false,
  acceptMode: acceptModeInForce(),
  vrid,
  lanInterface: args.interface,
  virtualAddress: args.virtualAddress,
  ...(args.core.conditions.kind === "bucket"
    ? {
        buckets: {
          over: args.core.conditions.over,
          count: args.core.conditions.count,
          seed: args.core.conditions.seed,
        },
      }
    : {}),
  onUnknownSource: (address) => {
    if (!faults.has("vrls-no-passive-learning"))
      handle({ type: "learned", now: now(), address, by: "passive" });
  },
  log: (l) => log(l),
});

let io: RawIo;
let stopped = false;
let timer: NodeJS.Timeout | undefined;

// ---- actions: carried out strictly in order (a confirmation leaves only after the data
// plane change before it is in place).
const pending: CoreAction[] = [];
let draining = false;

function handle(event: ReviewedEvent): void {
  if (stopped && event.type !== "shutdown") return;
  for (const a of reviewed.handle(event)) {
    // Timer mode's stop must not wait behind earlier actions (its delay budget is small).
    if (a.type === "role") notify("role", { role: a.role, at: Date.now(), self });
    // Applies queued before the stop must leave these conditions observing (dataplane.expectStop).
    if (a.type === "stopAndSendMarkers" && !faults.has("vrls-keeps-forwarding")) dp.expectStop(a.conditions);
    if (a.type === "stopForwarding") {
      if (!faults.has("vrls-keeps-forwarding"))
        dp.stopNow(a.conditions).catch((e) => log(`stop failed: ${(e as Error).message}`));
      count("handoff.timerStops");
    } else if (independentOfDataplane(a)) {
      // VRRP advertisements, ARP, responses and allocations never wait behind data plane
      // work: an nft process can take hundreds of ms on a loaded host, and a master whose
      // advertisements queue behind it loses its place (measured: flapping masters).
      void perform(a).catch((e) => log(`action ${a.type} failed: ${(e as Error).message}`));
    } else pending.push(a);
  }
  void drain();
  schedule();
  boost.update(inHandoff());
}

/** Actions whose effect does not depend on the data plane state before them. */
function independentOfDataplane(a: CoreAction): boolean {
  if (a.type === "sendAdvertisement" || a.type === "sendGratuitousArp" || a.type === "log") return true;
  // The role's ARP/VIP settings do not gate forwarding; its nft change is ordered by the
  // data plane's own transaction chain.
  if (a.type === "role") return true;
  // Confirmations and markers report data plane state: they stay in order behind it.
  return a.type === "send" && a.message.type !== "confirmation" && a.message.type !== "markers";
}

async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  try {
    while (pending.length > 0) {
      const a = pending.shift() as CoreAction;
      try {
        await perform(a);
      } catch (e) {
        log(`action ${a.type} failed: ${(e as Error).message}`);
        count(`actionFailed.${a.type}`);
      }
    }
  } finally {
    draining = false;
    boost.update(inHandoff());
  }
}

/** Seeded faults that keep a VRLS message type from leaving. */
const WITHHELD_BY_FAULT: Partial<Record<VrlsMessage["type"], string>> = {
  response: "vrls-no-responses",
  confirmation: "vrls-no-confirmation",
  reviewRequest: "vrls-no-review-request",
  rateResponse: "vrls-no-rate-response",
};

/**
 * How late this event loop runs (timers 1 ms apart) and how busy it is: a message that
 * arrives while the loop is busy waits, and a hand-off is a chain of such waits. Read with
 * the `loop` RPC (`tandem bench handoff` prints it per member).
 */
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
let loopUtilizationFrom = performance.eventLoopUtilization();
/** Garbage collection pauses (the loop cannot run during one). */
let gc = { count: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count++;
    gc.totalMs += e.duration;
    gc.maxMs = Math.max(gc.maxMs, e.duration);
  }
}).observe({ entryTypes: ["gc"] });
function loopStats(reset: boolean) {
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const r = {
    delayP50Ms: ms(loopDelay.percentile(50)),
    delayP99Ms: ms(loopDelay.percentile(99)),
    delayMaxMs: ms(loopDelay.max),
    utilization: Math.round(performance.eventLoopUtilization(loopUtilizationFrom).utilization * 1000) / 1000,
    gcCount: gc.count,
    gcTotalMs: Math.round(gc.totalMs),
    gcMaxMs: Math.round(gc.maxMs * 100) / 100,
  };
  if (reset) {
    gc = { count: 0, totalMs: 0, maxMs: 0 };
    loopDelay.reset();
    loopUtilizationFrom = performance.eventLoopUtilization();
  }
  return r;
}

/** The hand-off's steps (allocation, confirmations, markers, data plane), for `handoffTrace`. */
const trace = new HandoffTrace();
const HANDOFF_MESSAGES = new Set(["allocation", "confirmation", "markers"]);

/**
 * A new owner's confirmation names, per condition it holds in the markers' modes, packets it
 * holds that arrived after the old owner's "observing" (type 4 extension, docs/vrls.md): the
 * old owner stops only once it has taken one of them in itself. When none has arrived yet
 * it waits for one, at most HELD_NAME_WAIT_MS (woken by the queue, not polling).
 */
async function withHeldSample(message: VrlsMessage): Promise<VrlsMessage> {
  if (message.type !== "confirmation" || message.holding.length === 0) return message;
  const mode = core.member.snapshot().mode;
  if (mode !== "exactly-once" && mode !== "sequence-number") return message;
  // At most HELD_SAMPLE_PER_MESSAGE identities (12 bytes each): the confirmation stays one frame.
  const limit = Math.max(1, Math.min(8, Math.floor(HELD_SAMPLE_PER_MESSAGE / message.holding.length)));
  const holding = message.holding;
  await dp.whenQueued(() => holding.every((c) => dp.heldSample(c, 1).length > 0), HELD_NAME_WAIT_MS);
  const held: Record<string, string[]> = {};
  for (const c of holding) {
    const ids = dp.heldSample(c, limit);
    if (ids.length > 0) held[c] = ids;
  }
  return Object.keys(held).length > 0 ? { ...message, held } : message;
}

function sendMessage(to: Destination, message: VrlsMessage): void {
  const withheld = WITHHELD_BY_FAULT[message.type];
  if (withheld && faults.has(withheld)) return;
  if (HANDOFF_MESSAGES.has(message.type) && "version" in message)
    trace.record(
      `${self} tx.${message.type}${message.type === "confirmation" ? confirmationDetail(message) : ""}`,
      message,
    );
  const dst = to === "all" ? VRRP_MULTICAST : to.member;
  for (const part of toWire(message)) {
    const wire = {
      vrid,
      priority: args.core.priority,
      maxAdverIntCs: args.core.advertIntervalCs,
      addresses: [args.virtualAddress],
      sender: self,
      senderIncarnation: incarnation,
      sequence: ++sequence,
      masterEpoch: part.masterEpoch,
      inReplyTo: 0,
      ...part.body,
    } as WireMessage;
    io.sendIp(encodeVrlsIpv4(wire, { key, src: self, dst }));
    count(`tx.type${part.body.type}`);
  }
}

/** "(observing X; holding Y; done)" for a confirmation's trace step. */
function confirmationDetail(m: Extract<VrlsMessage, { type: "confirmation" }>): string {
  const parts = [];
  if (m.observing.length > 0) parts.push("observing");
  if (m.holding.length > 0) parts.push("holding");
  if (m.done) parts.push("done");
  return ` (${parts.join(",")})`;
}

function advertisementFrame(priority: number, advertIntervalCs: number): Uint8Array {
  const vrrp = encodeVrrp(
    {
      version: 3,
      type: 1,
      vrid,
      priority:
        faults.has("vrrp-adv-wrong-priority") && priority > 0 ? Math.min(255, priority + 1) : priority,
      maxAdverIntCs: faults.has("vrrp-adv-wrong-interval") ? advertIntervalCs * 2 : advertIntervalCs,
      addresses: [args.virtualAddress],
      extension: new Uint8Array(0),
    },
    { src: self, dst: VRRP_MULTICAST },
  );
  if (faults.has("vrrp-adv-version-2")) {
    vrrp[0] = 0x21; // version 2, type 1; the checksum is recomputed, only the version is wrong
    const sum = vrrpChecksum(vrrp, 3, { src: self, dst: VRRP_MULTICAST });
    vrrp[6] = sum >> 8;
    vrrp[7] = sum & 0xff;
  }
  if (faults.has("vrrp-adv-bad-checksum")) vrrp[7] = (vrrp[7] ?? 0) ^ 0x5a;
  const ip = encodeIpv4({
    src: self,
    dst: VRRP_MULTICAST,
    protocol: IP_PROTOCOL.vrrp,
    ttl: faults.has("vrrp-adv-ttl-254") || faults.has("vrls-adv-ttl-254") ? 254 : 255,
    tos: 0xc0,
    payload: vrrp,
  });
  // RFC 5798 7.3: the advertisement's source MAC is the virtual router MAC.
  const src = faults.has("vrrp-adv-physical-mac") ? physicalMac : vmac;
  return encodeEthernet({ dst: "01:00:5e:00:00:12", src, etherType: ETHERTYPE.ipv4, payload: ip });
}

/** The LAN interface's own MAC (only the seeded fault vrrp-adv-physical-mac sends from it). */
const physicalMac = faults.has("vrrp-adv-physical-mac")
  ? readFileSync(`/sys/class/net/${args.interface}/address`, "utf8").trim()
  : vmac;

/** Seeded faults that accept an advertisement the RFC 5798 7.1 checks discard. */
const ACCEPTED_BY_FAULT: Partial<Record<VrrpRejectReason, string>> = {
  "ttl-not-255": "vrrp-rx-accept-ttl",
  "bad-version": "vrrp-rx-accept-version",
  "bad-length": "vrrp-rx-accept-short",
  "bad-checksum": "vrrp-rx-accept-bad-checksum",
  "unknown-vrid": "vrrp-rx-accept-other-vrid",
};

/** The kernel guard's check (rx-guard.ts) that each receive fault must get past. */
const RX_FAULT_OF_GUARD = {
  bad_ttl: "vrrp-rx-accept-ttl",
  bad_version: "vrrp-rx-accept-version",
  other_vrid: "vrrp-rx-accept-other-vrid",
} as const;

/**
 * A type 1 advertisement read field by field without the receive checks, the way a router
 * with one of the faults above would take it (another version's interval: our own).
 */
function acceptAnyway(packet: Buffer, reason: VrrpRejectReason): void {
  const fault = ACCEPTED_BY_FAULT[reason];
  if (!fault || !faults.has(fault)) return;
  const ip = decodeIpv4(packet);
  if (!ip.ok || ip.value.src === self) return;
  const m = ip.value.payload;
  if (m.length < 6 || ((m[0] ?? 0) & 0x0f) !== 1) return;
  count(`rx.acceptedByFault.${reason}`);
  handle({
    type: "advertisement",
    now: now(),
    from: ip.value.src,
    priority: m[2] ?? 0,
    maxAdverIntCs:
      (m[0] ?? 0) >> 4 === 3 ? (((m[4] ?? 0) & 0x0f) << 8) | (m[5] ?? 0) : args.core.advertIntervalCs,
  });
}

function broadcastOf(cidr: string): string {
  const c = parseCidr(cidr);
  return intToIp((c.network | (~maskOf(c.prefix) >>> 0)) >>> 0);
}

/** Conditions this member forwarded at some time (for the seeded fault vrls-keeps-forwarding). */
const everForwarded = new Set<string>();

/**
 * Seeded faults on the data plane: vrls-no-hold (a new owner forwards at once instead of
 * holding), vrls-keeps-forwarding (an old owner keeps forwarding what it handed off).
 */
function faultyDispositions(d: ReadonlyMap<string, Disposition>): ReadonlyMap<string, Disposition> {
  if (!faults.has("vrls-no-hold") && !faults.has("vrls-keeps-forwarding")) return d;
  const out = new Map(d);
  for (const [c, x] of d) {
    if (x === "forward" || x === "observe") everForwarded.add(c);
    if (x === "hold" && faults.has("vrls-no-hold")) out.set(c, "forward");
    if (x === "drop" && faults.has("vrls-keeps-forwarding") && everForwarded.has(c)) out.set(c, "forward");
  }
  return out;
}

/** Seeded faults on the markers: none at all, another flow's, or sequence numbers one segment early. */
function faultyMarkers(markers: FlowMarker[], mode: string): FlowMarker[] {
  if (faults.has("vrls-no-markers")) return [];
  if (faults.has("vrls-wrong-flow-markers") && markers.length > 0)
    return markers.map((m, i) => ({
      ...m,
      flow:
        markers.length > 1
          ? (markers[(i + 1) % markers.length]?.flow ?? m.flow)
          : "udp 192.0.2.1:9>192.0.2.2:9",
    }));
  if (faults.has("vrls-seq-off-by-one") && mode === "sequence-number")
    return markers.map((m) => (m.nextSeq === undefined ? m : { ...m, nextSeq: (m.nextSeq - 1448) >>> 0 }));
  return markers;
}

let infoSeq = 0;
async function perform(a: CoreAction): Promise<void> {
  switch (a.type) {
    case "sendAdvertisement":
      io.sendFrame(advertisementFrame(a.priority, a.advertIntervalCs));
      count("tx.advertisement");
      return;
    case "sendGratuitousArp":
      if (faults.has("vrrp-no-garp")) return;
      for (const ip of a.addresses) io.sendFrame(gratuitousArpFrame(vmac, ip));
      count("tx.garp");
      return;
    case "role":
      await dp.setRole(a.role, {
        arp: faults.has(a.role === "master" ? "vrrp-no-arp-reply" : "vrrp-arp-while-backup"),
        forward: faults.has(a.role === "master" ? "vrrp-no-forward" : "vrrp-forward-while-backup"),
      });
      log(`role ${a.role}`);
      return;
    case "send":
      sendMessage(a.to, await withHeldSample(a.message));
      return;
    case "dataplane":
      if (args.trace)
        log(`apply at ${Date.now()} ${JSON.stringify(Object.fromEntries(core.member.dispositions))}`);
      // The newest state, not this action's copy: a later stop may already have changed it.
      await dp.apply(faultyDispositions(core.member.dispositions));
      trace.record(`${self} dp.applied`, core.member.currentVersion);
      return;
    case "stopAndSendMarkers": {
      // Observe a little longer before stopping. A packet the new owner's kernel dropped just
      // before its (pre)hold began may reach this host's queue only later; it must be forwarded
      // here, not blocked (seen: 1 lost in 200 hand-offs with no wait, 4 in 200 with real-time
      // agents and a fixed 2 ms settle). Observing longer is always safe: it only moves the
      // marker later. With the new owner's held packets named (type 4 extension) the wait ends
      // on a fact; without them (old peers, nothing held yet) a fixed settle is what is left.
      if (a.held && Object.keys(a.held).length > 0) {
        const held = a.held;
        // Type 4 extension: observe until one of the new owner's held packets has come through
        // here too; every packet it dropped before its hold came earlier, so it is forwarded.
        const seen = await dp.whenQueued(() => dp.observedOneHeld(held), HELD_OBSERVE_WAIT_MS);
        count(seen ? "handoff.heldObserved" : "handoff.heldNotObserved");
        if (!seen)
          log(
            `stop ${a.conditions} v${a.version}: none of the new owner's held packets seen here within ${HELD_OBSERVE_WAIT_MS} ms (${dp.describeObserved(held)})`,
          );
      } else {
        await pause(STOP_SETTLE_MS);
        count("handoff.settled");
      }
      trace.record(`${self} dp.stop`, a);
      const markers = faultyMarkers(
        faults.has("vrls-keeps-forwarding") ? [] : dp.stop(a.to, a.epoch, a.version, a.conditions, a.mode),
        a.mode,
      );
      if (args.trace)
        log(`stop ${a.conditions} at ${Date.now()} v${a.version} -> ${a.to}: ${markers.length} markers`);
      sendMessage(
        { member: a.to },
        { type: "markers", epoch: a.epoch, version: a.version, conditions: a.conditions, markers },
      );
      return;
    }
    case "stopForwarding":
      if (!faults.has("vrls-keeps-forwarding")) await dp.stopNow(a.conditions);
      return;
    case "resolveHeld": {
      // Every frame the old owner forwarded reached this member from the same hub before
      // the markers did; wait (bounded) until the last one is held, then resolve.
      // Woken by the queue's arrivals, not by polling (HoldQueue.whenArrived), for at most MARKER_WAIT_MS.
      const held = await dp.whenQueued(() => dp.markersHeld(a.conditions, a.mode, a.markers), MARKER_WAIT_MS);
      if (!held) count("handoff.markerWaitExpired");
      const r = dp.resolve(a.conditions, a.mode, a.markers);
      trace.record(`${self} dp.resolved${held ? "" : " (marker not held)"}`, core.member.currentVersion);
      if (args.trace)
        log(`resolve ${a.conditions} at ${Date.now()}: released ${r.released} dropped ${r.dropped}`);
      count("handoff.resolved");
      rx.releasedPackets = (rx.releasedPackets ?? 0) + r.released;
      rx.droppedHeldPackets = (rx.droppedHeldPackets ?? 0) + r.dropped;
      return;
    }
    case "releaseHeld":
      dp.releaseAll(a.conditions);
      return;
    case "sendInfoRequest":
      if (faults.has("vrls-no-discovery")) return;
      // Seed Figs. 8A/8B: ICMP information request (type 15) broadcast on each subnet. A remote
      // subnet's directed broadcast passes its router only if that router forwards it.
      for (const s of a.subnets) {
        const icmp = encodeIcmp({
          type: ICMP_TYPE.informationRequest,
          code: 0,
          identifier: vrid,
          sequence: ++infoSeq & 0xffff,
          data: new Uint8Array(0),
        });
        io.sendIp(
          encodeIpv4({
            src: self,
            dst: broadcastOf(s.cidr),
            protocol: IP_PROTOCOL.icmp,
            ttl: 64,
            payload: icmp,
          }),
        );
      }
      count("tx.infoRequest");
      return;
    case "log":
      log(a.message);
      return;
  }
}

function schedule(): void {
  if (stopped) return;
  if (timer) clearTimeout(timer);
  const t = now();
  const wake = core.nextWake(t);
  timer = setTimeout(() => handle({ type: "tick", now: now() }), Math.max(0, wake - t));
}

// ---- receive path: every rejection is counted by reason, nothing throws.
function onVrrp(packet: Buffer): void {
  const v = validateVrrpPacket(packet, {
    version: 3,
    vrids: [vrid],
    acceptedTypes: Object.values(VRLS_TYPE),
  });
  if (!v.ok) {
    count(`rx.rejected.${v.reason}`);
    acceptAnyway(packet, v.reason);
    return;
  }
  // Our own multicast does not loop back (IP_MULTICAST_LOOP 0): this is a spoofed source.
  if (v.ip.src === self) {
    count("rx.rejected.own-address");
    return;
  }
  const limit = limiter.check(v.ip.src, now());
  if (limit !== "accept") {
    count(`rx.limited.${limit}`);
    return;
  }
  if (v.vrrp.type === VRLS_TYPE.advertisement && v.vrrp.extension.length === 0 && v.vrrp.version === 3) {
    count("rx.advertisement");
    handle({
      type: "advertisement",
      now: now(),
      from: v.ip.src,
      priority: v.vrrp.priority,
      maxAdverIntCs: v.vrrp.maxAdverIntCs,
    });
    return;
  }
  const d = decodeVrls(v.ip.payload, { key, src: v.ip.src, dst: v.ip.dst });
  if (!d.ok) {
    count(/HMAC/.test(d.error.reason) ? "rx.rejected.unauthenticated" : "rx.rejected.malformed");
    dropLog.line(
      now(),
      `VRLS message from ${v.ip.src} dropped: ${d.error.reason} (offset ${d.error.offset})`,
      log,
    );
    return;
  }
  const w = d.value;
  // Seed Fig. 15 P25: the substitution server transfers a backup's confirmation as it was
  // sent (the backup's sender and HMAC); nothing else may come from an address not its own.
  const transferred =
    w.sender !== v.ip.src &&
    v.ip.src === args.core.coordinator &&
    w.type === VRLS_TYPE.allocationConfirmation &&
    w.sender !== self &&
    args.core.members.some((m) => m.id === w.sender);
  if (w.sender !== v.ip.src && !transferred) {
    count("rx.rejected.sender-mismatch");
    return;
  }
  // Transfers keep their own window: they may arrive after newer messages the sender sent
  // straight to us (its responses), and are in order among themselves.
  const verdict = (transferred ? transferReplay : replay).check(w.sender, w.senderIncarnation, w.sequence);
  if (verdict !== "accept") {
    count(`rx.rejected.${verdict}`);
    return;
  }
  const m = fromWire(w, args.bucketSeed, { ...core.member.currentVersion, entries: core.member.allocation });
  if (!m) {
    count(`rx.ignored.type${w.type}`);
    return;
  }
  count(transferred ? `rx.transferred.${m.type}` : `rx.${m.type}`);
  if (HANDOFF_MESSAGES.has(m.type) && "version" in m)
    trace.record(
      `${self} rx.${m.type} from ${w.sender}${m.type === "confirmation" ? confirmationDetail(m) : ""}`,
      m,
    );
  handle({
    type: "message",
    now: now(),
    from: w.sender,
    message: m,
    ...(transferred ? { via: v.ip.src } : {}),
  });
}

function onIcmp(packet: Buffer): void {
  const ip = decodeIpv4(packet);
  if (!ip.ok || ip.value.protocol !== IP_PROTOCOL.icmp) return;
  const icmp = decodeIcmp(ip.value.payload);
  if (!icmp.ok || !icmp.value.checksumValid) {
    count("rx.icmp.malformed");
    return;
  }
  if (icmp.value.type === ICMP_TYPE.informationReply) {
    count("rx.infoReply");
    handle({ type: "learned", now: now(), address: ip.value.src, by: "icmp-info" });
  }
}

async function shutdownRouter(): Promise<void> {
  if (stopped) return;
  handle({ type: "shutdown", now: now() });
  await drain();
  stopped = true;
  boost.drop();
  if (timer) clearTimeout(timer);
  await dp.teardown().catch((e) => log(`teardown: ${(e as Error).message}`));
  await deleteTable(nft, rxGuard).catch(() => undefined);
  await deleteTable(nft, arpGuard).catch(() => undefined);
  io?.close();
}

// ---- flow monitor (issue 6): per-condition rate and overflows, fed to the reviewer.
let lastReading: FlowReading | null = null;
function startFlowMonitor(): void {
  const m = args.monitor;
  if (!m) return;
  const cs = args.core.conditions;
  // The qdisc counters over rtnetlink in process (a spawned `tc` stalled the loop).
  const link = new Link();
  const indexOf = (name: string): number[] => {
    try {
      return [link.info(name).index];
    } catch {
      return [];
    }
  };
  const monitor = new FlowMonitor({
    rootQdiscs: () => link.rootQdiscs(),
    nft,
    table: dp.table,
    conditionOf: (map, element) =>
      map === OWNER_MAPS.bucket
        ? cs.kind === "bucket"
          ? `${cs.over}#${element}/${cs.count}@${cs.seed}`
          : undefined
        : element,
    ignoreIndexes: () => [...indexOf(args.interface), ...indexOf(dp.macvlan)],
    windowMs: m.windowMs,
    timeUnitMs: m.timeUnitMs,
    queueOverflows: () => {
      const q = dp.queueStats() as { totals?: { overflowDropped?: number } } | undefined;
      return q?.totals?.overflowDropped ?? 0;
    },
  });
  let busy = false;
  const t = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    monitor
      .sample(now())
      .then((r) => {
        if (!r) return;
        lastReading = r;
        // Decided now, not when the counter read began (a `tc` spawn can take hundreds of
        // ms here): a hold-down started at r.at would end early (VRLS-REVIEW-004).
        handle({
          type: "flowSample",
          now: now(),
          sampledAt: r.at,
          rates: r.rates,
          overflowsPerUnit: r.overflowsPerUnit,
        });
      })
      .catch((e) => log(`flow monitor: ${(e as Error).message}`))
      .finally(() => {
        busy = false;
      });
  }, m.sampleMs);
  t.unref();
}

/** The CPUs the event loop thread may run on, as the kernel says ("1", "0-1"). */
function loopCpus(): string {
  const line = readFileSync("/proc/thread-self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith("Cpus_allowed_list"));
  return (line?.split(":")[1] ?? "").trim();
}

function status() {
  const t = now();
  return {
    ...core.snapshot(t),
    rx,
    dataplane: { role: dp.currentRole, ...dp.counters },
    review: reviewed.snapshot(t),
    monitor: lastReading
      ? { qdiscDrops: lastReading.qdiscDrops, queueOverflows: lastReading.queueOverflows }
      : null,
    pendingActions: pending.length,
    rssBytes: process.memoryUsage().rss,
    realtime: { mode: args.realtime ?? "off", active: boost.active, boosts: boost.boosts, cpus: loopCpus() },
    // Issue 15: the kernel guard's counters (packets shed per reason, read once a second)
    // and the user-space limits (messages refused per limit; rx.limited.* counts them too).
    rxGuard: guardCounters,
    rxLimits: {
      ...limiter.counters,
      trackedSenders: limiter.trackedSenders,
      logsSuppressed: dropLog.suppressed,
    },
    // Raw sockets: received, kernel receive-buffer drops (rxDrops), failed sends.
    rawio: io ? io.stats() : null,
  };
}

serveAgent({
  name: "vrls-router",
  methods: {
    status: async () => {
      // The sockets' counters read before the guard's too: a reader comparing what the guard
      // passed with what the sockets delivered needs, for its "before" point, socket counts
      // that include nothing the guard read after them has not counted (see lib/attack/vrls-attack.ts).
      const rawioBeforeGuardRead = io ? io.stats() : null;
      if (!stopped) await refreshGuard();
      return { ...status(), rawioBeforeGuardRead };
    },
    show: async () => ({
      ...status(),
      sets: await dp.setCounters(),
      unknown: await dp.unknownCounters(),
      queue: dp.queueStats(),
    }),
    /** Master only: move conditions ({condition: member address}) or rebalance (no moves). */
    reallocate: (p: { moves?: Record<string, string> } | undefined) => {
      if (core.role !== "master") return { accepted: false, role: core.role };
      const explicit = p?.moves ? new Map(Object.entries(p.moves)) : undefined;
      handle({ type: "reallocate", now: now(), explicit });
      return { accepted: true };
    },
    /** Resolves when this master has no allocation in flight (or times out). */
    waitIdle: async (p: { timeoutMs?: number } | undefined) => {
      const idle = await heldWithin(
        () => core.role === "master" && !core.master.busy && pending.length === 0,
        {
          timeoutMs: p?.timeoutMs ?? 5000,
          what: "no allocation in flight",
          everyMs: 2,
        },
      );
      if (!idle) return { idle: false, completed: core.master.completedAllocations };
      return {
        idle: true,
        completed: core.master.completedAllocations,
        lastHandoffMs: core.master.lastHandoffMs,
      };
    },
    handoffTrace: () => ({ steps: trace.list() }),
    /** Event loop delay and utilization since the previous call with { reset: true }. */
    loop: (o?: { reset?: boolean }) => loopStats(o?.reset === true),
    handoffStats: () => ({
      durationsMs: core.master.handoffDurationsMs,
      completed: core.master.completedAllocations,
    }),
    counters: () => rx,
    stopRouter: async () => {
      await shutdownRouter();
      return { stopped: true };
    },
  },
  onShutdown: shutdownRouter,
});

try {
  // A router's control plane runs ahead of bulk work (advertisements must not starve:
  // on this shared machine a starved master let a backup take over during a benchmark).
  try {
    setPriority(-10);
  } catch (e) {
    log(`cannot raise priority: ${(e as Error).message}`);
  }
  if (args.cpus) {
    // Off the CPU that processes the hub's frames (virtual lab): real-time here cannot starve it.
    try {
      setThreadAffinity(args.cpus);
    } catch (e) {
      log(`cannot keep to CPUs ${args.cpus.join(",")}: ${(e as Error).message}`);
    }
  }
  // And its event loop thread is woken ahead of ordinary work while a hand-off is in
  // flight (SCHED_FIFO, lib/roles/vrls/realtime-boost.ts), or always if so configured.
  if (args.realtime === "always") boost.update(true);
  await dp.setup();
  // The seeded receive faults need their packets to reach the agent (acceptAnyway).
  const letThrough = (["bad_ttl", "bad_version", "other_vrid"] as const).filter((c) =>
    faults.has(RX_FAULT_OF_GUARD[c]),
  );
  await replaceTable(nft, rxGuard, rxGuardTable({ vrid, peers, lanInterface: args.interface, letThrough }));
  await replaceTable(
    nft,
    arpGuard,
    arpConflictTable({ lanInterface: args.interface, addresses: [args.virtualAddress], vmac }),
  );
  let arpBusy = false;
  const readArp = setInterval(() => {
    if (stopped || arpBusy) return;
    arpBusy = true;
    void pollArpConflicts().finally(() => {
      arpBusy = false;
    });
  }, ARP_POLL_MS);
  readArp.unref();
  const readGuard = setInterval(() => {
    if (!stopped) void refreshGuard();
  }, 1000);
  readGuard.unref();
  io = await RawIo.open({
    interface: args.interface,
    listen: ["vrrp", "icmp"],
    onVrrp,
    onIcmp,
    onLog: (l) => log(l),
  });
  log(
    `vrls router ${self} (VRID ${vrid}, priority ${args.core.priority}, mode ${args.core.mode}) on ${args.interface}`,
  );
  handle({ type: "startup", now: now() });
  startFlowMonitor();
  if (args.statusFile) {
    const file = args.statusFile;
    // The directory is on this host (a physical host has no copy of the controller's state dir).
    await mkdir(dirname(file), { recursive: true }).catch(() => undefined);
    const writer = setInterval(() => {
      writeFile(`${file}.tmp`, JSON.stringify({ at: Date.now(), ...status() }))
        .then(() => rename(`${file}.tmp`, file))
        .catch(() => undefined);
    }, 500);
    writer.unref();
  }
} catch (e) {
  log(`startup failed: ${(e as Error).stack ?? e}`);
  await dp.teardown().catch(() => undefined);
  process.exit(2);
}
