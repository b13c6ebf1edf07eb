/**
 * Issue 15, the live attack: one end system of the Fig. 7 VRLS lab floods the LAN with
 * crafted VRRP/VRLS frames (raw AF_PACKET socket of the tandem-rawio addon, opened in the
 * end system's namespace) while real UDP and TCP streams run through the virtual router.
 * Used by test/vrls-attack.test.ts (a smaller budget) and bench/vrls-attack.ts (100,000
 * frames over 30 s). It reports frames sent per kind, what each member rejected per reason
 * (its agent) and shed per reason (its kernel guard), RSS before/after, role events,
 * advertisements/GARP/allocations sent by each member, allocation before/after, and the
 * streams' loss and duplicates.
 */
import { randomBytes } from "node:crypto";
import type { Lab } from "../lab/index.ts";
import type { RunningVirtualRouter } from "../roles/vrls/harness/lab-harness.ts";
import { RawIo } from "../roles/vrls/rawio.ts";
import { TrafficAgent } from "../traffic/agent-client.ts";
import { analyzeStream } from "../traffic/analyzer.ts";
import { Capture, captureIncompleteness } from "../traffic/capture.ts";
import { sendUdpStream, UdpReceiver } from "../traffic/udp.ts";
import { decodeArp, gratuitousArpFrame } from "../wire/arp.ts";
import { decodeEthernet, ETHERTYPE, encodeEthernet } from "../wire/ethernet.ts";
import { decodeIpv4, encodeIpv4, IP_PROTOCOL } from "../wire/ipv4.ts";
import { encodeVrls, resealVrls, type VrlsMessage } from "../wire/vrls.ts";
import { VRRP_MULTICAST, virtualMac } from "../wire/vrrp.ts";

export const ATTACK_KINDS = [
  "forged-allocation",
  "forged-review-request",
  "forged-flow-rate-request",
  "unknown-member-allocation",
  "ttl-254",
  "truncated",
  "over-long",
  "over-counted",
  "wrong-version",
  "wrong-type",
  "wrong-vrid",
  "bad-checksum",
  "random-bytes",
  "empty",
  "replay",
] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

export interface VrlsAttackOptions {
  /** The end system that attacks (default es4; it carries no stream). */
  attacker?: string;
  /** End systems whose UDP and TCP streams cross the virtual router during the attack. */
  streamHosts?: string[];
  frames: number;
  durationMs: number;
  /** UDP datagrams a second per stream host. Default 200. */
  udpPps?: number;
  /** TCP records a second per stream host (one connection each). Default 100. */
  tcpRecordsPerSecond?: number;
  /** The master (its allocation is compared before/after). Default ra. */
  master?: string;
  port?: number;
  /**
   * Gratuitous ARP frames claiming the VIP from the attacker's MAC, spread evenly over the
   * attack (not among `frames`). Default 0. The report counts the stream frames they
   * misdirect to the attacker and the master's gratuitous ARP seen on the wire.
   */
  garpSpoofs?: number;
}

interface MemberSnapshot {
  role: string;
  rssBytes: number;
  rx: Record<string, number>;
  rxGuard: Record<string, number>;
  rxDrops: number;
  /** Protocol-112 packets the agent's socket delivered. */
  rxReceived: number;
  /** The same two socket counters, read just before the guard's counters (rxGuard). */
  beforeGuardRead: { rxDrops: number; rxReceived: number };
  owners: Record<string, string>;
  allocation: Record<string, string> | null;
}

export interface MemberAttackReport {
  host: string;
  roleBefore: string;
  roleAfter: string;
  rssBefore: number;
  rssAfter: number;
  /** Agent: rx.rejected.* and rx.limited.* counted during the attack. */
  rejected: Record<string, number>;
  /** Kernel guard: packets shed per reason during the attack. */
  shed: Record<string, number>;
  /** Protocol-112 packets the kernel guard passed to the agent (peer / other) during the attack. */
  passed: { peer: number; other: number };
  /** Lost in the raw socket's receive buffer during the attack. */
  rxDrops: number;
  /** Sent by this member during the attack. */
  sent: { advertisements: number; garp: number; allocations: number };
  /** Address conflicts counted (gratuitous ARP for the VIP from another MAC) and VIP re-assertions sent. */
  arpConflicts: number;
  garpReasserts: number;
  ownersUnchanged: boolean;
}

