/**
 * Issue 15, the live attack on the Fig. 3 NAT-LB lab: server 5b (s5b, on internal network
 * 4 beside both balancers, the control server and the other servers) floods the NAT-LB
 * control port (7410) of every other agent host with crafted UDP datagrams, sent as whole
 * Ethernet frames from the raw AF_PACKET socket of the tandem-rawio addon opened in s5b's
 * namespace, with rotating (spoofed) source addresses. Kinds: every message type sealed
 * with a wrong key, one for a VIP nobody has sealed with a wrong key, and (an insider who
 * has the lab's key, read from the natlb section as the agents read it) every message type
 * correctly sealed, with a sequence above any genuine one, for a VIP no balancer serves (an
 * ack: answering no request); truncated, over-long, wrong version, wrong body length,
 * genuine messages captured on the wire and replayed (re-addressed to every other agent),
 * random bytes, empty datagrams.
 *
 * Meanwhile real TCP streams (clients -> VIP 31a-IP-1 via lba -> s5a, VIP 31b-IP-1 via
 * lbb -> s5c) and UDP streams (s5a -> c1a via lba, s5c -> c1c via lbb: the servers'
 * gateway is their VIP's internal address on the owning balancer) cross the balancers.
 * Used by test/natlb-attack.test.ts (short budget) and bench/natlb-attack.ts.
 */
import { randomBytes } from "node:crypto";
import type { Lab } from "../lab/lab.ts";
import { waitUntil } from "../remote/wait.ts";
import type { NatlbConfig } from "../roles/natlb/config.ts";
import { nodeIds } from "../roles/natlb/config.ts";
import { REJECT_REASONS, type RejectReason } from "../roles/natlb/control-channel.ts";
import { type NatlbRig, status } from "../roles/natlb/harness/lab-harness.ts";
import { readBalancerTables } from "../roles/natlb/harness/show.ts";
import { RawIo } from "../roles/vrls/rawio.ts";
import { TrafficAgent } from "../traffic/agent-client.ts";
import { analyzeStream } from "../traffic/analyzer.ts";
import { Capture } from "../traffic/capture.ts";
import { sendUdpStream, UdpReceiver } from "../traffic/udp.ts";
import { decodeEthernet, ETHERTYPE, encodeEthernet } from "../wire/ethernet.ts";
import { decodeIpv4, encodeIpv4, IP_PROTOCOL } from "../wire/ipv4.ts";
import { encodeNatlb, NATLB_HMAC_LENGTH, type NatlbMessage, resealNatlb } from "../wire/natlb.ts";
import { encodeLoadReport } from "../wire/natlb-status.ts";
import { decodeUdp, encodeUdp } from "../wire/udp.ts";
import {
  INSIDER_KINDS,
  INSIDER_SEQUENCE_BASE,
  type InsiderKind,
  insiderDatagram,
  UNKNOWN_VIP,
} from "./natlb-insider.ts";

export const NATLB_ATTACK_KINDS = [
  "forged-transition",
  "forged-route-switch",
  "forged-transfer",
  "forged-end-switch",
  "forged-push",
  "forged-ack",
  "forged-load-report",
  "forged-unknown-vip",
  ...INSIDER_KINDS,
  "truncated",
  "over-long",
  "wrong-version",
  "wrong-length",
  "replay",
  "junk",
  "empty",
] as const;
export type NatlbAttackKind = (typeof NATLB_ATTACK_KINDS)[number];

export interface NatlbAttackOptions {
  frames: number;
  durationMs: number;
  /** The attacking host (default s5b: a server of network 4 whose VIP carries no stream). */
  attacker?: string;
  udpPps?: number;
  tcpRecordsPerSecond?: number;
  udpPort?: number;
}

interface Target {
  /** Agent host. */
  host: string;
  address: string;
  mac: string;
}

