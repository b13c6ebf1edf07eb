/**
 * Every member's side of the allocation exchange (seed Figs. 10A/10B, 12, 13):
 * applies allocations (type 3) idempotently, confirms them (type 4), and runs
 * the hand-off of each condition it gains or gives up in the configured
 * operation mode (seed Fig. 9A "operation mode"; see handoff.ts). The master
 * runs this too, for its own conditions. Pure and clock-injected: events in,
 * actions out.
 *
 * With a substitution server (seed Figs. 14-15, coordinator.ts) allocating, the series is
 * "coordinated": every confirmation goes to the server, which transfers it to the other
 * routers (P25), and the master router records the allocation without confirming anything
 * (P24: it is the series' silent member). A hand-off with the silent master therefore
 * cannot wait for its confirmations; it runs on the server's grace time instead:
 *  - the master gives a condition up (it observes from the allocation on): the new owner
 *    starts holding `graceMs` after the allocation, then confirms; the master stops when the
 *    server transfers that confirmation and sends its markers directly (P26);
 *  - the master takes a condition over: it starts holding when the server transfers the old
 *    owner's confirmation (observing); the old owner stops `2 x graceMs` after the
 *    allocation (the confirmation's way through the server, the master's hold) and sends
 *    its markers to the master, again after `retryMs` in case one is lost;
 *  - timer mode: the new owner's delay is `timerDelayMs + graceMs` (seed P25: "a preset
 *    timer value ... substantially large"); an old owner whose new owner is the master stops
 *    at the allocation (the master waits the delay before forwarding).
 * Loss and duplication then depend on the master applying an allocation within `graceMs`
 * (an assumption, unlike the confirmation-driven hand-offs between routers that confirm).
 *
 * Per condition the data plane disposition is one of
 *   forward  - the kernel forwards (this member is the router in charge)
 *   drop     - the kernel drops (another member's condition)
 *   hold     - packets are queued to user space and held (new owner, before markers)
 *   observe  - packets are queued to user space and accepted, recording per-flow markers
 *              (old owner between the allocation and its stop)
 */
import type { AllocationEntry, Destination, FlowMarker, HandoffMode, VrlsMessage } from "./messages.ts";
import { compareVersion } from "./messages.ts";

/**
 * A member's data plane state for one condition. `prehold`: a new owner waiting for the old
 * owner to observe already queues and holds the condition (its kernel move runs beside the
 * old owner's); the held packets that arrive before the old owner's "observing" are
 * marked as such, and only the old owner's markers can release them (handoff.ts).
 */
export type Disposition = "forward" | "drop" | "hold" | "prehold" | "observe";

export type MemberAction =
  | { type: "send"; to: Destination; message: VrlsMessage }
  /** The complete desired per-condition data plane state (applied atomically). */
  | { type: "dataplane"; dispositions: ReadonlyMap<string, Disposition> }
  /**
   * Old owner: stop forwarding `conditions` (drop from now on, atomically with
   * reading the observers) and send their markers to `to` as a type 5 message.
   */
  | {
      type: "stopAndSendMarkers";
      to: string;
      epoch: number;
      version: number;
      conditions: string[];
      mode: HandoffMode;
      /**
       * Per condition, packets the new owner said it holds (type 4 extension): stop only once
       * one of them has been taken in here. Absent or empty: the driver's fixed settle.
       */
      held?: Record<string, string[]>;
    }
  /** Old owner, timer mode: stop forwarding `conditions` now (no markers in this mode). */
  | { type: "stopForwarding"; conditions: string[] }
  /** New owner: decide the held packets of `conditions` with the markers, then forward. */
  | { type: "resolveHeld"; conditions: string[]; mode: HandoffMode; markers: FlowMarker[] }
  /** New owner, superseded hand-off: release whatever is held for `conditions` (no markers will come). */
  | { type: "releaseHeld"; conditions: string[] }
  | { type: "log"; message: string };

type Gain =
  | { phase: "waitObserving"; from: string }
  /** Coordinated series, old owner the silent master: hold from `until` (it cannot say it observes). */
  | { phase: "settle"; from: string; until: number }
  | { phase: "holding"; from: string }
  | { phase: "delay"; until: number };
type Loss = {
  to: string;
  phase: "observing" | "stopped";
  /** Coordinated series, new owner the silent master: stop at this time (it cannot say it holds). */
  stopAt?: number;
  /** Markers sent to a silent new owner, and when last (it never asks again). */
  markersSent?: number;
  markersAt?: number;
};