export interface VrlsAttackReport {
  attacker: string;
  frames: number;
  framesPerKind: Record<AttackKind, number>;
  sendFailures: number;
  durationMs: number;
  framesPerSecond: number;
  /** Genuine VRLS messages captured before the attack (replayed as kind "replay"). */
  captured: number;
  members: MemberAttackReport[];
  roleEvents: string[];
  allocationBefore: Record<string, string>;
  allocationAfter: Record<string, string>;
  udp: { sent: number; received: number; lost: number; duplicated: number };
  /**
   * Per stream host: UDP sent and lost, and the host's datagrams the spoofed ARP
   * misdirected to the attacker (seen in its capture); `explained`: lost === misdirected.
   */
  udpByHost: Record<
    string,
    { address: string; sent: number; lost: number; misdirected: number; explained: boolean }
  >;
  tcp: { recordsWritten: number; recordsReceived: number; discontinuities: number; resets: number };
  /** Spoofed gratuitous ARP sent, and what followed on the attacker's interface. */
  garp: {
    spoofs: number;
    /** Stream frames (to the server) that arrived at the attacker's MAC during the attack. */
    misdirected: { udp: number; tcp: number };
    /** The same per source address (the stream's end system). */
    misdirectedBySource: Record<string, { udp: number; tcp: number }>;
    /** Gratuitous ARP for the VIP from the virtual MAC seen on the wire during the attack. */
    reassertionsOnWire: number;
    /** ms from each spoof to the first re-assertion seen after it (null: none before the next spoof). */
    reassertDelaysMs: (number | null)[];
    /**
     * The attacker's capture that counts the misdirected frames: what tcpdump captured,
     * received by its filter and dropped (kernel + interface). Complete: 0 dropped (a
     * capture with drops fails the run, since its count would excuse loss it did not see).
     */
    capture: { captured: number; receivedByFilter: number; dropped: number; complete: boolean } | null;
  };
}

const WRONG_KEY = new TextEncoder().encode("the attacker does not have the key");

type RawioCounters = { rxDrops: number; sockets: { vrrp?: { received: number } } };

async function ipv4Of(lab: Lab, host: string): Promise<string> {
  const r = await lab.host(host).exec("ip -j -4 addr show eth0");
  return (JSON.parse(r.stdout) as { addr_info: { local: string }[] }[])[0]!.addr_info[0]!.local;
}

async function snapshot(vr: RunningVirtualRouter, host: string): Promise<MemberSnapshot> {
  const s = (await vr.status(host)) as unknown as {
    role: string;
    rssBytes: number;
    rx: Record<string, number>;
    rxGuard: Record<string, number> | null;
    rawio: RawioCounters | null;
    rawioBeforeGuardRead: RawioCounters | null;
    member: { owners: Record<string, string> };
    master?: { allocation?: Record<string, string> };
  };
  return {
    role: s.role,
    rssBytes: s.rssBytes,
    rx: { ...s.rx },
    rxGuard: { ...(s.rxGuard ?? {}) },
    rxDrops: s.rawio?.rxDrops ?? 0,
    rxReceived: s.rawio?.sockets.vrrp?.received ?? 0,
    beforeGuardRead: {
      rxDrops: s.rawioBeforeGuardRead?.rxDrops ?? 0,
      rxReceived: s.rawioBeforeGuardRead?.sockets.vrrp?.received ?? 0,
    },
    owners: { ...s.member.owners },
    allocation: s.master?.allocation ? { ...s.master.allocation } : null,
  };
}

function delta(a: Record<string, number>, b: Record<string, number>, keep: (k: string) => boolean) {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!keep(k)) continue;
    const d = (b[k] ?? 0) - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** The crafted frames, one kind after another in rotation, from rotating source addresses. */
