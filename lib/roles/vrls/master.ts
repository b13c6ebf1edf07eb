/**
 * The master's side of the load-sharing extension (seed: Initial Operation,
 * Figs. 9A, 12): health of the backups from their responses (type 2), the
 * conditions to share (from discovery), allocation (type 3) with epochs and
 * versions, retransmission until every healthy member confirms (type 4) that
 * its hand-offs are done, and reallocation when a member fails or returns.
 * Pure and clock-injected. The master's own forwarding is run by its
 * MemberEngine, which receives the allocations like everybody else.
 */
import { ipToInt } from "../../topology/address.ts";
import { type Assignment, allocateByRate, allocateEqualCounts } from "./allocation.ts";
import type { AllocationEntry, Destination, HandoffMode, VrlsMessage } from "./messages.ts";
import { compareVersion } from "./messages.ts";

export type MemberCondition = "working" | "suspended" | "faulty";

export interface MasterOptions {
  self: string;
  /** Every configured member (registered address and priority), ourselves included. */
  members: readonly { id: string; priority: number }[];
  mode: HandoffMode;
  retryMs: number;
  /** Retransmissions without any confirmation before a member is declared faulty. */
  maxRetries: number;
  /** No response (type 2) for this long: the member is faulty (seed: "receiving no response ... for a certain period"). */
  responseTimeoutMs: number;
  /** Time to collect end systems after becoming master before the first allocation (Fig. 12, P2). */
  discoveryMs: number;
  /** A faulty member that answers again gets conditions only after answering this long (issue 6). */
  rejoinHoldDownMs?: number;
  /** Seeded faults (lib/roles/seeded-faults.ts); absent: none. */
  faults?: readonly string[];
}

/** Seeded fault vrls-alloc-off-by-one: one condition of the last member goes to the first. */
function offByOne(next: Map<string, string>, members: readonly string[]): void {
  const [first, last] = [members[0], members.at(-1)];
  if (first === undefined || last === undefined || first === last) return;
  const moved = [...next].find(([, owner]) => owner === last);
  if (moved) next.set(moved[0], first);
}

export type MasterAction =
  | { type: "send"; to: Destination; message: VrlsMessage }
  | { type: "log"; message: string };

interface InFlight {
  epoch: number;
  version: number;
  entries: AllocationEntry[];
  waiting: Set<string>;
  confirmedOnce: Set<string>;
  lastSent: number;
  attempts: number;
  startedAt: number;
}

export interface MasterSnapshot {
  epoch: number;
  version: number;
  members: { id: string; priority: number; condition: MemberCondition; lastHeardMs: number | null }[];
  allocation: Record<string, string>;
  inFlight: { version: number; waiting: string[]; attempts: number } | null;
  completedAllocations: number;
  lastHandoffMs: number | null;
}

export class MasterEngine {
  private epoch = 0;
  private version = 0;
  private active = false;
  private startedAt = 0;
  private readonly conditions = new Set<string>();
  private current = new Map<string, string>();
  private readonly lastHeard = new Map<string, number>();
  private readonly status = new Map<string, MemberCondition>();
  /** Faulty members answering again, since when (rejoin hold-down). */
  private readonly backSince = new Map<string, number>();
  private inFlight: InFlight | null = null;
  private wanted: { explicit: Map<string, string> | null; rates: Map<string, number> | null } | null = null;
  completedAllocations = 0;
  /** Allocation sent -> every member done, for the last completed allocation. */
  lastHandoffMs: number | null = null;
  readonly handoffDurationsMs: number[] = [];
  /**
   * Who forwards conditions never allocated (unknown sources go to the VRRP master). Null:
   * this engine's own router. A substitution server (coordinator.ts), which forwards nothing,
   * sets the master router here.
   */
  unallocatedForwarder: string | null = null;
  /**
   * A member that records allocations without confirming them: the master router while a
   * substitution server allocates (seed Fig. 15 P24: "records the information ... without
   * transmitting a response. The response is transmitted only from backup router 3-2").
   * Allocations do not wait for it; it counts as working once an allocation completes.
   */
  private silent: string | null = null;

