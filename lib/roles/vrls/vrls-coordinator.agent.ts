/**
 * The substitution server (seed Figs. 14-16, procedures P20-P33; glossary: Coordinator),
 * an agent on a LAN host that forwards nothing:
 *  - registers with the master as the special member (type 9 -> 10, P20) and repeats the
 *    registration as its keepalive (every router hears it on 224.0.0.18);
 *  - collects end-system information (ICMP information request/reply, P21-P22) or takes
 *    the configured fixed conditions (prefixes, hash buckets);
 *  - allocates (type 3) with the same MasterEngine as a master router (P23-P24), starting
 *    from the allocation it last saw on the LAN so that nothing moves when it takes over;
 *    member health from the routers' responses (type 2, P25) and the master's advertisements;
 *  - runs reviews (P30-P32): review requests (6) from master and backups, flow rate
 *    requests (7) to all routers, responses (8), the decision, reallocation by rate.
 * When it stops, the routers notice the missing keepalive and the master does the work
 * itself (router-core.ts). JSON-RPC: status.
 */
import { performance } from "node:perf_hooks";
import { agentArgs, log, serveAgent } from "../../remote/agent-runtime.ts";
import { intToIp, maskOf, parseCidr } from "../../topology/address.ts";
import { decodeIcmp, encodeIcmp, ICMP_TYPE } from "../../wire/icmp.ts";
import { decodeIpv4, encodeIpv4, IP_PROTOCOL } from "../../wire/ipv4.ts";
import { ReplayWindow } from "../../wire/replay.ts";
import { decodeVrls, encodeVrlsIpv4, type VrlsMessage as WireMessage } from "../../wire/vrls.ts";
import { VRRP_MULTICAST } from "../../wire/vrrp.ts";
import { validateVrrpPacket } from "../../wire/vrrp-validate.ts";
import type { CoordinatorAgentArgs } from "./coordinator.ts";
import { type MasterAction, MasterEngine } from "./master.ts";
import type { AllocationEntry, Destination, VrlsMessage } from "./messages.ts";
import { RawIo } from "./rawio.ts";
import { type ReviewAction, Reviewer } from "./reviewer.ts";
import { fromWire, toWire } from "./wire-map.ts";

const args = agentArgs<CoordinatorAgentArgs>();
const self = args.self;
const key = Buffer.from(args.key, "utf8");
const replay = new ReplayWindow();
const incarnation = Math.floor(Date.now() / 1000) >>> 0;
let sequence = 0;
const counters: Record<string, number> = {};
const count = (k: string) => {
  counters[k] = (counters[k] ?? 0) + 1;
};
const now = () => performance.now();

const engine = new MasterEngine({
  self,
  members: args.routers,
  mode: args.mode,
  retryMs: args.retryMs,
  maxRetries: args.maxRetries,
  responseTimeoutMs: args.responseTimeoutMs,
  discoveryMs: args.discoveryMs,
});
const reviewer = args.review ? new Reviewer(self, args.review) : null;
let registered = false;
let masterRouter: string | null = null;
/** The allocation last seen on the LAN (from the master before we registered, or ours). */
let seen: { epoch: number; version: number; entries: AllocationEntry[] } = {
  epoch: 0,
  version: 0,
  entries: [],
};
let io: RawIo;
let stopped = false;