export interface NatlbHostReport {
  host: string;
  /** Crafted datagrams sent to this host. */
  frames: number;
  /** Refused per reason by the host's control channel(s) during the attack. */
  refused: Partial<Record<RejectReason, number>>;
  /** Accepted during the attack (the genuine pushes and reports). */
  accepted: number;
  /** UDP datagrams the host's kernel dropped for a full socket buffer during the attack. */
  rcvbufErrors: number;
  rssBefore: number;
  rssAfter: number;
}

export interface NatlbAttackReport {
  attacker: string;
  frames: number;
  framesPerKind: Record<NatlbAttackKind, number>;
  sendFailures: number;
  durationMs: number;
  framesPerSecond: number;
  captured: number;
  hosts: NatlbHostReport[];
  /** Every agent answered ping after the attack with the pid it had before. */
  agentsUp: { agent: string; pidBefore: number; pidAfter: number | null }[];
  modesBefore: Record<string, string[]>;
  modesAfter: Record<string, string[]>;
  ownersBefore: Record<string, string>;
  ownersAfter: Record<string, string>;
  /** Connection-table rows of every balancer (timeout column left out), before and after. */
  connectionsBefore: Record<string, string[]>;
  connectionsAfter: Record<string, string[]>;
  udp: { sent: number; received: number; lost: number; duplicated: number };
  tcp: { recordsWritten: number; recordsReceived: number; discontinuities: number; resets: number };
}

const WRONG_KEY = new TextEncoder().encode("the attacker does not have the NAT-LB key");
/** The crafted UDP payloads, one kind after another in rotation. */
export class NatlbAttackPayloads {
  private readonly counters = Object.fromEntries(NATLB_ATTACK_KINDS.map((k) => [k, 0])) as Record<
    NatlbAttackKind,
    number
  >;
  private seq = 0n;
  constructor(
    private readonly o: {
      config: NatlbConfig;
      /** Genuine datagrams captured on the wire (UDP payload + its original source). */
      captured: { payload: Uint8Array; src: string }[];
    },
  ) {}

  get perKind(): Record<NatlbAttackKind, number> {
    return { ...this.counters };
  }

  /** The i-th payload for `target` (a host) and, for a replay, the genuine sender's address. */
  next(i: number, target: string): { payload: Uint8Array; src?: string } {
    const kinds = this.o.captured.length
      ? NATLB_ATTACK_KINDS
      : NATLB_ATTACK_KINDS.filter((k) => k !== "replay");
    const kind = kinds[i % kinds.length]!;
    this.counters[kind]++;
    if (kind === "replay") {
      const c = this.o.captured[Math.floor(i / kinds.length) % this.o.captured.length]!;
      return { payload: c.payload, src: c.src };
    }
    if (kind.startsWith("insider-")) {
      // A sender the target takes acks, pushes and reports from: a balancer, not itself.
      const ids = nodeIds(this.o.config);
      const balancers = [...ids.balancer];
      const [sender, other] = balancers[0]![0] === target ? [balancers[1]!, balancers[0]!] : balancers;
      return {
        payload: insiderDatagram(kind as InsiderKind, {
          key: this.key,
          controller: ids.controller,
          balancer: sender![1],
          other: other![1],
          sequence: INSIDER_SEQUENCE_BASE + ++this.seq,
        }),
      };
    }
    return { payload: this.payload(kind as Exclude<NatlbAttackKind, "replay" | InsiderKind>) };
  }

  /** The lab's key, as every agent reads it: the natlb section's control.key. */
  private get key(): Uint8Array {
    return Buffer.from(this.o.config.control.key, "hex");
  }

  private seal(m: NatlbMessage): Uint8Array {
    return encodeNatlb(m, WRONG_KEY);
  }