  constructor(private readonly opts: MasterOptions) {}

  get isActive(): boolean {
    return this.active;
  }

  /**
   * Becoming master. `lastEpoch` is the highest epoch this router has seen, `previous`
   * the allocation it last applied (a new master starts from it, seed: "a new master
   * rebuilds the allocation"), `deadMaster` the old master presumed failed.
   */
  start(
    now: number,
    lastEpoch: number,
    previous: readonly AllocationEntry[],
    deadMaster: string | null,
  ): MasterAction[] {
    this.active = true;
    this.startedAt = now;
    // Unique per master even when two routers become master at once (both from the same
    // lastEpoch): the low byte is the master's own (last address octet, distinct on a subnet
    // of /24 or longer), so two masters never issue the same (epoch, version).
    this.epoch = (Math.floor(lastEpoch / 256) + 1) * 256 + (ipToInt(this.opts.self) & 0xff);
    this.version = 0;
    this.inFlight = null;
    this.current = new Map(previous.map((e) => [e.condition, e.owner]));
    for (const e of previous) this.conditions.add(e.condition);
    for (const m of this.opts.members) {
      this.lastHeard.set(m.id, now);
      this.status.set(m.id, m.id === deadMaster ? "faulty" : "suspended");
    }
    this.status.set(this.opts.self, "working");
    // With an allocation to start from, reallocate at once (failover); otherwise collect first.
    this.wanted = previous.length > 0 ? { explicit: null, rates: null } : null;
    return [
      {
        type: "log",
        message: `master epoch ${this.epoch}, starting from ${previous.length} allocated conditions`,
      },
    ];
  }

  stop(): void {
    this.active = false;
    this.inFlight = null;
    this.wanted = null;
  }

  /** Adds (newly discovered) conditions; a reallocation follows on the next tick. */
  addConditions(keys: Iterable<string>): void {
    let added = false;
    for (const k of keys) {
      if (!this.conditions.has(k)) {
        this.conditions.add(k);
        added = true;
      }
    }
    if (added && this.active && this.discoveryOver()) this.wanted ??= { explicit: null, rates: null };
  }

  removeConditions(keys: Iterable<string>): void {
    for (const k of keys) this.conditions.delete(k);
    if (this.active) this.wanted ??= { explicit: null, rates: null };
  }

  /** A reallocation on request: an explicit map (tests, operators) or by flow rate (issue 6), else equal counts. */
  requestReallocation(explicit?: ReadonlyMap<string, string>, ratesBps?: ReadonlyMap<string, number>): void {
    this.wanted = {
      explicit: explicit ? new Map(explicit) : null,
      rates: ratesBps ? new Map(ratesBps) : null,
    };
  }

  get busy(): boolean {
    return this.inFlight !== null || this.wanted !== null;
  }

  onResponse(from: string, msg: Extract<VrlsMessage, { type: "response" }>, now: number): MasterAction[] {
    return this.heard(from, now, msg);
  }

  get silentMember(): string | null {
    return this.silent;
  }

  /**
   * Sets the member that does not confirm (P24; null: every member confirms). An allocation
   * in flight stops waiting for it, and completes if it waited for nobody else.
   */
  setSilentMember(id: string | null, now: number): MasterAction[] {
    this.silent = id;
    const f = this.inFlight;
    const actions: MasterAction[] = [];
    if (f && id !== null && f.waiting.delete(id) && f.waiting.size === 0) this.complete(f, now, actions);
    return actions;
  }

  onConfirmation(
    from: string,
    msg: Extract<VrlsMessage, { type: "confirmation" }>,
    now: number,
  ): MasterAction[] {
    const actions = this.heard(from, now);
    const f = this.inFlight;
    if (!f || compareVersion(msg, f) !== 0) return actions;
    f.confirmedOnce.add(from);
    if (msg.done) f.waiting.delete(from);
    if (f.waiting.size === 0) this.complete(f, now, actions);
    return actions;
  }

