/**
 * The substitution server (seed Figs. 14-16, procedures P20-P33; glossary: Coordinator) as a
 * pure, clock-injected core; vrls-coordinator.agent.ts does its I/O. It forwards nothing and:
 *
 *  - registers with the master router as the special member (type 9 -> 10, Fig. 15 P20)
 *    and repeats the registration as its keepalive (every router hears it on 224.0.0.18);
 *  - collects the end systems with ICMP information requests (15 -> 16, P21-P22), or
 *    takes the configured fixed conditions (prefixes, hash buckets);
 *  - allocates (type 3, P23-P24) with the same MasterEngine as a master router, starting
 *    from the allocation it last saw on the LAN so that nothing moves when it takes over.
 *    The master router records the allocation without a response (P24): the engine does not
 *    wait for it (its silent member); only the backups respond (type 4);
 *  - transfers each backup's response to the master router (P25), as received (the
 *    backup's own sender, sequence and HMAC), and to the other backups, which may be the
 *    other side of a hand-off; the master's sequence number information goes to the backup
 *    directly (P26);
 *  - runs reviews (Fig. 16): review requests (6) from the master and the backups (P30), flow
 *    rate requests (7) to every router and their responses (8, P31), the decision (P32);
 *    when a reallocation is necessary it first collects the end systems again (ICMP 15 ->
 *    16, P33, "in a similar manner to the initial operation") and only then reallocates by
 *    measured rate (an end system found anew counts 0 bit/s).
 *
 * Member health: the master's advertisements, the backups' responses (type 2, which they
 * copy to the server) and their confirmations. When the server stops, the routers notice
 * the missing keepalive and the master does the work itself (router-core.ts).
 */
import { type MasterAction, MasterEngine, type MasterSnapshot } from "./master.ts";
import type { AllocationEntry, Destination, HandoffMode, VrlsMessage } from "./messages.ts";
import { type ReviewAction, Reviewer, type ReviewOptions } from "./reviewer.ts";
import type { ConditionScheme } from "./router-core.ts";

export interface CoordinatorCoreOptions {
  self: string;
  /** The routers of the virtual router (registered address, priority). */
  routers: readonly { id: string; priority: number }[];
  mode: HandoffMode;
  retryMs: number;
  maxRetries: number;
  responseTimeoutMs: number;
  /** How long end systems may take to answer ICMP information requests (P22 and P33). */
  discoveryMs: number;
  /** Repeated information requests (address conditions, P21-P22); 0: only at the start. */
  infoRequestIntervalMs: number;
  /** Registration (type 9) repeated as the keepalive. */
  keepaliveMs: number;
  conditions: ConditionScheme["kind"];
  /** Prefix or bucket conditions (fixed); address conditions are discovered (P21-P22). */
  fixedConditions: readonly string[];
  review?: ReviewOptions;
}

export type CoordinatorAction =
  | { type: "send"; to: Destination; message: VrlsMessage }
  /** P25: transfer the message being handled, unchanged, to these routers. */
  | { type: "transfer"; to: string[] }
  /** ICMP information requests (type 15) on every subnet: P22 (discovery) or P33 (review). */
  | { type: "sendInfoRequest"; reason: "discovery" | "review" }
  | { type: "log"; message: string };

export type CoordinatorEvent =
  | { type: "start"; now: number }
  | { type: "tick"; now: number }
  /** A standard advertisement (type 1) of the master router. */
  | { type: "advertisement"; now: number; from: string }
  | { type: "message"; now: number; from: string; message: VrlsMessage }
  /** An ICMP information reply (type 16) from an end system. */
  | { type: "infoReply"; now: number; address: string };

/** P33 in progress: the review decided to reallocate; the end systems are asked first. */
interface Recollection {
  startedAt: number;
  rates: Map<string, number>;
  /** End systems known when it started, and those that answered since. */
  known: Set<string>;
  answered: Set<string>;
}

export interface CoordinatorSnapshot {
  self: string;
  registered: boolean;
  masterRouter: string | null;
  master: MasterSnapshot | null;
  review: ReturnType<Reviewer["snapshot"]> | null;
  endSystems: string[];
  recollecting: { sinceMs: number; answered: string[] } | null;
  counters: Record<string, number>;
}

export class CoordinatorCore {
  readonly engine: MasterEngine;
  readonly reviewer: Reviewer | null;
  private registered = false;
  private masterRouter: string | null = null;
  /** The allocation last seen on the LAN (from the master before we registered, or ours). */
  private seen: { epoch: number; version: number; entries: AllocationEntry[] } = {
    epoch: 0,
    version: 0,
    entries: [],
  };
  private lastKeepalive = Number.NEGATIVE_INFINITY;
  private lastInfoRequest = Number.NEGATIVE_INFINITY;
  private readonly endSystems = new Map<string, number>();
  private recollection: Recollection | null = null;
  readonly counters: Record<string, number> = {};