/** How a series of allocations is run (default: by a master router, everybody confirms to all). */
export interface SeriesContext {
  /** The substitution server that allocates (coordinated series): confirmations go to it (P25). */
  coordinator: string | null;
  /** The member that records allocations without confirming (P24: the master router). */
  silent: string | null;
  /** Coordinated series: how long the silent master may take to apply an allocation. */
  graceMs: number;
}

const PLAIN: SeriesContext = { coordinator: null, silent: null, graceMs: 0 };
/** Markers to a silent new owner are sent this many times in all (it never asks for them). */
const MARKER_SENDS_TO_SILENT = 3;

export interface MemberOptions {
  self: string;
  /** Timer mode: how long the new owner waits before forwarding (seed "certain delay"). */
  timerDelayMs: number;
  /** Retransmission interval of an incomplete confirmation. */
  retryMs: number;
  /** Seeded faults (lib/roles/seeded-faults.ts); absent: none. */
  faults?: readonly string[];
}

export interface MemberSnapshot {
  epoch: number;
  version: number;
  mode: HandoffMode | null;
  dispositions: Record<string, Disposition>;
  gaining: Record<string, string>;
  losing: Record<string, string>;
  owners: Record<string, string>;
  staleAllocations: number;
  /** A substitution server's series: who allocates, who records without confirming (P24). */
  coordinated?: { by: string; silent: string | null };
  confirmationsWithheld: number;
}

export class MemberEngine {
  private epoch = 0;
  private allocator = "";
  private version = 0;
  private mode: HandoffMode | null = null;
  private entries: AllocationEntry[] = [];
  private readonly owned = new Set<string>();
  private readonly gains = new Map<string, Gain>();
  private readonly losses = new Map<string, Loss>();
  /** What other members announced in their confirmations of the current version. */
  private readonly peerObserving = new Map<string, Set<string>>();
  private readonly peerHolding = new Map<string, Set<string>>();
  private lastDispositions = new Map<string, Disposition>();
  private lastConfirmAt = Number.NEGATIVE_INFINITY;
  private series: SeriesContext = PLAIN;
  staleAllocations = 0;
  /** Confirmations this member kept to itself as the silent master router (P24). */
  confirmationsWithheld = 0;

  constructor(private readonly opts: MemberOptions) {}

  get currentVersion(): { epoch: number; version: number } {
    return { epoch: this.epoch, version: this.version };
  }

  /** The allocation last applied (every member keeps it, so a new master can start from it). */
  get allocation(): readonly AllocationEntry[] {
    return this.entries;
  }

  get complete(): boolean {
    return this.gains.size === 0 && [...this.losses.values()].every((l) => l.phase === "stopped");
  }

  /**
   * The earliest time a timed step of a hand-off falls due (timer-mode delay, settle, a stop
   * at `stopAt`, a marker resend), or null: the driver must tick then, not at its next
   * periodic tick (an advertisement interval later: timer-mode hand-offs took up to 139 ms
   * with a 20 ms delay and 100 ms adverts before this).
   */
  nextDeadline(): number | null {
    let next = Number.POSITIVE_INFINITY;
    for (const [, g] of this.gains)
      if (g.phase === "delay" || g.phase === "settle") next = Math.min(next, g.until);
    for (const [, l] of this.losses) {
      if (l.phase === "observing" && l.stopAt !== undefined) next = Math.min(next, l.stopAt);
      if (l.phase === "stopped" && l.markersSent !== undefined && l.markersSent < MARKER_SENDS_TO_SILENT)
        next = Math.min(next, l.markersAt === undefined ? 0 : l.markersAt + this.opts.retryMs);
    }
    return Number.isFinite(next) ? next : null;
  }

  /** How the current series is run (coordinated or not, who is silent). */
  get seriesContext(): SeriesContext {
    return this.series;
  }

  /**
   * A new master router of a coordinated series (failover while the substitution server
   * allocates): it is the silent member from now on.
   */
  setSilent(id: string | null): void {
    if (this.series.coordinator !== null) this.series = { ...this.series, silent: id };
  }

