/**
 * Allocation review (seed: "Allocation reviewing and reallocation", Figs. 15, 10D-10F),
 * pure and clock-injected, one per member:
 *
 * - every member keeps the latest flow monitor sample (its condition determination
 *   portion 395): per-condition rate (bps) and buffer overflows per time unit;
 * - a member whose own figures pass the manually set thresholds wants a review: a backup
 *   sends a review request (type 6) to the master (P10), the master collects on its own;
 * - the master asks every healthy member for flow rate information (type 7), collects
 *   the responses (type 8, P12), decides (P13: imbalance of the average flow rate per
 *   router, or difference of the overflow counts, above the thresholds) and, when the
 *   by-rate allocation is better, has the master engine reallocate by measured rate;
 * - no member reviews again for `holdDownMs` after a request, a voluntary collection, a
 *   flow rate request it answered (a review is under way: asking now would only be
 *   suppressed by the master) or a reallocation (seed: "not performed for a certain period
 *   after the review request ... irrespective of executing or not executing the
 *   reallocation"). The hold-down runs from the moment the member acts (sends 6 or 7,
 *   answers a 7, applies a 3), never from when a flow monitor sample was started.
 *
 * On a hub every member sees every frame, so a member's sample holds the rate of every
 * condition (its `others` set counts the frames it drops); a type 8 response carries only
 * the conditions the sender forwards, as the seed's flow rate information does.
 */
import { allocateByRate } from "./allocation.ts";
import type { Destination, VrlsMessage } from "./messages.ts";

export interface ReviewOptions {
  /** P13: (most loaded - least loaded) / mean of the per-router rate above this is an imbalance. */
  imbalancePct: number;
  /** Overflows per time unit of one router (or the difference between routers) above this. */
  overflowsPerUnit: number;
  /** No review for this long after a request, a collection or a reallocation. */
  holdDownMs: number;
  /** How long the master waits for flow rate responses before deciding with what it has. */
  collectMs: number;
  /** Below this total rate nothing is reviewed (idle routers are trivially "imbalanced"). */
  minRateBps: number;
  /**
   * A master whose own sample passes the thresholds starts a review by itself
   * (VRLS-REVIEW-005); false only under the seeded fault vrls-no-master-review.
   */
  masterTriggers?: boolean;
}

export interface FlowSample {
  at: number;
  /** Average rate per condition over the monitor's window (bps). */
  rates: ReadonlyMap<string, number>;
  /** Conditions this member forwards (own + held/observed), per the allocation it applied. */
  mine: readonly string[];
  overflowsPerUnit: number;
}

export type ReviewAction =
  | { type: "send"; to: Destination; message: VrlsMessage }
  | { type: "reallocateByRate"; rates: Map<string, number> }
  | { type: "log"; message: string };

export interface ReviewDecision {
  at: number;
  trigger: "master" | "backup";
  imbalanceBeforePct: number;
  imbalanceAfterPct: number;
  overflowSpread: number;
  reallocated: boolean;
}

interface Collection {
  startedAt: number;
  trigger: "master" | "backup";
  waiting: Set<string>;
  rates: Map<string, number>;
  overflows: Map<string, number>;
}

/** Per-router load of an allocation under measured rates (members without conditions count 0). */
export function loadsOf(
  allocation: ReadonlyMap<string, string>,
  rates: ReadonlyMap<string, number>,
  members: readonly string[],
): Map<string, number> {
  const load = new Map<string, number>(members.map((m) => [m, 0]));
  for (const [c, m] of allocation) if (load.has(m)) load.set(m, (load.get(m) ?? 0) + (rates.get(c) ?? 0));
  return load;
}

/** (max - min) / mean, in percent; 0 for no load. */
export function imbalancePct(loads: Iterable<number>): number {
  const xs = [...loads];
  if (xs.length < 2) return 0;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (mean <= 0) return 0;
  return ((Math.max(...xs) - Math.min(...xs)) / mean) * 100;
}

export class Reviewer {
  private sample: FlowSample | null = null;
  private holdUntil = Number.NEGATIVE_INFINITY;
  private collection: Collection | null = null;
  readonly decisions: ReviewDecision[] = [];
  readonly counters = {
    requestsSent: 0,
    requestsReceived: 0,
    suppressed: 0,
    collections: 0,
    responsesIn: 0,
    responsesSent: 0,
    reallocations: 0,
  };

