/**
 * A discrete-event model of a hub LAN with several RouterCores and end systems,
 * used by the tests to check the protocol (election, allocation, every hand-off
 * mode, failover) over lossy, delayed control messages without sockets. Every
 * router sees every end-system packet at the same instant (the hub) and applies
 * its dispositions exactly as the agent's data plane does: forward, drop, hold
 * (queued until markers), observe (forward and record per-flow markers).
 *
 * Optionally a substitution server (CoordinatorCore, seed Figs. 14-16) on the same LAN: it
 * hears what is multicast or sent to it, and the flows' sources answer its ICMP
 * information requests after `minDelayMs`. Every control message is logged (`log`).
 */
import {
  type CoordinatorAction,
  CoordinatorCore,
  type CoordinatorCoreOptions,
} from "../lib/roles/vrls/coordinator-core.ts";
import {
  decideExactlyOnce,
  decideSequenceNumber,
  FlowObserver,
  type PacketInfo,
} from "../lib/roles/vrls/handoff.ts";
import type { Disposition } from "../lib/roles/vrls/member.ts";
import type { FlowMarker, VrlsMessage } from "../lib/roles/vrls/messages.ts";
import { type CoreAction, RouterCore, type RouterCoreOptions } from "../lib/roles/vrls/router-core.ts";

export interface SimFlow {
  src: string;
  dst: string;
  protocol: 6 | 17;
  sport: number;
  dport: number;
  /** Milliseconds between packets. */
  periodMs: number;
}

export interface SimOptions {
  routers: RouterCoreOptions[];
  flows: SimFlow[];
  /** Control message one-way delay range (ms) and loss probability. */
  minDelayMs: number;
  maxDelayMs: number;
  lossRate: number;
  seed: number;
  /** Startup time of each router (ms); default all at 0. */
  startAt?: number[];
  /** A substitution server and when it starts (ms). */
  coordinator?: { options: CoordinatorCoreOptions; startAt: number };
}

/** One control message on the simulated LAN (lost ones included, flagged). */
export interface SimMessage {
  at: number;
  /** Who put it on the LAN (the server, for a transferred message). */
  src: string;
  /** Whose message it is (differs from `src` for a transfer, P25). */
  sender: string;
  to: "all" | string;
  type: VrlsMessage["type"];
  lost: boolean;
}

interface SimRouter {
  core: RouterCore;
  alive: boolean;
  dispositions: ReadonlyMap<string, Disposition>;
  held: Map<string, PacketInfo[]>;
  /** Per condition moved from prehold to hold: the id of the last packet held before. */
  boundaries: Map<string, number>;
  observers: Map<string, FlowObserver>;
  sentMarkers: Map<string, FlowMarker[]>;
  forwarded: number;
}

export interface PacketRecord {
  id: number;
  at: number;
  flow: number;
  forwards: string[];
}

export class LanSimulation {
  now = 0;
  readonly routers: SimRouter[];
  readonly packets: PacketRecord[] = [];
  private readonly queue: { at: number; seq: number; run: () => void }[] = [];
  private seq = 0;
  private rng: () => number;
  private readonly packetInfo = new Map<number, { p: PacketInfo; src: string }>();
  private tcpSeq: number[];
  controlMessages = 0;
  controlLost = 0;
  readonly log: SimMessage[] = [];
  /** The substitution server, when the model has one. */
  readonly coordinator: { core: CoordinatorCore; alive: boolean } | null;

  constructor(private readonly opts: SimOptions) {
    this.rng = mulberry32(opts.seed);
    this.routers = opts.routers.map((o) => ({
      core: new RouterCore(o),
      alive: true,
      dispositions: new Map(),
      held: new Map(),
      boundaries: new Map(),
      observers: new Map(),
      sentMarkers: new Map(),
      forwarded: 0,
    }));
    this.tcpSeq = opts.flows.map(() => 1000);
    this.coordinator = opts.coordinator
      ? { core: new CoordinatorCore(opts.coordinator.options), alive: true }
      : null;
  }