  private complete(f: InFlight, now: number, actions: MasterAction[]): void {
    this.current = new Map(f.entries.map((e) => [e.condition, e.owner]));
    this.inFlight = null;
    // Seed: the router condition goes from 'suspended' to 'working' once confirmed (the
    // silent master router: once the allocation it recorded is complete).
    for (const m of f.confirmedOnce) if (this.status.get(m) !== "faulty") this.status.set(m, "working");
    if (this.silent !== null && this.status.get(this.silent) === "suspended")
      this.status.set(this.silent, "working");
    this.completedAllocations++;
    this.lastHandoffMs = now - f.startedAt;
    this.handoffDurationsMs.push(this.lastHandoffMs);
    if (this.handoffDurationsMs.length > 10_000) this.handoffDurationsMs.shift();
    actions.push({
      type: "log",
      message: `allocation ${f.epoch}.${f.version} complete in ${this.lastHandoffMs} ms`,
    });
  }

  onTick(now: number): MasterAction[] {
    if (!this.active) return [];
    const actions: MasterAction[] = [];
    // Backups that stopped answering are faulty (seed: registered into the data table).
    for (const [m, since] of this.backSince)
      if (now - (this.lastHeard.get(m) ?? since) > this.opts.responseTimeoutMs) this.backSince.delete(m);
    for (const m of this.opts.members) {
      if (m.id === this.opts.self || this.status.get(m.id) === "faulty") continue;
      if (this.opts.faults?.includes("vrls-backup-failure-ignored")) continue;
      if (now - (this.lastHeard.get(m.id) ?? now) > this.opts.responseTimeoutMs) {
        this.markFaulty(m.id, "no response", actions);
      }
    }
    const f = this.inFlight;
    if (f && now - f.lastSent >= this.opts.retryMs) {
      f.attempts++;
      for (const m of f.waiting) {
        if (
          m !== this.opts.self &&
          !f.confirmedOnce.has(m) &&
          f.attempts > this.opts.maxRetries &&
          !this.opts.faults?.includes("vrls-backup-failure-ignored")
        )
          this.markFaulty(m, "no confirmation", actions);
      }
      if (this.inFlight === f) {
        f.lastSent = now;
        actions.push(this.allocationMessage(f));
      }
    }
    if (!this.inFlight && this.wanted && (this.discoveryOver(now) || this.current.size > 0)) {
      actions.push(...this.allocate(now));
    } else if (
      !this.inFlight &&
      !this.wanted &&
      this.current.size === 0 &&
      this.conditions.size > 0 &&
      this.discoveryOver(now)
    ) {
      actions.push(...this.allocate(now));
    }
    return actions;
  }

  snapshot(now: number): MasterSnapshot {
    return {
      epoch: this.epoch,
      version: this.version,
      members: this.opts.members.map((m) => ({
        id: m.id,
        priority: m.priority,
        condition: this.status.get(m.id) ?? "suspended",
        lastHeardMs: this.lastHeard.has(m.id) ? now - (this.lastHeard.get(m.id) ?? now) : null,
      })),
      allocation: Object.fromEntries(this.current),
      inFlight: this.inFlight
        ? {
            version: this.inFlight.version,
            waiting: [...this.inFlight.waiting],
            attempts: this.inFlight.attempts,
          }
        : null,
      completedAllocations: this.completedAllocations,
      lastHandoffMs: this.lastHandoffMs,
    };
  }

  memberCondition(id: string): MemberCondition {
    return this.status.get(id) ?? "suspended";
  }

  private discoveryOver(now?: number): boolean {
    return now === undefined ? true : now - this.startedAt >= this.opts.discoveryMs;
  }