export class AttackFrames {
  private readonly counters = Object.fromEntries(ATTACK_KINDS.map((k) => [k, 0])) as Record<
    AttackKind,
    number
  >;
  private seq = 0;
  constructor(
    private readonly o: {
      mac: string;
      vrid: number;
      vip: string;
      /** Rotating IP sources: the attacker's own address, a member's, any on the LAN. */
      sources: string[];
      members: string[];
      endSystems: string[];
      captured: Uint8Array[];
    },
  ) {}

  get perKind(): Record<AttackKind, number> {
    return { ...this.counters };
  }

  next(i: number): Uint8Array {
    const kinds = this.o.captured.length ? ATTACK_KINDS : ATTACK_KINDS.filter((k) => k !== "replay");
    const kind = kinds[i % kinds.length]!;
    this.counters[kind]++;
    if (kind === "replay") return this.o.captured[i % this.o.captured.length]!;
    const src = this.o.sources[Math.floor(i / kinds.length) % this.o.sources.length]!;
    return this.frame(kind, src);
  }

  private message(type: 3 | 6 | 7, src: string, router?: string): VrlsMessage {
    const envelope = {
      vrid: this.o.vrid,
      priority: 255,
      maxAdverIntCs: 10,
      addresses: [this.o.vip],
      sender: src,
      senderIncarnation: 0xfffffff0,
      sequence: ++this.seq,
      masterEpoch: 0xffff,
      inReplyTo: 0,
    };
    const conditions = this.o.endSystems.map((a) => ({
      kind: "prefix" as const,
      address: a,
      prefixLength: 32,
    }));
    if (type === 6)
      return {
        ...envelope,
        type,
        rateExceeded: true,
        overflowExceeded: true,
        totalRateBps: 1n << 40n,
        overflowCount: 1_000_000,
        timeUnitMs: 100,
      };
    if (type === 7) return { ...envelope, type, allocationSerial: 0xffffff, conditions };
    return {
      ...envelope,
      type,
      allocationSerial: 0xffffff,
      mode: "exactly-once",
      timerDelayMs: 0,
      assignments: [{ router: router ?? this.o.members[this.o.members.length - 1]!, conditions }],
    };
  }

  private frame(kind: Exclude<AttackKind, "replay">, src: string): Uint8Array {
    const codec = { key: WRONG_KEY, src, dst: VRRP_MULTICAST };
    let ttl = 255;
    let vrrp: Uint8Array;
    const allocation = () => encodeVrls(this.message(3, src), codec);
    switch (kind) {
      case "forged-allocation":
        vrrp = allocation();
        break;
      case "forged-review-request":
        vrrp = encodeVrls(this.message(6, src), codec);
        break;
      case "forged-flow-rate-request":
        vrrp = encodeVrls(this.message(7, src), codec);
        break;
      case "unknown-member-allocation":
        vrrp = encodeVrls(this.message(3, src, "198.18.1.99"), codec);
        break;
      case "ttl-254":
        vrrp = allocation();
        ttl = 254;
        break;
      case "truncated": {
        const full = allocation();
        vrrp = full.subarray(0, 1 + (this.seq % (full.length - 1)));
        break;
      }
      case "over-long": {
        const full = allocation();
        vrrp = new Uint8Array(full.length + 1 + (this.seq % 200));
        vrrp.set(full);
        break;
      }
      case "over-counted": {
        const full = allocation();
        full[3] = 0x7f;
        vrrp = resealVrls(full, codec);
        break;
      }
      case "wrong-version":
        vrrp = allocation();
        vrrp[0] = 0x20 | (vrrp[0]! & 0x0f);
        break;
      case "wrong-type":
        vrrp = allocation();
        vrrp[0] = 0x30 | 15;
        break;
      case "wrong-vrid":
        vrrp = allocation();
        vrrp[1] = (this.o.vrid % 255) + 1;
        break;
      case "bad-checksum":
        vrrp = allocation();
        vrrp[6]! ^= 0x5a;
        break;
      case "random-bytes":
        vrrp = randomBytes(this.seq % 300);
        break;
      case "empty":
        vrrp = new Uint8Array(0);
        break;
    }
    const ip = encodeIpv4({
      src,
      dst: VRRP_MULTICAST,
      protocol: IP_PROTOCOL.vrrp,
      ttl,
      tos: 0xc0,
      payload: vrrp,
    });
    return encodeEthernet({
      dst: "01:00:5e:00:00:12",
      src: this.o.mac,
      etherType: ETHERTYPE.ipv4,
      payload: ip,
    });
  }
}