  constructor(
    private readonly self: string,
    private readonly opts: ReviewOptions,
  ) {}

  get lastSample(): FlowSample | null {
    return this.sample;
  }

  /** A reallocation happened (from any trigger, or a member fault): hold reviews down. */
  noteReallocation(now: number): void {
    this.holdUntil = Math.max(this.holdUntil, now + this.opts.holdDownMs);
  }

  /**
   * A new flow monitor sample. `master` is the elected master's address (null while none),
   * `healthy` the members the master may ask (master only), `allocation` the table in force.
   */
  onSample(
    s: FlowSample,
    ctx: {
      now: number;
      role: "master" | "backup" | "initialize";
      master: string | null;
      healthy: readonly string[];
      allocation: ReadonlyMap<string, string>;
      epoch: number;
    },
  ): ReviewAction[] {
    this.sample = s;
    if (ctx.role === "initialize" || ctx.now < this.holdUntil || this.collection) return [];
    if (!this.localTrigger(s, ctx.allocation)) return [];
    if (ctx.role === "backup") {
      if (ctx.master === null) return [];
      // P10: the backup asks the master for a review (Fig. 10D, type 6).
      this.holdUntil = Math.max(this.holdUntil, ctx.now + this.opts.holdDownMs);
      this.counters.requestsSent++;
      return [
        { type: "log", message: `review request to ${ctx.master}` },
        { type: "send", to: { member: ctx.master }, message: { type: "reviewRequest", epoch: ctx.epoch } },
      ];
    }
    if (this.opts.masterTriggers === false) return [];
    return this.collect(ctx.now, "master", ctx.healthy, ctx.epoch);
  }

  /** Master: a backup's review request (type 6). */
  onReviewRequest(
    from: string,
    now: number,
    healthy: readonly string[],
    epoch: number,
    isMaster: boolean,
  ): ReviewAction[] {
    this.counters.requestsReceived++;
    if (!isMaster) return [];
    if (now < this.holdUntil || this.collection) {
      this.counters.suppressed++;
      return [{ type: "log", message: `review request from ${from} suppressed (hold-down)` }];
    }
    return this.collect(now, "backup", healthy, epoch);
  }

  /**
   * Any member: the master's flow rate information request (type 7) -> type 8 (P12). A
   * review is under way: this member's own requests are held down from now (VRLS-REVIEW-004;
   * before, a backup that answered a voluntary 7 could ask right after it).
   */
  onRateRequest(from: string, epoch: number, now: number): ReviewAction[] {
    this.holdUntil = Math.max(this.holdUntil, now + this.opts.holdDownMs);
    const s = this.sample;
    const rates = s ? s.mine.map((c) => ({ condition: c, bps: Math.round(s.rates.get(c) ?? 0) })) : [];
    this.counters.responsesSent++;
    return [
      {
        type: "send",
        to: { member: from },
        message: {
          type: "rateResponse",
          epoch,
          rates,
          overflowsPerUnit: Math.round(s?.overflowsPerUnit ?? 0),
        },
      },
    ];
  }

  /** Master: a flow rate information response (type 8). */
  onRateResponse(
    from: string,
    msg: Extract<VrlsMessage, { type: "rateResponse" }>,
    now: number,
    allocation: ReadonlyMap<string, string>,
    healthy: readonly string[],
  ): ReviewAction[] {
    const c = this.collection;
    if (!c?.waiting.has(from)) return [];
    this.counters.responsesIn++;
    c.waiting.delete(from);
    for (const r of msg.rates) c.rates.set(r.condition, r.bps);
    c.overflows.set(from, msg.overflowsPerUnit);
    return c.waiting.size === 0 ? this.decide(now, allocation, healthy) : [];
  }

  /** Master: decide with what arrived when the collection times out. */
  onTick(now: number, allocation: ReadonlyMap<string, string>, healthy: readonly string[]): ReviewAction[] {
    const c = this.collection;
    if (!c || now - c.startedAt < this.opts.collectMs) return [];
    return [
      { type: "log", message: `flow rate responses missing from ${[...c.waiting].join(", ")}` },
      ...this.decide(now, allocation, healthy),
    ];
  }

  /** Abandons a collection (lost mastership). */
  reset(): void {
    this.collection = null;
  }