  private payload(kind: Exclude<NatlbAttackKind, "replay" | InsiderKind>): Uint8Array {
    const ids = nodeIds(this.o.config);
    const [b1, b2] = [...ids.balancer.values()];
    const vip = this.o.config.vips[Number(this.seq % BigInt(this.o.config.vips.length))]!.address;
    // A high sequence: accepted, it would shut the genuine sender out of the replay window.
    const head = { sender: ids.controller, sequence: 0xffff_ffff_0000n + ++this.seq, moveId: 7 };
    const transition = () => this.seal({ ...head, type: 1, vip, from: b1 ?? 10, to: b2 ?? 11, enter: true });
    switch (kind) {
      case "forged-transition":
        return transition();
      case "forged-route-switch":
        return this.seal({ ...head, type: 2, vip, from: b1 ?? 10, to: b2 ?? 11, method: "garp" });
      case "forged-transfer":
        return this.seal({
          ...head,
          type: 3,
          vip,
          from: b1 ?? 10,
          to: b2 ?? 11,
          part: 0,
          parts: 1,
          entries: [],
        });
      case "forged-end-switch":
        return this.seal({ ...head, type: 4, vip, from: b1 ?? 10, to: b2 ?? 11, entriesTransferred: 0 });
      case "forged-push":
        return this.seal({
          ...head,
          sender: b1 ?? 10,
          type: 5,
          balancer: b1 ?? 10,
          kind: "full",
          generation: 0x7fff_fff0,
          part: 0,
          parts: 1,
          entries: [],
        });
      case "forged-ack":
        return this.seal({ ...head, type: 6, inReplyTo: this.seq, status: "ok", detail: 0 });
      case "forged-load-report":
        return encodeLoadReport(
          {
            sender: b1 ?? 10,
            sequence: head.sequence,
            balancer: b1 ?? 10,
            invalidRejected: 0n,
            vips: [{ vip, owned: false, transition: false, packets: 0n, bytes: 0n }],
          },
          WRONG_KEY,
        );
      case "forged-unknown-vip":
        return this.seal({
          ...head,
          type: 2,
          vip: UNKNOWN_VIP,
          from: b1 ?? 10,
          to: b2 ?? 11,
          method: "garp",
        });
      case "truncated": {
        const full = transition();
        return full.subarray(0, 1 + Number(this.seq % BigInt(full.length - 1)));
      }
      case "over-long": {
        const full = transition();
        const out = new Uint8Array(full.length + 1 + Number(this.seq % 200n));
        out.set(full);
        return out;
      }
      case "wrong-version": {
        const full = transition();
        full[0] = 2;
        return resealNatlb(full, WRONG_KEY);
      }
      case "wrong-length": {
        const full = transition();
        full[3] = (full[3]! + 1 + Number(this.seq % 50n)) & 0xff;
        return full;
      }
      case "junk":
        return randomBytes(1 + Number(this.seq % 300n));
      case "empty":
        return new Uint8Array(0);
    }
  }
}

async function macOf(lab: Lab, host: string, ifname: string): Promise<string> {
  const r = await lab.host(host).exec(["ip", "-j", "link", "show", ifname]);
  return (JSON.parse(r.stdout) as { address: string }[])[0]!.address;
}

async function rcvbufErrors(lab: Lab, host: string): Promise<number> {
  const r = await lab.host(host).exec(["cat", "/proc/net/snmp"]);
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("Udp:"));
  const names = (lines[0] ?? "").split(/\s+/);
  const values = (lines[1] ?? "").split(/\s+/);
  return Number(values[names.indexOf("RcvbufErrors")] ?? 0);
}

interface ChannelRead {
  counters: { received: number; accepted: number };
  rejects: Record<RejectReason, number>;
  rssBytes: number;
}