  /** The substitution server dies (no keepalive, no message, from now on). */
  killCoordinator(): void {
    if (this.coordinator) this.coordinator.alive = false;
  }

  start(): void {
    const c = this.coordinator;
    if (c)
      this.schedule(this.opts.coordinator?.startAt ?? 0, () =>
        this.applyCoordinator(c.core.handle({ type: "start", now: this.now })),
      );
    for (const [i, r] of this.routers.entries()) {
      this.schedule(this.opts.startAt?.[i] ?? 0, () =>
        this.apply(r, r.core.handle({ type: "startup", now: this.now })),
      );
    }
    for (const [i, f] of this.opts.flows.entries())
      this.schedule(this.rng() * f.periodMs, () => this.sendPacket(i));
    this.schedule(1, () => this.tickAll());
  }

  /** Runs the model until `until` (ms). */
  runUntil(until: number): void {
    while (this.queue.length > 0) {
      this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.queue[0];
      if (!next || next.at > until) break;
      this.queue.shift();
      this.now = next.at;
      next.run();
    }
    this.now = until;
  }

  /** Control messages are lost for `ms` from now (a partition or a stalled LAN). */
  partition(ms: number): void {
    this.partitionUntil = this.now + ms;
  }

  private partitionUntil = Number.NEGATIVE_INFINITY;

  kill(index: number): void {
    const r = this.routers[index];
    if (r) r.alive = false;
  }

  reallocate(explicit?: ReadonlyMap<string, string>): void {
    for (const r of this.routers) {
      if (r.alive && r.core.role === "master")
        this.apply(r, r.core.handle({ type: "reallocate", now: this.now, explicit }));
    }
  }

  master(): SimRouter | undefined {
    return this.routers.find((r) => r.alive && r.core.role === "master");
  }

  /** Packets sent in [from, to) and how many routers forwarded each. */
  tally(from: number, to: number): { sent: number; lost: number; duplicated: number; lostIds: number[] } {
    let sent = 0;
    let lost = 0;
    let duplicated = 0;
    const lostIds: number[] = [];
    for (const p of this.packets) {
      if (p.at < from || p.at >= to) continue;
      sent++;
      if (p.forwards.length === 0) {
        lost++;
        lostIds.push(p.id);
      }
      if (p.forwards.length > 1) duplicated += p.forwards.length - 1;
    }
    return { sent, lost, duplicated, lostIds };
  }

  private schedule(delay: number, run: () => void): void {
    this.queue.push({ at: this.now + delay, seq: this.seq++, run });
  }

  private tickAll(): void {
    for (const r of this.routers) if (r.alive) this.apply(r, r.core.handle({ type: "tick", now: this.now }));
    const c = this.coordinator;
    if (c?.alive && this.now >= (this.opts.coordinator?.startAt ?? 0))
      this.applyCoordinator(c.core.handle({ type: "tick", now: this.now }));
    this.schedule(1, () => this.tickAll());
  }

  /** The server's actions; `handling` is the message it is handling (for a transfer, P25). */
  private applyCoordinator(
    actions: CoordinatorAction[],
    handling?: { from: string; message: VrlsMessage },
  ): void {
    const c = this.coordinator;
    if (!c?.alive) return;
    const self = c.core.opts.self;
    for (const a of actions) {
      if (a.type === "send") this.sendFrom(self, self, a.to, a.message);
      else if (a.type === "transfer" && handling)
        for (const to of a.to) this.sendFrom(self, handling.from, { member: to }, handling.message, self);
      else if (a.type === "sendInfoRequest") {
        // Every flow's source answers (ICMP 16) after the minimum delay.
        for (const address of new Set(this.opts.flows.map((f) => f.src)))
          this.schedule(Math.max(this.opts.minDelayMs, 0.01), () => {
            if (c.alive) this.applyCoordinator(c.core.handle({ type: "infoReply", now: this.now, address }));
          });
      }
    }
  }