  constructor(readonly opts: CoordinatorCoreOptions) {
    this.engine = new MasterEngine({
      self: opts.self,
      members: opts.routers,
      mode: opts.mode,
      retryMs: opts.retryMs,
      maxRetries: opts.maxRetries,
      responseTimeoutMs: opts.responseTimeoutMs,
      discoveryMs: opts.discoveryMs,
    });
    this.reviewer = opts.review ? new Reviewer(opts.self, opts.review) : null;
  }

  get isRegistered(): boolean {
    return this.registered;
  }

  /** The allocation last seen on the LAN or sent (a confirmation is read against it). */
  get lastAllocation(): { epoch: number; version: number; entries: readonly AllocationEntry[] } {
    return this.seen;
  }

  handle(event: CoordinatorEvent): CoordinatorAction[] {
    const out: CoordinatorAction[] = [];
    switch (event.type) {
      case "start":
        this.keepalive(event.now, out);
        this.infoRequest(event.now, "discovery", out);
        break;
      case "tick":
        this.tick(event.now, out);
        break;
      case "advertisement":
        this.onAdvertisement(event.from, event.now, out);
        break;
      case "message":
        this.onMessage(event.from, event.message, event.now, out);
        break;
      case "infoReply":
        this.onInfoReply(event.address, event.now);
        break;
    }
    return out;
  }

  snapshot(now: number): CoordinatorSnapshot {
    const r = this.recollection;
    return {
      self: this.opts.self,
      registered: this.registered,
      masterRouter: this.masterRouter,
      master: this.engine.isActive ? this.engine.snapshot(now) : null,
      review: this.reviewer?.snapshot(now) ?? null,
      endSystems: [...this.endSystems.keys()].sort(),
      recollecting: r ? { sinceMs: Math.round(now - r.startedAt), answered: [...r.answered].sort() } : null,
      counters: { ...this.counters },
    };
  }

  private count(k: string): void {
    this.counters[k] = (this.counters[k] ?? 0) + 1;
  }

  private healthy(now: number): string[] {
    return this.engine
      .snapshot(now)
      .members.filter((m) => m.condition !== "faulty")
      .map((m) => m.id);
  }

  private perform(actions: readonly (MasterAction | ReviewAction)[], now: number, out: CoordinatorAction[]) {
    for (const a of actions) {
      if (a.type === "log") out.push(a);
      else if (a.type === "send") {
        if (a.message.type === "allocation") this.seen = { ...a.message, entries: a.message.entries };
        out.push(a);
      } else if (a.type === "reallocateByRate") this.startRecollection(a.rates, now, out);
    }
  }

  // P20 + keepalive: the registration goes to every router (the master answers with type 10).
  private keepalive(now: number, out: CoordinatorAction[]): void {
    this.lastKeepalive = now;
    out.push({
      type: "send",
      to: "all",
      message: { type: "registration", epoch: this.seen.epoch, role: "coordinator" },
    });
  }

  private infoRequest(now: number, reason: "discovery" | "review", out: CoordinatorAction[]): void {
    // Fixed conditions need no discovery (P22); the review's collection (P33) always asks.
    if (reason === "discovery" && this.opts.conditions !== "address") return;
    this.lastInfoRequest = now;
    this.count(`infoRequests.${reason}`);
    out.push({ type: "sendInfoRequest", reason });
  }

  private tick(now: number, out: CoordinatorAction[]): void {
    if (now - this.lastKeepalive >= this.opts.keepaliveMs) this.keepalive(now, out);
    if (
      this.opts.infoRequestIntervalMs > 0 &&
      this.recollection === null &&
      now - this.lastInfoRequest >= this.opts.infoRequestIntervalMs
    )
      this.infoRequest(now, "discovery", out);
    if (!this.registered) return;
    this.finishRecollection(now, out);
    this.perform(this.engine.onTick(now), now, out);
    if (this.reviewer)
      this.perform(this.reviewer.onTick(now, this.engine.allocationInForce, this.healthy(now)), now, out);
  }