export async function runVrlsAttack(
  lab: Lab,
  vr: RunningVirtualRouter,
  options: VrlsAttackOptions,
): Promise<VrlsAttackReport> {
  const attacker = options.attacker ?? "es4";
  const streamHosts = options.streamHosts ?? ["es1", "es2", "es3", "es5", "es6"];
  const masterHost = options.master ?? "ra";
  const port = options.port ?? 6100;
  const udpPps = options.udpPps ?? 200;
  const members = [...vr.agents.keys()];
  const memberAddresses = vr.config.members.map((m) => m.address);
  const mac = (
    JSON.parse((await lab.host(attacker).exec("ip -j link show eth0")).stdout) as { address: string }[]
  )[0]!.address;
  const attackerIp = await ipv4Of(lab, attacker);
  const streamAddress = new Map<string, string>();
  for (const h of streamHosts) streamAddress.set(h, await ipv4Of(lab, h));

  // The attacker's raw sockets, in its namespace: it hears the genuine VRLS messages on the
  // LAN (multicast group joined) and keeps some to replay.
  const captured: Uint8Array[] = [];
  const io = await RawIo.open({
    interface: "eth0",
    listen: ["vrrp"],
    netns: lab.namespace(attacker),
    onVrrp: (p) => {
      const ihl = (p[0]! & 0x0f) * 4;
      const count = p[ihl + 3] ?? 0;
      // Only messages with a VRLS extension (signed): a plain advertisement replayed is just one more advertisement.
      if (captured.length < 64 && p.length - ihl > 8 + count * 4)
        captured.push(
          encodeEthernet({
            dst: "01:00:5e:00:00:12",
            src: mac,
            etherType: ETHERTYPE.ipv4,
            payload: Uint8Array.from(p),
          }),
        );
    },
  });

  const server = lab.host("server").remote;
  const receiver = await UdpReceiver.start(server, { port });
  const tcpPort = port + 1000;
  const sinkAgent = await TrafficAgent.launch(server);
  const sink = await sinkAgent.startTcpSink({ ports: [tcpPort] });
  const clients = await Promise.all(streamHosts.map((h) => TrafficAgent.launch(lab.host(h).remote)));
  try {
    // A reallocation now puts signed messages (allocation, responses, confirmations) on the
    // LAN for the attacker to capture; the allocation is taken as "before" once it settles.
    const master = vr.agents.get(masterHost)!;
    await master.call("reallocate", {});
    await master.call("waitIdle", { timeoutMs: 5000 });
    const streams = await Promise.all(
      clients.map((c) =>
        c.startTcpStreams({
          dstIp: "198.18.100.10",
          ports: [tcpPort],
          connections: 1,
          recordsPerSecond: options.tcpRecordsPerSecond ?? 100,
          recordBytes: 100,
        }),
      ),
    );
    const streamMs = options.durationMs + 3000;
    const senders = Promise.all(
      streamHosts.map((h, i) =>
        sendUdpStream(lab.host(h).remote, {
          streamId: port * 10 + i,
          dstIp: "198.18.100.10",
          dstPort: port,
          pps: udpPps,
          durationMs: streamMs,
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, 1000));
    const before = new Map<string, MemberSnapshot>();
    for (const h of members) before.set(h, await snapshot(vr, h));
    const roleEventsBefore = vr.roleEvents.length;

    const frames = new AttackFrames({
      mac,
      vrid: vr.config.spec.vrid,
      vip: vr.config.virtualAddress,
      sources: [attackerIp, ...memberAddresses, "198.18.1.200"],
      members: memberAddresses,
      endSystems: ["198.18.1.11", "198.18.1.12", "198.18.1.13", "198.18.1.14", "198.18.2.11", "198.18.2.12"],
      captured,
    });
    const spoofs = options.garpSpoofs ?? 0;
    const vmac = virtualMac(vr.config.spec.vrid);
    const garpCapture =
      spoofs > 0
        ? await Capture.start(lab.host(attacker).remote, {
            interface: "eth0",
            filter: `(ether dst ${mac} and ip dst 198.18.100.10) or (arp and ether src ${vmac})`,
            snapLength: 96,
          })
        : undefined;
    const spoofAt = Array.from({ length: spoofs }, (_, k) =>
      Math.floor(((k + 0.5) * options.frames) / spoofs),
    );
    const spoofTimes: number[] = [];
    const spoofFrame = gratuitousArpFrame(mac, vr.config.virtualAddress);
    // Crafted before the clock starts (crafting while sending, an HMAC per frame, held the
    // attacker to 29,307 frames/s), so a short duration measures what the socket can send.
    const crafted = Array.from({ length: options.frames }, (_, i) => frames.next(i));
    // Paced: a batch every 5 ms, so the frames spread evenly over the duration.
    let sent = 0;
    let failures = 0;
    const started = performance.now();
    while (sent < options.frames) {
      const due = Math.min(
        options.frames,
        Math.ceil(((performance.now() - started) / options.durationMs) * options.frames),
      );
      for (; sent < due; sent++) {
        if (spoofTimes.length < spoofs && sent === spoofAt[spoofTimes.length]) {
          if (!io.sendFrame(spoofFrame)) failures++;
          spoofTimes.push(Date.now());
        }
        if (!io.sendFrame(crafted[sent]!)) failures++;
      }
      if (sent < options.frames) await new Promise((r) => setTimeout(r, 5));
    }
    const durationMs = performance.now() - started;
    // The last spoof's second re-assertion (1.1 s later) and the frames it misdirects.
    const garp = {
      spoofs: spoofTimes.length,
      misdirected: { udp: 0, tcp: 0 },
      misdirectedBySource: {} as Record<string, { udp: number; tcp: number }>,
      reassertionsOnWire: 0,
      reassertDelaysMs: [] as (number | null)[],
      capture: null as VrlsAttackReport["garp"]["capture"],
    };
    if (garpCapture) {
      await new Promise((r) => setTimeout(r, 1500));
      // The misdirected count excuses stream loss: it must come from a complete capture.
      const stats = await garpCapture.stop();
      const incomplete = captureIncompleteness(stats);
      if (incomplete) throw new Error(`misdirected frames cannot be counted: ${incomplete}`);
      garp.capture = {
        captured: stats.captured ?? 0,
        receivedByFilter: stats.receivedByFilter ?? 0,
        dropped: (stats.droppedByKernel ?? 0) + (stats.droppedByInterface ?? 0),
        complete: true,
      };
      const reassertTimes: number[] = [];
      for await (const rec of garpCapture.reader()) {
        const eth = decodeEthernet(rec.data);
        if (!eth.ok) continue;
        if (eth.value.etherType === ETHERTYPE.arp) {
          const a = decodeArp(eth.value.payload);
          if (a.ok && a.value.senderIp === vr.config.virtualAddress) {
            garp.reassertionsOnWire++;
            reassertTimes.push(rec.tsMs);
          }
          continue;
        }
        const ip = decodeIpv4(eth.value.payload);
        if (!ip.ok) continue;
        const bySource = garp.misdirectedBySource[ip.value.src] ?? { udp: 0, tcp: 0 };
        garp.misdirectedBySource[ip.value.src] = bySource;
        if (ip.value.protocol === IP_PROTOCOL.udp) {
          garp.misdirected.udp++;
          bySource.udp++;
        } else if (ip.value.protocol === IP_PROTOCOL.tcp) {
          garp.misdirected.tcp++;
          bySource.tcp++;
        }
      }
      await garpCapture.remove();
      garp.reassertDelaysMs = spoofTimes.map((t, k) => {
        const next = spoofTimes[k + 1] ?? Number.POSITIVE_INFINITY;
        const first = reassertTimes.find((x) => x >= t - 5 && x < next);
        return first === undefined ? null : Math.round(first - t);
      });
    }
    // Read once every member has drained its socket: all its guard passed has been
    // delivered to the agent or counted as dropped in the receive buffer. Socket counts
    // "before" are those read before the guard's "before" counters: a genuine peer packet
    // passing the guard between the two reads is in the sockets' count and not in the
    // guard's, and with socket counts read after the guard it was missing from the
    // difference for good (once in CI: passed 10,564, delivered 10,563). "After" counts
    // are read after the guard's, so everything the guard counted has had its chance.
    const after = new Map<string, MemberSnapshot>();
    const passedOf = (x: MemberSnapshot) => (x.rxGuard.passed_peer ?? 0) + (x.rxGuard.passed_other ?? 0);
    const drainUntil = Date.now() + 10_000;
    for (const h of members) {
      const b = before.get(h)!;
      for (;;) {
        const a = await snapshot(vr, h);
        const delivered =
          a.rxReceived - b.beforeGuardRead.rxReceived + (a.rxDrops - b.beforeGuardRead.rxDrops);
        if (delivered >= passedOf(a) - passedOf(b)) {
          after.set(h, a);
          break;
        }
        if (Date.now() > drainUntil)
          throw new Error(
            `${h}: its guard passed ${passedOf(a) - passedOf(b)} packets, its socket delivered ${delivered} within 10 s`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const roleEvents = vr.roleEvents.slice(roleEventsBefore).map((e) => `${e.host}:${e.role}`);

    const streamReports = await Promise.all(streams.map((s) => s.stop()));
    const sentUdp = await senders;
    await new Promise((r) => setTimeout(r, 300));
    const tcpWritten = streamReports.reduce((sum, t) => sum + t.totals.recordsWritten, 0);
    const sinkReport = await sink.stop();
    const report = await receiver.stop();
    const udp = { sent: 0, received: 0, lost: 0, duplicated: 0 };
    const udpByHost: VrlsAttackReport["udpByHost"] = {};
    for (const [i, s] of sentUdp.entries()) {
      const r = analyzeStream({
        sender: s,
        receiver: report.streams.find((x) => x.streamId === port * 10 + i),
      });
      const address = streamAddress.get(streamHosts[i]!)!;
      const misdirected = garp.misdirectedBySource[address]?.udp ?? 0;
      udpByHost[streamHosts[i]!] = {
        address,
        sent: r.sent,
        lost: r.lost,
        misdirected,
        explained: r.lost === misdirected,
      };
      udp.sent += r.sent;
      udp.received += r.received;
      udp.lost += r.lost;
      udp.duplicated += r.duplicated.receiver;
    }
    const isReject = (k: string) => k.startsWith("rx.rejected.") || k.startsWith("rx.limited.");
    const shedKeys = (k: string) => !k.startsWith("passed_");
    const masterBefore = before.get(masterHost)!.allocation ?? {};
    const masterAfter = after.get(masterHost)!.allocation ?? {};
    return {
      attacker,
      frames: sent,
      framesPerKind: frames.perKind,
      sendFailures: failures,
      durationMs: Math.round(durationMs),
      framesPerSecond: Math.round(sent / (durationMs / 1000)),
      captured: captured.length,
      members: members.map((h) => {
        const b = before.get(h)!;
        const a = after.get(h)!;
        const tx = (k: string) => (a.rx[k] ?? 0) - (b.rx[k] ?? 0);
        return {
          host: h,
          roleBefore: b.role,
          roleAfter: a.role,
          rssBefore: b.rssBytes,
          rssAfter: a.rssBytes,
          rejected: delta(b.rx, a.rx, isReject),
          shed: delta(b.rxGuard, a.rxGuard, shedKeys),
          passed: {
            peer: (a.rxGuard.passed_peer ?? 0) - (b.rxGuard.passed_peer ?? 0),
            other: (a.rxGuard.passed_other ?? 0) - (b.rxGuard.passed_other ?? 0),
          },
          rxDrops: a.rxDrops - b.rxDrops,
          sent: { advertisements: tx("tx.advertisement"), garp: tx("tx.garp"), allocations: tx("tx.type3") },
          arpConflicts: tx("rx.arpConflict"),
          garpReasserts: tx("tx.garpReassert"),
          ownersUnchanged: JSON.stringify(a.owners) === JSON.stringify(b.owners),
        };
      }),
      roleEvents,
      allocationBefore: masterBefore,
      allocationAfter: masterAfter,
      udp,
      udpByHost,
      tcp: {
        recordsWritten: tcpWritten,
        recordsReceived: sinkReport.totals.records,
        discontinuities: sinkReport.totals.discontinuities,
        resets: sinkReport.totals.resets,
      },
      garp,
    };
  } finally {
    io.close();
    await Promise.all([...clients, sinkAgent].map((c) => c.close().catch(() => undefined)));
  }
}

/** Table + the JSON line (bench convention). */
export function printVrlsAttack(r: VrlsAttackReport): void {
  console.log(
    `attack from ${r.attacker}: ${r.frames} frames in ${(r.durationMs / 1000).toFixed(1)} s (${r.framesPerSecond}/s), ${r.sendFailures} send failures, ${r.captured} genuine messages captured for replay`,
  );
  console.table(r.framesPerKind);
  console.table(
    r.members.map((m) => ({
      host: m.host,
      role: m.roleBefore === m.roleAfter ? m.roleAfter : `${m.roleBefore}->${m.roleAfter}`,
      "rss MiB before": (m.rssBefore / 2 ** 20).toFixed(1),
      "rss MiB after": (m.rssAfter / 2 ** 20).toFixed(1),
      "shed (kernel)": Object.values(m.shed).reduce((a, b) => a + b, 0),
      "rejected (agent)": Object.values(m.rejected).reduce((a, b) => a + b, 0),
      "rx drops": m.rxDrops,
      adverts: m.sent.advertisements,
      garp: m.sent.garp,
      "arp conflicts": m.arpConflicts,
      allocations: m.sent.allocations,
      "owners unchanged": m.ownersUnchanged,
    })),
  );
  for (const m of r.members)
    console.log(`${m.host} shed ${JSON.stringify(m.shed)} rejected ${JSON.stringify(m.rejected)}`);
  console.log(
    `udp sent ${r.udp.sent} received ${r.udp.received} lost ${r.udp.lost} duplicated ${r.udp.duplicated}; tcp records written ${r.tcp.recordsWritten} received ${r.tcp.recordsReceived} discontinuities ${r.tcp.discontinuities} resets ${r.tcp.resets}; role events ${r.roleEvents.length}`,
  );
  if (r.garp.spoofs > 0)
    console.log(
      `gratuitous ARP claiming the VIP from ${r.attacker}: ${r.garp.spoofs} sent; stream frames misdirected to ${r.attacker}: udp ${r.garp.misdirected.udp}, tcp ${r.garp.misdirected.tcp}; master's re-assertions on the wire ${r.garp.reassertionsOnWire}, first after each spoof (ms) ${JSON.stringify(r.garp.reassertDelaysMs)}; capture ${JSON.stringify(r.garp.capture)}`,
    );
  console.table(
    Object.entries(r.udpByHost).map(([host, u]) => ({
      host,
      address: u.address,
      "udp sent": u.sent,
      "udp lost": u.lost,
      "misdirected to attacker": u.misdirected,
      "lost == misdirected": u.explained,
    })),
  );
  console.log(JSON.stringify({ vrls_attack: r }));
}