/** The control channels on one host (s5c has two: its keeper's and the controller's). */
async function channelsOf(rig: NatlbRig, host: string): Promise<ChannelRead[]> {
  const out: ChannelRead[] = [];
  const b = rig.balancers.get(host);
  if (b) out.push(await b.call<ChannelRead>("channel"));
  const k = rig.keepers.get(host);
  if (k) {
    const s = await k.call<{
      channel: ChannelRead["counters"];
      rejects: ChannelRead["rejects"];
      rssBytes: number;
    }>("stats");
    out.push({ counters: s.channel, rejects: s.rejects, rssBytes: s.rssBytes });
  }
  if (rig.config.controller.host === host) out.push(await rig.controller.call<ChannelRead>("channel"));
  return out;
}

function sumRejects(list: ChannelRead[]): Record<RejectReason, number> {
  const out = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  for (const c of list) for (const r of REJECT_REASONS) out[r] += c.rejects[r] ?? 0;
  return out;
}

const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

async function tables(rig: NatlbRig) {
  const t = await readBalancerTables(rig.lab, rig.config);
  const modes: Record<string, string[]> = {};
  const conns: Record<string, string[]> = {};
  for (const b of t) {
    modes[b.balancer] = b.modes.map((m) => `${m.address} ${m.mode}`);
    conns[b.balancer] = b.entries
      .map((e) =>
        Object.entries(e)
          .filter(([k]) => !k.startsWith("timeout"))
          .map(([, v]) => v)
          .join(" "),
      )
      .sort();
  }
  const st = await status(rig);
  const owners = Object.fromEntries(st.vips.map((v) => [v.vip, String(v.owner)]));
  return { modes, conns, owners };
}