  /**
   * `from` is the master (or substitution server) that sent it. Versions compare within one
   * allocator's series; a different allocator starts a new series. `series`: how the series
   * is run (a substitution server's: coordinated, the master router silent).
   */
  onAllocation(
    msg: Extract<VrlsMessage, { type: "allocation" }>,
    now: number,
    from = "",
    series: SeriesContext = PLAIN,
  ): MemberAction[] {
    const sameSeries = from === this.allocator;
    // Another master's series always starts afresh: the core passes on allocations only from
    // the master VRRP elected, and after two routers were briefly master at once the true
    // master's epoch may well be the lower one.
    const order = sameSeries ? compareVersion(msg, { epoch: this.epoch, version: this.version }) : 1;
    if (order < 0) {
      this.staleAllocations++;
      return [];
    }
    this.series = series;
    if (order === 0) return this.confirmation(now);
    const actions: MemberAction[] = [];
    this.settle(actions, msg.entries);
    this.epoch = msg.epoch;
    this.version = msg.version;
    this.allocator = from;
    this.mode = msg.mode;
    this.entries = msg.entries;
    this.peerObserving.clear();
    this.peerHolding.clear();
    const self = this.opts.self;
    const silent = series.silent;
    const relay = series.coordinator !== null ? series.graceMs : 0;
    const nowOwner = new Map(msg.entries.map((e) => [e.condition, e]));
    for (const c of [...this.owned]) {
      const e = nowOwner.get(c);
      if (e && (e.owner === self || e.previousOwner === self)) continue;
      // Unallocated now, or the master believes someone else had it: stop at once.
      this.owned.delete(c);
    }
    const stopNow: string[] = [];
    for (const e of msg.entries) {
      // Ours before (allocated, or forwarded by the master as not yet allocated): hand it off.
      if (e.owner !== self && e.previousOwner === self) {
        if (e.owner === silent && silent !== self) {
          // Coordinated, the silent master takes it over: it will not say when it holds.
          if (msg.mode === "timer") stopNow.push(e.condition);
          else
            this.losses.set(e.condition, {
              to: e.owner,
              phase: "observing",
              stopAt: now + 2 * series.graceMs,
            });
        } else this.losses.set(e.condition, { to: e.owner, phase: "observing" });
      }
    }
    if (stopNow.length > 0) {
      // Timer mode: the master waits its delay before forwarding; stop at once.
      for (const c of stopNow) this.owned.delete(c);
      actions.push({ type: "stopForwarding", conditions: stopNow });
    }
    for (const e of msg.entries) {
      // The master says another router had it: whatever we believed (a stale series, e.g.
      // while we were master during a partition), it is handed over to us properly.
      if (e.owner === self && e.previousOwner !== null && e.previousOwner !== self)
        this.owned.delete(e.condition);
      if (e.owner !== self || this.owned.has(e.condition)) continue;
      if (e.previousOwner === null || e.previousOwner === self) {
        this.owned.add(e.condition);
      } else if (msg.mode === "timer") {
        this.gains.set(e.condition, { phase: "delay", until: now + this.opts.timerDelayMs + relay });
      } else if (e.previousOwner === silent) {
        this.gains.set(e.condition, { phase: "settle", from: e.previousOwner, until: now + series.graceMs });
      } else {
        this.gains.set(e.condition, { phase: "waitObserving", from: e.previousOwner });
      }
    }
    actions.push(...this.dataplane(), ...this.confirmation(now));
    return actions;
  }

  onConfirmation(
    from: string,
    msg: Extract<VrlsMessage, { type: "confirmation" }>,
    now: number,
  ): MemberAction[] {
    if (compareVersion(msg, { epoch: this.epoch, version: this.version }) !== 0) return [];
    this.peerObserving.set(from, new Set(msg.observing));
    this.peerHolding.set(from, new Set(msg.holding));
    const actions: MemberAction[] = [];
    // New owner: the old owner observes now, so holding can begin (seq / exactly-once).
    let startedHolding = false;
    for (const [c, g] of this.gains) {
      if (g.phase === "waitObserving" && g.from === from && msg.observing.includes(c)) {
        this.gains.set(c, { phase: "holding", from });
        startedHolding = true;
      }
    }
    // Old owner: the new owner holds (or, in timer mode, has taken over): stop.
    const stop: string[] = [];
    const resend: string[] = [];
    for (const [c, l] of this.losses) {
      if (l.to !== from || !msg.holding.includes(c)) continue;
      if (l.phase === "observing") {
        l.phase = "stopped";
        stop.push(c);
      } else resend.push(c);
    }
    if (stop.length > 0 || resend.length > 0) {
      if (this.mode === "timer") {
        for (const c of stop) this.finishLoss(c);
        if (stop.length > 0) actions.push({ type: "stopForwarding", conditions: stop });
      } else {
        // The driver keeps the markers it sent, so a repeated request gets identical markers.
        const held: Record<string, string[]> = {};
        for (const c of stop) if (msg.held?.[c]?.length) held[c] = msg.held[c];
        actions.push({
          type: "stopAndSendMarkers",
          to: from,
          epoch: this.epoch,
          version: this.version,
          conditions: [...stop, ...resend],
          mode: this.mode ?? "exactly-once",
          ...(Object.keys(held).length > 0 ? { held } : {}),
        });
        for (const c of stop) this.owned.delete(c);
      }
    }
    actions.push(...this.dataplane());
    if (startedHolding || stop.length > 0) actions.push(...this.confirmation(now));
    return actions;
  }

