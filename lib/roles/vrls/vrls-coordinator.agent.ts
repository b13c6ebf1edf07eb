/**
 * The substitution server agent (seed Figs. 14-16, P20-P33; the logic is the pure
 * CoordinatorCore, coordinator-core.ts): raw sockets for VRRP/VRLS (IP protocol 112) and ICMP
 * information requests/replies (15/16) on the LAN host it runs on. It forwards nothing. P25:
 * a backup's confirmation is transferred to the other routers as received (transferVrlsIpv4:
 * the backup's sender, sequence and HMAC; new IP header and checksum). JSON-RPC: status.
 */
import { performance } from "node:perf_hooks";
import { agentArgs, log, serveAgent } from "../../remote/agent-runtime.ts";
import { intToIp, maskOf, parseCidr } from "../../topology/address.ts";
import { decodeIcmp, encodeIcmp, ICMP_TYPE } from "../../wire/icmp.ts";
import { decodeIpv4, encodeIpv4, IP_PROTOCOL } from "../../wire/ipv4.ts";
import { ReplayWindow } from "../../wire/replay.ts";
import {
  decodeVrls,
  encodeVrlsIpv4,
  transferVrlsIpv4,
  VRLS_TYPE,
  type VrlsMessage as WireMessage,
} from "../../wire/vrls.ts";
import { VRRP_MULTICAST } from "../../wire/vrrp.ts";
import { validateVrrpPacket } from "../../wire/vrrp-validate.ts";
import type { CoordinatorAgentArgs } from "./agent-args.ts";
import { type CoordinatorAction, CoordinatorCore, type CoordinatorEvent } from "./coordinator-core.ts";
import type { Destination, VrlsMessage } from "./messages.ts";
import { RawIo } from "./rawio.ts";
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

const core = new CoordinatorCore({
  self,
  routers: args.routers,
  mode: args.mode,
  retryMs: args.retryMs,
  maxRetries: args.maxRetries,
  responseTimeoutMs: args.responseTimeoutMs,
  discoveryMs: args.discoveryMs,
  infoRequestIntervalMs: args.conditions.kind === "address" ? args.infoRequestIntervalMs : 0,
  keepaliveMs: args.keepaliveMs,
  conditions: args.conditions.kind,
  fixedConditions: args.fixedConditions,
  ...(args.review ? { review: args.review } : {}),
});
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

// P22 / P33: ICMP information requests (type 15) broadcast on each subnet.
let infoSeq = 0;
function sendInfoRequests(): void {
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

/** Runs one event through the core; `received` is the VRRP message being handled (for P25). */
function handle(event: CoordinatorEvent, received?: Uint8Array): void {
  if (stopped) return;
  for (const a of core.handle(event)) perform(a, received);
}

function perform(a: CoordinatorAction, received: Uint8Array | undefined): void {
  switch (a.type) {
    case "log":
      log(a.message);
      return;
    case "send":
      send(a.to, a.message);
      return;
    case "sendInfoRequest":
      sendInfoRequests();
      return;
    case "transfer":
      // P25: the backup's response, unchanged, to the master router (and the other backups).
      if (!received) return;
      for (const dst of a.to) {
        io.sendIp(transferVrlsIpv4(received, { src: self, dst }));
        count(`tx.transfer.type${VRLS_TYPE.allocationConfirmation}`);
      }
      return;
  }
}

function onVrrp(packet: Buffer): void {
  const v = validateVrrpPacket(packet, {
    version: 3,
    vrids: [args.vrid],
    acceptedTypes: Object.values(VRLS_TYPE),
  });
  if (!v.ok) {
    count(`rx.rejected.${v.reason}`);
    return;
  }
  if (v.ip.src === self) return;
  if (v.vrrp.type === VRLS_TYPE.advertisement && v.vrrp.extension.length === 0) {
    // The master router's advertisements: it is alive (and who it is).
    count("rx.advertisement");
    handle({ type: "advertisement", now: now(), from: v.ip.src });
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
  const m = fromWire(w, args.bucketSeed, core.lastAllocation);
  if (!m) return;
  count(`rx.${m.type}`);
  handle({ type: "message", now: now(), from: w.sender, message: m }, v.ip.payload);
}

function onIcmp(packet: Buffer): void {
  const ip = decodeIpv4(packet);
  if (!ip.ok || ip.value.protocol !== IP_PROTOCOL.icmp) return;
  const icmp = decodeIcmp(ip.value.payload);
  if (!icmp.ok || !icmp.value.checksumValid || icmp.value.type !== ICMP_TYPE.informationReply) return;
  count("rx.infoReply");
  handle({ type: "infoReply", now: now(), address: ip.value.src });
}

serveAgent({
  name: "vrls-coordinator",
  methods: {
    status: () => {
      const st = core.snapshot(now());
      return { ...st, counters: { ...counters, ...st.counters } };
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
  setInterval(() => handle({ type: "tick", now: now() }), args.retryMs).unref();
  handle({ type: "start", now: now() });
} catch (e) {
  log(`startup failed: ${(e as Error).stack ?? e}`);
  process.exit(2);
}