function send(to: Destination, message: VrlsMessage): void {
  const dst = to === "all" ? VRRP_MULTICAST : to.member;
  for (const part of toWire(message)) {
    const wire = {
      vrid: args.vrid,
      priority: 0,
      maxAdverIntCs: args.advertIntervalCs,
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

function healthy(): string[] {
  const s = engine.snapshot(now());
  return s.members.filter((m) => m.condition !== "faulty").map((m) => m.id);
}

function perform(actions: readonly (MasterAction | ReviewAction)[]): void {
  for (const a of actions) {
    if (a.type === "log") log(a.message);
    else if (a.type === "send") {
      if (a.message.type === "allocation") seen = { ...a.message, entries: a.message.entries };
      send(a.to, a.message);
    } else if (a.type === "reallocateByRate") engine.requestReallocation(undefined, a.rates);
  }
}

function tick(): void {
  if (stopped) return;
  const t = now();
  if (registered) {
    perform(engine.onTick(t));
    if (reviewer) perform(reviewer.onTick(t, engine.allocationInForce, healthy()));
  }
}

// P20 + keepalive: the registration goes to every router (the master answers with type 10).
function keepalive(): void {
  if (stopped) return;
  send("all", { type: "registration", epoch: seen.epoch, role: "coordinator" });
}

// P21-P22: ICMP information requests on each subnet; replies are learned as conditions.
let infoSeq = 0;
function infoRequests(): void {
  if (stopped || args.conditions.kind !== "address") return;
  for (const s of args.subnets) {
    const c = parseCidr(s.cidr);
    const broadcast = intToIp((c.network | (~maskOf(c.prefix) >>> 0)) >>> 0);
    const icmp = encodeIcmp({
      type: ICMP_TYPE.informationRequest,
      code: 0,
      identifier: args.vrid,
      sequence: ++infoSeq & 0xffff,
      data: new Uint8Array(0),
    });
    io.sendIp(encodeIpv4({ src: self, dst: broadcast, protocol: IP_PROTOCOL.icmp, ttl: 64, payload: icmp }));
  }
  count("tx.infoRequest");
}

function onMessage(from: string, m: VrlsMessage): void {
  const t = now();
  const known = args.routers.some((r) => r.id === from);
  if (!known) {
    count("rx.unknownSender");
    return;
  }
  switch (m.type) {
    case "registrationAck":
      if (m.accepted && m.member === self && !registered) {
        registered = true;
        masterRouter = from;
        engine.unallocatedForwarder = from;
        // Start from the allocation in force: the same owners, a new series (no hand-off).
        perform(engine.start(t, Math.max(seen.epoch, m.epoch), seen.entries, null));
        if (args.fixedConditions.length > 0) engine.addConditions(args.fixedConditions);
        engine.requestReallocation();
        log(`registered with master ${from}; allocating from ${seen.entries.length} conditions`);
      }
      return;
    case "allocation":
      if (!registered) seen = { epoch: m.epoch, version: m.version, entries: m.entries };
      return;
    case "response":
      if (registered) perform(engine.onResponse(from, m, t));
      return;
    case "confirmation":
      if (registered) perform(engine.onConfirmation(from, m, t));
      return;
    case "reviewRequest":
      if (registered && reviewer)
        perform(reviewer.onReviewRequest(from, t, healthy(), engine.snapshot(t).epoch, true));
      return;
    case "rateResponse":
      if (registered && reviewer)
        perform(reviewer.onRateResponse(from, m, t, engine.allocationInForce, healthy()));
      return;
    default:
      return;
  }
}

function onVrrp(packet: Buffer): void {
  const v = validateVrrpPacket(packet, {
    version: 3,
    vrids: [args.vrid],
    acceptedTypes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  });
  if (!v.ok) {
    count(`rx.rejected.${v.reason}`);
    return;
  }
  if (v.ip.src === self) return;
  if (v.vrrp.type === 1 && v.vrrp.extension.length === 0) {
    // The master router's advertisements: it is alive (and who it is).
    count("rx.advertisement");
    if (masterRouter !== v.ip.src) {
      masterRouter = v.ip.src;
      engine.unallocatedForwarder = v.ip.src;
    }
    if (registered)
      perform(engine.onResponse(v.ip.src, { type: "response", priority: 0, epoch: 0, version: 0 }, now()));
    return;
  }
  const d = decodeVrls(v.ip.payload, { key, src: v.ip.src, dst: v.ip.dst });
  if (!d.ok) {
    count(/HMAC/.test(d.error.reason) ? "rx.rejected.unauthenticated" : "rx.rejected.malformed");
    return;
  }
  const w = d.value;
  if (w.sender !== v.ip.src || replay.check(w.sender, w.senderIncarnation, w.sequence) !== "accept") {
    count("rx.rejected.replay-or-sender");
    return;
  }
  const m = fromWire(w, args.bucketSeed, seen);
  if (!m) return;
  count(`rx.${m.type}`);
  onMessage(w.sender, m);
}

function onIcmp(packet: Buffer): void {
  const ip = decodeIpv4(packet);
  if (!ip.ok || ip.value.protocol !== IP_PROTOCOL.icmp) return;
  const icmp = decodeIcmp(ip.value.payload);
  if (!icmp.ok || !icmp.value.checksumValid || icmp.value.type !== ICMP_TYPE.informationReply) return;
  count("rx.infoReply");
  engine.addConditions([ip.value.src]);
}

serveAgent({
  name: "vrls-coordinator",
  methods: {
    status: () => {
      const t = now();
      return {
        self,
        registered,
        masterRouter,
        master: engine.isActive ? engine.snapshot(t) : null,
        review: reviewer?.snapshot(t) ?? null,
        counters,
      };
    },
  },
  onShutdown: async () => {
    stopped = true;
    io?.close();
  },
});

try {
  io = await RawIo.open({
    interface: args.interface,
    listen: ["vrrp", "icmp"],
    onVrrp,
    onIcmp,
    onLog: (l) => log(l),
  });
  log(`substitution server ${self} for VRID ${args.vrid} on ${args.interface}`);
  setInterval(tick, args.retryMs).unref();
  setInterval(keepalive, args.keepaliveMs).unref();
  setInterval(infoRequests, args.infoRequestIntervalMs).unref();
  keepalive();
  infoRequests();
} catch (e) {
  log(`startup failed: ${(e as Error).stack ?? e}`);
  process.exit(2);
}