  private onAdvertisement(from: string, now: number, out: CoordinatorAction[]): void {
    if (!this.opts.routers.some((r) => r.id === from)) {
      this.count("rx.unknownSender");
      return;
    }
    // The master router's advertisements: it is alive, and it is the one that records the
    // allocations without confirming them (P24) and forwards what is not allocated yet.
    if (this.masterRouter !== from) {
      this.masterRouter = from;
      this.engine.unallocatedForwarder = from;
      this.perform(this.engine.setSilentMember(from, now), now, out);
    }
    if (this.registered)
      this.perform(
        this.engine.onResponse(from, { type: "response", priority: 0, epoch: 0, version: 0 }, now),
        now,
        out,
      );
  }

  private onMessage(from: string, m: VrlsMessage, now: number, out: CoordinatorAction[]): void {
    if (!this.opts.routers.some((r) => r.id === from)) {
      this.count("rx.unknownSender");
      return;
    }
    switch (m.type) {
      case "registrationAck":
        if (m.accepted && m.member === this.opts.self && !this.registered) {
          this.registered = true;
          if (this.masterRouter !== from) {
            this.masterRouter = from;
            this.engine.unallocatedForwarder = from;
          }
          this.engine.setSilentMember(from, now);
          // Start from the allocation in force: the same owners, a new series (no hand-off).
          this.perform(
            this.engine.start(now, Math.max(this.seen.epoch, m.epoch), this.seen.entries, null),
            now,
            out,
          );
          if (this.opts.fixedConditions.length > 0) this.engine.addConditions(this.opts.fixedConditions);
          if (this.opts.conditions === "address") this.engine.addConditions(this.endSystems.keys());
          this.engine.requestReallocation();
          out.push({
            type: "log",
            message: `registered with master ${from}; allocating from ${this.seen.entries.length} conditions`,
          });
        }
        return;
      case "allocation":
        if (!this.registered) this.seen = { epoch: m.epoch, version: m.version, entries: m.entries };
        return;
      case "response":
        if (this.registered) this.perform(this.engine.onResponse(from, m, now), now, out);
        return;
      case "confirmation": {
        if (!this.registered) return;
        if (from === this.masterRouter) {
          // P24: the master router does not respond to our allocations; a device that does is
          // counted (and not waited for), its message not passed on.
          this.count("rx.confirmationFromMaster");
        } else {
          // P25: the backup's response goes on to the master router (and to the other backups).
          const to = this.opts.routers.map((r) => r.id).filter((id) => id !== from && id !== this.opts.self);
          if (to.length > 0) {
            this.count("tx.transferredConfirmations");
            out.push({ type: "transfer", to });
          }
        }
        this.perform(this.engine.onConfirmation(from, m, now), now, out);
        return;
      }
      case "reviewRequest":
        // P30: from the master router or a backup.
        if (this.registered && this.reviewer)
          this.perform(
            this.reviewer.onReviewRequest(
              from,
              now,
              this.healthy(now),
              this.engine.snapshot(now).epoch,
              true,
            ),
            now,
            out,
          );
        return;
      case "rateResponse":
        // P31 -> P32.
        if (this.registered && this.reviewer)
          this.perform(
            this.reviewer.onRateResponse(from, m, now, this.engine.allocationInForce, this.healthy(now)),
            now,
            out,
          );
        return;
      default:
        return;
    }
  }

  private onInfoReply(address: string, now: number): void {
    this.count("rx.infoReply");
    this.endSystems.set(address, now);
    const r = this.recollection;
    if (r) {
      r.answered.add(address);
      return;
    }
    if (this.opts.conditions === "address") this.engine.addConditions([address]);
  }

  /** P32 decided to reallocate: P33, the end systems are asked again first. */
  private startRecollection(rates: Map<string, number>, now: number, out: CoordinatorAction[]): void {
    this.recollection = {
      startedAt: now,
      rates,
      known: new Set(this.endSystems.keys()),
      answered: new Set(),
    };
    out.push({
      type: "log",
      message: "review: reallocation necessary; collecting the end systems first (P33)",
    });
    this.infoRequest(now, "review", out);
  }

  /** The collection is over when every known end system answered, or after `discoveryMs`. */
  private finishRecollection(now: number, out: CoordinatorAction[]): void {
    const r = this.recollection;
    if (!r) return;
    const everyone = r.known.size > 0 && [...r.known].every((a) => r.answered.has(a));
    if (!everyone && now - r.startedAt < this.opts.discoveryMs) return;
    this.recollection = null;
    if (this.opts.conditions === "address") this.engine.addConditions(r.answered);
    // New end systems have no measured rate yet: 0 bit/s (seed).
    this.engine.requestReallocation(undefined, r.rates);
    this.count("reviewReallocations");
    out.push({
      type: "log",
      message: `review: ${r.answered.size} end system(s) answered in ${Math.round(now - r.startedAt)} ms; reallocating by rate (P33)`,
    });
  }
}