  onMarkers(from: string, msg: Extract<VrlsMessage, { type: "markers" }>, now: number): MemberAction[] {
    if (compareVersion(msg, { epoch: this.epoch, version: this.version }) !== 0) return [];
    const ready = msg.conditions.filter((c) => {
      const g = this.gains.get(c);
      return g !== undefined && g.phase === "holding" && g.from === from;
    });
    if (ready.length === 0) return [];
    for (const c of ready) {
      this.gains.delete(c);
      this.owned.add(c);
    }
    return [
      { type: "resolveHeld", conditions: ready, mode: this.mode ?? "exactly-once", markers: msg.markers },
      ...this.dataplane(),
      ...this.confirmation(now),
    ];
  }

  /**
   * Timer-mode delays, the timed steps of a hand-off with the silent master of a
   * coordinated series, and retransmission of an incomplete confirmation.
   */
  onTick(now: number): MemberAction[] {
    const actions: MemberAction[] = [];
    let changed = false;
    for (const [c, g] of this.gains) {
      if (g.phase === "delay" && now >= g.until) {
        this.gains.delete(c);
        this.owned.add(c);
        changed = true;
      } else if (g.phase === "settle" && now >= g.until) {
        // The silent master observes by now: hold, and say so (the server transfers it, P25).
        this.gains.set(c, { phase: "holding", from: g.from });
        changed = true;
      }
    }
    const stopFor = new Map<string, string[]>();
    for (const [c, l] of this.losses) {
      if (l.phase === "observing" && l.stopAt !== undefined && now >= l.stopAt) {
        l.phase = "stopped";
        l.markersSent = 0;
        this.owned.delete(c);
      }
      // Markers to the silent master: at the stop, then again while it cannot ask for them.
      if (
        l.phase === "stopped" &&
        l.markersSent !== undefined &&
        l.markersSent < MARKER_SENDS_TO_SILENT &&
        now - (l.markersAt ?? Number.NEGATIVE_INFINITY) >= this.opts.retryMs
      ) {
        l.markersSent++;
        l.markersAt = now;
        stopFor.set(l.to, [...(stopFor.get(l.to) ?? []), c]);
        changed = true;
      }
    }
    for (const [to, conditions] of stopFor)
      actions.push({
        type: "stopAndSendMarkers",
        to,
        epoch: this.epoch,
        version: this.version,
        conditions,
        mode: this.mode ?? "exactly-once",
      });
    if (changed) actions.push(...this.dataplane(), ...this.confirmation(now));
    else if (!this.complete && now - this.lastConfirmAt >= this.opts.retryMs)
      actions.push(...this.confirmation(now));
    return actions;
  }

  /** The newest desired data plane state (a driver applies this, not an older action's copy). */
  get dispositions(): ReadonlyMap<string, Disposition> {
    return this.lastDispositions;
  }

  dispositionOf(condition: string): Disposition {
    return this.lastDispositions.get(condition) ?? "drop";
  }

  snapshot(): MemberSnapshot {
    return {
      epoch: this.epoch,
      version: this.version,
      mode: this.mode,
      dispositions: Object.fromEntries(this.lastDispositions),
      gaining: Object.fromEntries([...this.gains].map(([c, g]) => [c, g.phase])),
      ...(this.series.coordinator !== null
        ? { coordinated: { by: this.series.coordinator, silent: this.series.silent } }
        : {}),
      losing: Object.fromEntries([...this.losses].map(([c, l]) => [c, `${l.phase}->${l.to}`])),
      owners: Object.fromEntries(this.entries.map((e) => [e.condition, e.owner])),
      staleAllocations: this.staleAllocations,
      confirmationsWithheld: this.confirmationsWithheld,
    };
  }