  private sendPacket(i: number): void {
    const f = this.opts.flows[i];
    if (!f) return;
    const id = this.packets.length;
    const rec: PacketRecord = { id, at: this.now, flow: i, forwards: [] };
    this.packets.push(rec);
    const flowKey = `${f.protocol} ${f.src}:${f.sport}>${f.dst}:${f.dport}`;
    const p: PacketInfo = { id, flow: flowKey, identity: `pkt${id}`, protocol: f.protocol };
    if (f.protocol === 6) {
      const seq = this.tcpSeq[i] ?? 0;
      p.tcp = { seq, ack: 1, payloadLength: 100, syn: false, fin: false };
      this.tcpSeq[i] = (seq + 100) >>> 0;
    }
    this.packetInfo.set(id, { p, src: f.src });
    for (const r of this.routers) {
      if (!r.alive || r.core.role === "initialize") continue;
      const d = r.dispositions.get(f.src);
      const name = r.core.opts.self;
      if (d === undefined) {
        // Not allocated to anyone: the master forwards and learns it (passive discovery).
        if (r.core.role === "master") {
          rec.forwards.push(name);
          this.apply(r, r.core.handle({ type: "learned", now: this.now, address: f.src, by: "passive" }));
        }
      } else if (d === "forward") rec.forwards.push(name);
      else if (d === "observe") {
        rec.forwards.push(name);
        this.observer(r, f.src).forwarded(p);
      } else if (d === "hold" || d === "prehold") {
        const h = r.held.get(f.src) ?? [];
        h.push(p);
        r.held.set(f.src, h);
      }
    }
    this.schedule(f.periodMs, () => this.sendPacket(i));
  }

  private observer(r: SimRouter, condition: string): FlowObserver {
    let o = r.observers.get(condition);
    if (!o) {
      o = new FlowObserver();
      r.observers.set(condition, o);
    }
    return o;
  }

  private deliverHeld(r: SimRouter, ids: number[]): void {
    for (const id of ids) this.packets[id]?.forwards.push(r.core.opts.self);
  }