  private heard(from: string, now: number, response?: { epoch: number; version: number }): MasterAction[] {
    if (!this.opts.members.some((m) => m.id === from))
      return [{ type: "log", message: `message from unknown member ${from} ignored` }];
    this.lastHeard.set(from, now);
    const before = this.status.get(from);
    if (before === "faulty") {
      // A member is back: give it a share (seed: allocation only to routers not in fault),
      // once it has kept answering for the rejoin hold-down (a flapping member gets nothing).
      const hold = this.opts.rejoinHoldDownMs ?? 0;
      if (hold > 0) {
        if (!this.backSince.has(from)) this.backSince.set(from, now);
        if (now - (this.backSince.get(from) ?? now) < hold) return [];
      }
      this.backSince.delete(from);
      this.status.set(from, "suspended");
      if (this.active) this.wanted ??= { explicit: null, rates: null };
      return [{ type: "log", message: `member ${from} is back` }];
    }
    if (before === "suspended" && response && this.active && this.current.size > 0) {
      // A suspended member applied the allocation in force: working.
      const v = { epoch: this.epoch, version: this.version };
      if (compareVersion(response, v) === 0 && !this.inFlight) this.status.set(from, "working");
    }
    return [];
  }

  private markFaulty(id: string, why: string, actions: MasterAction[]): void {
    this.status.set(id, "faulty");
    actions.push({ type: "log", message: `member ${id} faulty (${why})` });
    // Its conditions go to the others now, superseding whatever is in flight.
    this.inFlight = null;
    this.wanted ??= { explicit: null, rates: null };
  }

  private healthyMembers(): string[] {
    return this.opts.members
      .filter((m) => this.status.get(m.id) !== "faulty")
      .sort((a, b) => (a.id === this.opts.self ? -1 : b.id === this.opts.self ? 1 : b.priority - a.priority))
      .map((m) => m.id);
  }

  private allocate(now: number): MasterAction[] {
    const members = this.healthyMembers();
    const keys = [...this.conditions];
    const wanted = this.wanted;
    this.wanted = null;
    let next: Map<string, string>;
    if (wanted?.explicit) {
      next = new Map(this.current);
      for (const [c, m] of wanted.explicit) if (members.includes(m)) next.set(c, m);
    } else if (wanted?.rates) {
      next = allocateByRate({
        conditions: keys,
        members,
        current: this.current,
        rateBps: wanted.rates,
        smallestFirst: this.opts.faults?.includes("vrls-realloc-smallest-first") === true,
      });
    } else {
      next = allocateEqualCounts({ conditions: keys, members, current: this.current });
      if (this.opts.faults?.includes("vrls-alloc-off-by-one")) offByOne(next, members);
    }
    const entries = [...next].map(([condition, owner]) => {
      const prev = this.current.get(condition);
      // A condition never allocated was forwarded by the master (unknown sources go to the
      // master), so the master hands it off like any old owner.
      const previousOwner =
        prev === undefined
          ? (this.unallocatedForwarder ?? this.opts.self)
          : prev === owner || members.includes(prev)
            ? prev
            : null;
      return { condition, owner, previousOwner };
    });
    this.version++;
    for (const m of members)
      if (this.status.get(m) === "working" && m !== this.opts.self) this.status.set(m, "suspended");
    const f: InFlight = {
      epoch: this.epoch,
      version: this.version,
      entries,
      // P24: the silent master router records the allocation; only the others confirm.
      waiting: new Set(members.filter((m) => m !== this.silent)),
      confirmedOnce: new Set(),
      lastSent: now,
      attempts: 0,
      startedAt: now,
    };
    this.inFlight = f;
    const actions: MasterAction[] = [this.allocationMessage(f)];
    if (f.waiting.size === 0) this.complete(f, now, actions);
    return actions;
  }

  private allocationMessage(f: InFlight): MasterAction {
    return {
      type: "send",
      to: "all",
      message: {
        type: "allocation",
        epoch: f.epoch,
        version: f.version,
        mode: this.opts.mode,
        entries: f.entries,
      },
    };
  }

  /** Confirmed allocation in force. */
  get allocationInForce(): Assignment {
    return this.current;
  }
}