export async function runNatlbAttack(rig: NatlbRig, options: NatlbAttackOptions): Promise<NatlbAttackReport> {
  const { lab, config } = rig;
  const attacker = options.attacker ?? "s5b";
  const ids = nodeIds(config);
  const attackerIp = ids.serverAddress.get(attacker);
  if (!attackerIp) throw new Error(`${attacker} is no server of the lab`);
  const attackerMac = await macOf(lab, attacker, "eth0");
  const targets: Target[] = [];
  for (const [name, b] of Object.entries(config.balancers))
    targets.push({ host: name, address: b.address, mac: await macOf(lab, name, b.internal) });
  for (const [host, address] of ids.serverAddress)
    if (host !== attacker) targets.push({ host, address, mac: await macOf(lab, host, "eth0") });

  // Genuine datagrams for the replay kind: what reaches the attacker's own keeper (the
  // balancers' copy pushes), captured on the attacker's interface.
  const capture = await Capture.start(lab.host(attacker).remote, {
    interface: "eth0",
    filter: `udp dst port ${config.control.port} and dst host ${attackerIp}`,
    snapLength: 2000,
  });
  // A full push round goes to every server from one synchronous loop of the balancer, so
  // once the attacker's keeper has a newer one from each balancer than the capture holds,
  // every receiver has passed the captured sequences: a replay is a replay everywhere.
  const keeper = rig.keepers.get(attacker);
  if (!keeper) throw new Error(`no keeper on ${attacker}`);
  type Info = { copies: { balancer: string; generation: number }[] };
  const generations = async () =>
    new Map((await keeper.call<Info>("stats")).copies.map((c) => [c.balancer, c.generation]));
  const balancerNames = Object.keys(config.balancers);
  const newerRound = async (than: Map<string, number>) =>
    waitUntil(
      async () => {
        const g = await generations();
        return balancerNames.every((b) => (g.get(b) ?? -1) > (than.get(b) ?? -1)) ? g : false;
      },
      { timeoutMs: 10_000, what: `a newer full push from every balancer at ${attacker}'s keeper` },
    );
  await newerRound(await generations());
  await capture.stop();
  const atCaptureEnd = await generations();
  const captured: { payload: Uint8Array; src: string }[] = [];
  for await (const rec of capture.reader()) {
    const eth = decodeEthernet(rec.data);
    if (!eth.ok || eth.value.etherType !== ETHERTYPE.ipv4) continue;
    const ip = decodeIpv4(eth.value.payload);
    if (!ip.ok || ip.value.protocol !== IP_PROTOCOL.udp) continue;
    const udp = decodeUdp(ip.value.payload);
    if (!udp.ok || udp.value.payload.length < NATLB_HMAC_LENGTH) continue;
    if (captured.length < 64)
      captured.push({ payload: Uint8Array.from(udp.value.payload), src: ip.value.src });
  }
  await capture.remove();
  await newerRound(atCaptureEnd);

  // The streams' ends: the web servers on s5a/s5c give their port to TCP sinks.
  const vip1 = config.vips[0]!;
  const vip3 = config.vips.find((v) => v.owner !== vip1.owner)!;
  const server1 = vip1.servers[0]!;
  const server3 = vip3.servers[0]!;
  for (const h of [server1.host, server3.host]) await rig.webs.get(h)?.stop();
  rig.webs.delete(server1.host);
  rig.webs.delete(server3.host);
  const sinks = await Promise.all(
    [server1, server3].map(async (s) => {
      const agent = await TrafficAgent.launch(lab.host(s.host).remote);
      return { agent, sink: await agent.startTcpSink({ ports: [s.port] }) };
    }),
  );
  const clientPlan = [
    { host: "c1a", vip: vip1.address, udpFrom: server1.host, udpTo: "203.0.113.11" },
    { host: "c1b", vip: vip1.address },
    { host: "c1c", vip: vip3.address, udpFrom: server3.host, udpTo: "203.0.113.13" },
  ];
  const port = options.udpPort ?? 6100;
  const receivers = await Promise.all(
    clientPlan.filter((c) => c.udpFrom).map((c) => UdpReceiver.start(lab.host(c.host).remote, { port })),
  );
  const clients = await Promise.all(clientPlan.map((c) => TrafficAgent.launch(lab.host(c.host).remote)));
  const io = await RawIo.open({ interface: "eth0", listen: [], netns: lab.namespace(attacker) });
  try {
    const streams = await Promise.all(
      clients.map((c, i) =>
        c.startTcpStreams({
          dstIp: clientPlan[i]!.vip,
          ports: [vip1.port],
          connections: 1,
          recordsPerSecond: options.tcpRecordsPerSecond ?? 100,
          recordBytes: 100,
        }),
      ),
    );
    const udpPlan = clientPlan.filter((c) => c.udpFrom);
    const senders = Promise.all(
      udpPlan.map((c, i) =>
        sendUdpStream(lab.host(c.udpFrom!).remote, {
          streamId: port * 10 + i,
          dstIp: c.udpTo!,
          dstPort: port,
          pps: options.udpPps ?? 200,
          durationMs: options.durationMs + 3000,
        }),
      ),
    );
    // The TCP connections established (one a client) before "before" is read.
    await waitUntil(
      async () => {
        const t = await readBalancerTables(lab, config);
        return t.reduce((a, b) => a + b.entries.length, 0) >= clientPlan.length;
      },
      { timeoutMs: 10_000, what: "the streams' connections in the balancers' tables" },
    );
    const agents = new Map<string, { call: <T>(m: string) => Promise<T> }>([
      ...[...rig.balancers].map(([h, a]) => [`balancer ${h}`, a] as const),
      ...[...rig.keepers].map(([h, a]) => [`keeper ${h}`, a] as const),
      ...[...rig.webs].map(([h, a]) => [`web ${h}`, a] as const),
      ...[...rig.clients].map(([h, a]) => [`clients ${h}`, a] as const),
      ["controller", rig.controller] as const,
    ]);
    const pidsBefore = new Map<string, number>();
    for (const [n, a] of agents) pidsBefore.set(n, (await a.call<{ pid: number }>("ping")).pid);
    const before = await tables(rig);
    const chBefore = new Map<string, ChannelRead[]>();
    const rcvBefore = new Map<string, number>();
    for (const t of targets) {
      chBefore.set(t.host, await channelsOf(rig, t.host));
      rcvBefore.set(t.host, await rcvbufErrors(lab, t.host));
    }

    const payloads = new NatlbAttackPayloads({ config, captured });
    const sources = [attackerIp, ...targets.map((t) => t.address), "198.18.10.200"];
    const perTarget = new Map(targets.map((t) => [t.host, 0]));
    const crafted = Array.from({ length: options.frames }, (_, i) => {
      const target = targets[i % targets.length]!;
      const p = payloads.next(Math.floor(i / targets.length), target.host);
      // Never the target's own address as source (the kernel drops it as martian).
      const spoofed = sources.filter((s) => s !== target.address);
      let src = p.src ?? spoofed[i % spoofed.length]!;
      if (src === target.address) src = attackerIp;
      perTarget.set(target.host, (perTarget.get(target.host) ?? 0) + 1);
      return encodeEthernet({
        dst: target.mac,
        src: attackerMac,
        etherType: ETHERTYPE.ipv4,
        payload: encodeIpv4({
          src,
          dst: target.address,
          protocol: IP_PROTOCOL.udp,
          ttl: 64,
          payload: encodeUdp(
            { srcPort: 40000 + (i % 20000), dstPort: config.control.port, payload: p.payload },
            src,
            target.address,
          ),
        }),
      });
    });
    let sent = 0;
    let failures = 0;
    const started = performance.now();
    while (sent < options.frames) {
      const due = Math.min(
        options.frames,
        Math.ceil(((performance.now() - started) / options.durationMs) * options.frames),
      );
      for (; sent < due; sent++) if (!io.sendFrame(crafted[sent]!)) failures++;
      if (sent < options.frames) await new Promise((r) => setTimeout(r, 5));
    }
    const durationMs = performance.now() - started;

    // Every datagram sent to a host is refused there under a reason (or lost in its socket
    // buffer, counted by the kernel): read once the counts add up, or after 10 s.
    const hosts: NatlbHostReport[] = [];
    for (const t of targets) {
      const b = chBefore.get(t.host)!;
      const expected = perTarget.get(t.host)!;
      let after: ChannelRead[] = b;
      let rcv = 0;
      await waitUntil(
        async () => {
          after = await channelsOf(rig, t.host);
          rcv = (await rcvbufErrors(lab, t.host)) - rcvBefore.get(t.host)!;
          return total(sumRejects(after)) - total(sumRejects(b)) + rcv >= expected;
        },
        {
          timeoutMs: 10_000,
          what: `${t.host}: ${expected} crafted datagrams refused`,
          last: () => ({ refused: total(sumRejects(after)) - total(sumRejects(b)), rcv }),
        },
      ).catch(() => undefined);
      const ra = sumRejects(after);
      const rb = sumRejects(b);
      const refused: Partial<Record<RejectReason, number>> = {};
      for (const r of REJECT_REASONS) if (ra[r] - rb[r] !== 0) refused[r] = ra[r] - rb[r];
      hosts.push({
        host: t.host,
        frames: expected,
        refused,
        accepted:
          after.reduce((a, c) => a + c.counters.accepted, 0) - b.reduce((a, c) => a + c.counters.accepted, 0),
        rcvbufErrors: rcv,
        rssBefore: Math.max(...b.map((c) => c.rssBytes)),
        rssAfter: Math.max(...after.map((c) => c.rssBytes)),
      });
    }
    const after = await tables(rig);
    const agentsUp: NatlbAttackReport["agentsUp"] = [];
    for (const [n, a] of agents) {
      const pid = await a
        .call<{ pid: number }>("ping")
        .then((p) => p.pid)
        .catch(() => null);
      agentsUp.push({ agent: n, pidBefore: pidsBefore.get(n)!, pidAfter: pid });
    }

    const streamReports = await Promise.all(streams.map((s) => s.stop()));
    const sentUdp = await senders;
    await new Promise((r) => setTimeout(r, 300));
    const sinkReports = await Promise.all(sinks.map((s) => s.sink.stop()));
    const udp = { sent: 0, received: 0, lost: 0, duplicated: 0 };
    const received = await Promise.all(receivers.map((r) => r.stop()));
    for (const [i, s] of sentUdp.entries()) {
      const r = analyzeStream({
        sender: s,
        receiver: received[i]!.streams.find((x) => x.streamId === port * 10 + i),
      });
      udp.sent += r.sent;
      udp.received += r.received;
      udp.lost += r.lost;
      udp.duplicated += r.duplicated.receiver;
    }
    return {
      attacker,
      frames: sent,
      framesPerKind: payloads.perKind,
      sendFailures: failures,
      durationMs: Math.round(durationMs),
      framesPerSecond: Math.round(sent / (durationMs / 1000)),
      captured: captured.length,
      hosts,
      agentsUp,
      modesBefore: before.modes,
      modesAfter: after.modes,
      ownersBefore: before.owners,
      ownersAfter: after.owners,
      connectionsBefore: before.conns,
      connectionsAfter: after.conns,
      udp,
      tcp: {
        recordsWritten: streamReports.reduce((a, t) => a + t.totals.recordsWritten, 0),
        recordsReceived: sinkReports.reduce((a, t) => a + t.totals.records, 0),
        discontinuities: sinkReports.reduce((a, t) => a + t.totals.discontinuities, 0),
        resets: sinkReports.reduce((a, t) => a + t.totals.resets, 0),
      },
    };
  } finally {
    io.close();
    await Promise.all(
      [...clients, ...sinks.map((s) => s.agent)].map((c) => c.close().catch(() => undefined)),
    );
  }
}