  private finishLoss(c: string): void {
    this.losses.delete(c);
    this.owned.delete(c);
  }

  /** A newer allocation supersedes unfinished hand-offs: settle each to a plain owner/not-owner state. */
  private settle(actions: MemberAction[], next: readonly AllocationEntry[] = []): void {
    const release: string[] = [];
    const discard: string[] = [];
    const nextOf = new Map(next.map((e) => [e.condition, e]));
    for (const [c, g] of this.gains) {
      // Whoever we waited for is presumed gone (that is why the master reallocated): take over.
      // When the master says the old owner is dead (previous owner none), what we hold may
      // already have been forwarded by it before it died (it forwarded while observing) and no
      // markers will tell which: discard (loss bounded by the detection time, never a
      // duplicate; issue 6). The stop blocks the condition in the queue at once (dropping the
      // held packets); the data plane change that follows forwards it.
      if (g.phase === "holding") {
        const e = nextOf.get(c);
        if (e && e.owner === this.opts.self && e.previousOwner === null) discard.push(c);
        else release.push(c);
      }
      // Held before the old owner ever observed: it forwarded those itself (no markers will say
      // which), so they go, as the kernel's drop would have done before the prehold.
      if (g.phase === "waitObserving" && this.mode === "exactly-once") discard.push(c);
      this.owned.add(c);
    }
    if (discard.length > 0) actions.push({ type: "stopForwarding", conditions: discard });
    this.gains.clear();
    for (const [c, l] of this.losses) {
      if (l.phase === "observing") this.owned.add(c);
      else this.owned.delete(c);
    }
    this.losses.clear();
    if (release.length > 0) actions.push({ type: "releaseHeld", conditions: release });
  }

  /**
   * This member's confirmation (type 4) of the current allocation: to every member, or in a
   * coordinated series to the substitution server (which transfers it, P25); none from the
   * silent master router (P24).
   */
  private confirmation(now: number): MemberAction[] {
    this.lastConfirmAt = now;
    if (this.series.silent === this.opts.self && !this.opts.faults?.includes("vrls-sub-master-confirms")) {
      this.confirmationsWithheld++;
      return [];
    }
    const observing = [...this.losses]
      .filter(([, l]) => l.phase === "observing" || this.mode === "timer")
      .map(([c]) => c);
    const holding = [...this.gains]
      .filter(([, g]) => g.phase !== "waitObserving" && g.phase !== "settle")
      .map(([c]) => c);
    const coordinator = this.series.coordinator;
    return [
      {
        type: "send",
        to: coordinator !== null ? { member: coordinator } : "all",
        message: {
          type: "confirmation",
          epoch: this.epoch,
          version: this.version,
          observing,
          holding,
          done: this.complete,
        },
      },
    ];
  }

  private dataplane(): MemberAction[] {
    const d = new Map<string, Disposition>();
    for (const e of this.entries) d.set(e.condition, "drop");
    for (const c of this.owned) d.set(c, "forward");
    for (const [c, l] of this.losses) {
      // Timer mode keeps forwarding in the kernel until the stop (one nft transaction);
      // the other modes observe in user space, where the stop is instantaneous.
      if (l.phase === "observing") d.set(c, this.mode === "timer" ? "forward" : "observe");
      else d.set(c, "drop");
    }
    for (const [c, g] of this.gains)
      d.set(
        c,
        g.phase === "holding"
          ? "hold"
          : // Exactly-once only: sequence-number markers exist only for TCP flows the old
            // owner saw while observing, and a TCP segment held before the boundary of a flow
            // without one can be neither released nor dropped safely (1 segment lost in 200
            // hand-offs when it was dropped); there the kernel drops until the hold.
            g.phase === "waitObserving" && this.mode === "exactly-once"
            ? "prehold"
            : "drop",
      );
    if (sameMap(d, this.lastDispositions)) return [];
    this.lastDispositions = d;
    return [{ type: "dataplane", dispositions: d }];
  }
}

function sameMap<K, V>(a: ReadonlyMap<K, V>, b: ReadonlyMap<K, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