  private apply(r: SimRouter, actions: CoreAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case "dataplane": {
          for (const [c, d] of a.dispositions) {
            const before = r.dispositions.get(c);
            // As the agent's data plane: the old owner observes now, what is held came before.
            if (d === "hold" && before === "prehold") r.boundaries.set(c, this.packets.length - 1);
            if (d !== "hold") r.boundaries.delete(c);
            // prehold -> anything but hold: a superseded hand-off (the member stops it first).
            if (before === "prehold" && d !== "hold" && d !== "prehold") r.held.delete(c);
            if (d !== "observe" && r.dispositions.get(c) !== "observe") r.observers.delete(c);
            if (d === "observe" && r.dispositions.get(c) !== "observe")
              r.observers.set(c, new FlowObserver());
          }
          r.dispositions = a.dispositions;
          break;
        }
        case "stopAndSendMarkers": {
          const key = `${a.to} ${a.epoch}.${a.version} ${a.conditions.join(",")}`;
          let markers = r.sentMarkers.get(key);
          if (!markers) {
            markers = a.conditions.flatMap(
              (c) => r.observers.get(c)?.markers(a.mode === "timer" ? "exactly-once" : a.mode) ?? [],
            );
            r.sentMarkers.set(key, markers);
          }
          // Stopped: from now on these conditions are dropped (the dataplane action follows).
          const next = new Map(r.dispositions);
          for (const c of a.conditions) if (next.get(c) === "observe") next.set(c, "drop");
          r.dispositions = next;
          this.send(
            r,
            { member: a.to },
            {
              type: "markers",
              epoch: a.epoch,
              version: a.version,
              conditions: a.conditions,
              markers,
            },
          );
          break;
        }
        case "resolveHeld": {
          const held = a.conditions.flatMap((c) => r.held.get(c) ?? []).sort((x, y) => x.id - y.id);
          const preBoundary = new Set<number>();
          for (const c of a.conditions) {
            const boundary = r.boundaries.get(c) ?? -1;
            for (const p of r.held.get(c) ?? []) if (p.id <= boundary) preBoundary.add(p.id);
            r.boundaries.delete(c);
          }
          for (const c of a.conditions) r.held.delete(c);
          const d =
            a.mode === "sequence-number"
              ? decideSequenceNumber(held, a.markers, preBoundary)
              : decideExactlyOnce(held, a.markers, preBoundary);
          this.deliverHeld(r, d.release);
          break;
        }
        case "stopForwarding": {
          const next = new Map(r.dispositions);
          for (const c of a.conditions) {
            next.set(c, "drop");
            // The queue blocks the condition: what it held is dropped.
            r.held.delete(c);
          }
          r.dispositions = next;
          break;
        }
        case "releaseHeld": {
          const held = a.conditions.flatMap((c) => r.held.get(c) ?? []).sort((x, y) => x.id - y.id);
          for (const c of a.conditions) r.held.delete(c);
          this.deliverHeld(
            r,
            held.map((p) => p.id),
          );
          break;
        }
        case "send":
          this.send(r, a.to, a.message);
          break;
        case "sendAdvertisement": {
          for (const other of this.routers) {
            if (other === r) continue;
            this.transmit(other, () => ({
              type: "advertisement",
              now: this.now,
              from: r.core.opts.self,
              priority: a.priority,
              maxAdverIntCs: a.advertIntervalCs,
            }));
          }
          const c = this.coordinator;
          if (c && a.priority > 0)
            this.deliverToCoordinator(() =>
              c.core.handle({ type: "advertisement", now: this.now, from: r.core.opts.self }),
            );
          break;
        }
        default:
          break;
      }
    }
  }

  private send(r: SimRouter, to: "all" | { member: string }, message: VrlsMessage): void {
    const self = r.core.opts.self;
    this.sendFrom(self, self, to, message);
  }

  /** A control message from `src` (on behalf of `sender`, transferred `via` the server). */
  private sendFrom(
    src: string,
    sender: string,
    to: "all" | { member: string },
    message: VrlsMessage,
    via?: string,
  ): void {
    const record: SimMessage = {
      at: this.now,
      src,
      sender,
      to: to === "all" ? "all" : to.member,
      type: message.type,
      lost: false,
    };
    this.log.push(record);
    let lostOnce = false;
    for (const other of this.routers) {
      if (other.core.opts.self === src) continue;
      if (to !== "all" && other.core.opts.self !== to.member) continue;
      if (
        !this.transmit(other, () => ({
          type: "message",
          now: this.now,
          from: sender,
          message,
          ...(via ? { via } : {}),
        }))
      )
        lostOnce = true;
    }
    const c = this.coordinator;
    if (c && src !== c.core.opts.self && (to === "all" || to.member === c.core.opts.self)) {
      if (
        !this.deliverToCoordinator(
          () => c.core.handle({ type: "message", now: this.now, from: sender, message }),
          {
            from: sender,
            message,
          },
        )
      )
        lostOnce = true;
    }
    record.lost = lostOnce;
  }

  private lost(): boolean {
    this.controlMessages++;
    if (this.now < this.partitionUntil || this.rng() < this.opts.lossRate) {
      this.controlLost++;
      return true;
    }
    return false;
  }

  private delay(): number {
    return this.opts.minDelayMs + this.rng() * (this.opts.maxDelayMs - this.opts.minDelayMs);
  }

  private transmit(to: SimRouter, event: () => Parameters<RouterCore["handle"]>[0]): boolean {
    if (this.lost()) return false;
    this.schedule(this.delay(), () => {
      if (to.alive) this.apply(to, to.core.handle(event()));
    });
    return true;
  }

  private deliverToCoordinator(
    event: () => CoordinatorAction[],
    handling?: { from: string; message: VrlsMessage },
  ): boolean {
    if (this.lost()) return false;
    this.schedule(this.delay(), () => {
      if (this.coordinator?.alive) this.applyCoordinator(event(), handling);
    });
    return true;
  }
}

/** A small seeded PRNG so a failing simulation can be replayed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