  snapshot(now: number) {
    return {
      holdDownLeftMs: Math.max(0, Math.round(this.holdUntil - now)),
      collecting: this.collection ? [...this.collection.waiting] : null,
      sample: this.sample
        ? {
            ageMs: Math.round(now - this.sample.at),
            rates: Object.fromEntries([...this.sample.rates].map(([k, v]) => [k, Math.round(v)])),
            overflowsPerUnit: this.sample.overflowsPerUnit,
          }
        : null,
      counters: { ...this.counters },
      decisions: this.decisions.slice(-20),
    };
  }

  /** The condition determination portion (395): this member's own figures against the thresholds. */
  private localTrigger(s: FlowSample, allocation: ReadonlyMap<string, string>): boolean {
    if (s.overflowsPerUnit > this.opts.overflowsPerUnit) return true;
    let total = 0;
    for (const v of s.rates.values()) total += v;
    if (total < this.opts.minRateBps) return false;
    const members = [...new Set([...allocation.values(), this.self])];
    const loads = loadsOf(allocation, s.rates, members);
    const mean = total / members.length;
    // Only the overloaded router asks: it is the one whose buffers suffer.
    return (loads.get(this.self) ?? 0) > mean * (1 + this.opts.imbalancePct / 200);
  }

  private collect(
    now: number,
    trigger: "master" | "backup",
    healthy: readonly string[],
    epoch: number,
  ): ReviewAction[] {
    this.holdUntil = Math.max(this.holdUntil, now + this.opts.holdDownMs);
    this.counters.collections++;
    const others = healthy.filter((m) => m !== this.self);
    const own = this.sample;
    this.collection = {
      startedAt: now,
      trigger,
      waiting: new Set(others),
      rates: new Map(own ? own.mine.map((c) => [c, own.rates.get(c) ?? 0]) : []),
      overflows: new Map([[this.self, own?.overflowsPerUnit ?? 0]]),
    };
    // Fig. 10E (type 7) to every member; the seed's master asks each backup.
    return [
      { type: "log", message: `review (${trigger}): flow rate request to ${others.join(", ") || "nobody"}` },
      ...others.map((m) => ({
        type: "send" as const,
        to: { member: m },
        message: { type: "rateRequest" as const, epoch },
      })),
    ];
  }

  /** P13: the review decision, and the reallocation by rate when it is necessary and helps. */
  private decide(
    now: number,
    allocation: ReadonlyMap<string, string>,
    healthy: readonly string[],
  ): ReviewAction[] {
    const c = this.collection;
    this.collection = null;
    if (!c) return [];
    // Conditions nobody reported (a new end system) count as zero (seed).
    const rates = new Map<string, number>();
    for (const k of allocation.keys()) rates.set(k, c.rates.get(k) ?? 0);
    const before = imbalancePct(loadsOf(allocation, rates, healthy).values());
    const ov = [...c.overflows.values()];
    const overflowSpread = ov.length > 0 ? Math.max(...ov) - Math.min(...ov) : 0;
    let total = 0;
    for (const v of rates.values()) total += v;
    const necessary =
      total >= this.opts.minRateBps &&
      (before > this.opts.imbalancePct || overflowSpread > this.opts.overflowsPerUnit);
    let after = before;
    let reallocated = false;
    const actions: ReviewAction[] = [];
    if (necessary) {
      const next = allocateByRate({ conditions: [...allocation.keys()], members: healthy, rateBps: rates });
      after = imbalancePct(loadsOf(next, rates, healthy).values());
      // Moving costs a hand-off per condition: only when it clearly helps.
      if (after < before * 0.8) {
        reallocated = true;
        this.counters.reallocations++;
        this.holdUntil = Math.max(this.holdUntil, now + this.opts.holdDownMs);
        actions.push({ type: "reallocateByRate", rates });
      }
    }
    const d: ReviewDecision = {
      at: now,
      trigger: c.trigger,
      imbalanceBeforePct: Math.round(before * 10) / 10,
      imbalanceAfterPct: Math.round(after * 10) / 10,
      overflowSpread,
      reallocated,
    };
    this.decisions.push(d);
    if (this.decisions.length > 100) this.decisions.shift();
    actions.push({ type: "log", message: `review decision ${JSON.stringify(d)}` });
    return actions;
  }
}