/** Table + the JSON line (bench convention). */
export function printNatlbAttack(r: NatlbAttackReport): void {
  console.log(
    `attack from ${r.attacker}: ${r.frames} datagrams in ${(r.durationMs / 1000).toFixed(1)} s (${r.framesPerSecond}/s), ${r.sendFailures} send failures, ${r.captured} genuine messages captured for replay`,
  );
  console.table(r.framesPerKind);
  console.table(
    r.hosts.map((h) => ({
      host: h.host,
      sent: h.frames,
      refused: total(h.refused as Record<string, number>),
      "unknown-vip": h.refused["unknown-vip"] ?? 0,
      "unsolicited-ack": h.refused["unsolicited-ack"] ?? 0,
      "limited (sender/global)": `${h.refused["limited-sender"] ?? 0}/${h.refused["limited-global"] ?? 0}`,
      accepted: h.accepted,
      "rcvbuf errors": h.rcvbufErrors,
      "rss MiB before": (h.rssBefore / 2 ** 20).toFixed(1),
      "rss MiB after": (h.rssAfter / 2 ** 20).toFixed(1),
    })),
  );
  for (const h of r.hosts) console.log(`${h.host} refused ${JSON.stringify(h.refused)}`);
  console.log(
    `agents up ${r.agentsUp.filter((a) => a.pidAfter === a.pidBefore).length}/${r.agentsUp.length}; modes unchanged ${JSON.stringify(r.modesAfter) === JSON.stringify(r.modesBefore)}; owners unchanged ${JSON.stringify(r.ownersAfter) === JSON.stringify(r.ownersBefore)}; connections unchanged ${JSON.stringify(r.connectionsAfter) === JSON.stringify(r.connectionsBefore)}`,
  );
  console.log(
    `udp sent ${r.udp.sent} received ${r.udp.received} lost ${r.udp.lost} duplicated ${r.udp.duplicated}; tcp records written ${r.tcp.recordsWritten} received ${r.tcp.recordsReceived} discontinuities ${r.tcp.discontinuities} resets ${r.tcp.resets}`,
  );
  console.log(JSON.stringify({ natlb_attack: r }));
}
