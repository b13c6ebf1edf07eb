/**
 * A RouterCore with allocation review (issue 6): routes the review messages (types 6-8)
 * and the flow monitor's samples to the Reviewer, and the Reviewer's decision back to
 * the master engine as a reallocation by measured flow rate (which runs in the configured
 * hand-off mode like any allocation). Pure and clock-injected, like the core.
 */
import type { AllocationEntry } from "./messages.ts";
import { type ReviewAction, Reviewer, type ReviewOptions } from "./reviewer.ts";
import type { CoreAction, CoreEvent, RouterCore } from "./router-core.ts";

export type ReviewedEvent =
  | CoreEvent
  | {
      type: "flowSample";
      /** When the sample is handed to the reviewer (its decisions and hold-down run from here). */
      now: number;
      /** When the monitor started reading the counters (default `now`). */
      sampledAt?: number;
      rates: ReadonlyMap<string, number>;
      overflowsPerUnit: number;
    };

export class ReviewedCore {
  readonly reviewer: Reviewer | null;
  private lastVersion = "";
  /**
   * The newest time any event carried. The reviewer decides and starts hold-downs on this
   * clock: an event stamped earlier than one already handled (a flow monitor sample
   * stamped when its slow counter read began) must not start a hold-down in the past,
   * which let the next request leave before the hold-down was over (VRLS-REVIEW-004).
   */
  private clock = Number.NEGATIVE_INFINITY;

  constructor(
    readonly core: RouterCore,
    review: ReviewOptions | undefined,
    /**
     * Seeded fault vrls-sub-review-bypassed (VRLS-SUB-002): reviews ignore a registered
     * substitution server (the backups ask the master, the master reviews by itself).
     */
    private readonly seeded: { bypassCoordinator?: boolean } = {},
  ) {
    this.reviewer = review ? new Reviewer(core.opts.self, review) : null;
  }

  handle(event: ReviewedEvent): CoreAction[] {
    const r = this.reviewer;
    const out: CoreAction[] = [];
    this.clock = Math.max(this.clock, event.now);
    const now = this.clock;
    if (event.type === "flowSample") {
      if (r) out.push(...this.apply(r.onSample(this.sampleOf(event, now), this.context(now)), now));
      return out;
    }
    if (event.type === "message" && r) {
      const m = event.message;
      if (m.type === "reviewRequest" || m.type === "rateRequest" || m.type === "rateResponse") {
        const known =
          this.core.opts.members.some((x) => x.id === event.from) ||
          event.from === this.core.activeCoordinator;
        if (!known || this.core.role === "initialize") return out;
        const ctx = this.context(now);
        if (m.type === "reviewRequest")
          out.push(
            ...this.apply(
              r.onReviewRequest(event.from, now, ctx.healthy, ctx.epoch, ctx.role === "master"),
              now,
            ),
          );
        else if (m.type === "rateRequest")
          out.push(...this.apply(r.onRateRequest(event.from, m.epoch, now), now));
        else out.push(...this.apply(r.onRateResponse(event.from, m, now, ctx.allocation, ctx.healthy), now));
        return out;
      }
    }
    const wasMaster = this.core.role === "master";
    out.push(...this.core.handle(event));
    if (r) {
      if (wasMaster && this.core.role !== "master") r.reset();
      if (event.type === "tick" && this.core.role === "master") {
        const ctx = this.context(now);
        out.push(...this.apply(r.onTick(now, ctx.allocation, ctx.healthy), now));
      }
      // Any new allocation (review, fault, new end system) holds reviews down.
      const v = this.core.member.currentVersion;
      const key = `${v.epoch}.${v.version}`;
      if (key !== this.lastVersion) {
        if (this.lastVersion !== "") r.noteReallocation(now);
        this.lastVersion = key;
      }
    }
    return out;
  }

  private apply(actions: ReviewAction[], now: number): CoreAction[] {
    const out: CoreAction[] = [];
    for (const a of actions) {
      if (a.type === "reallocateByRate") {
        out.push(...this.core.handle({ type: "reallocate", now, ratesBps: a.rates }));
      } else out.push(a);
    }
    return out;
  }

  private sampleOf(e: Extract<ReviewedEvent, { type: "flowSample" }>, now: number) {
    const self = this.core.opts.self;
    const mine = this.core.member.allocation.filter((x) => x.owner === self).map((x) => x.condition);
    return {
      at: Math.min(e.sampledAt ?? now, now),
      rates: e.rates,
      mine,
      overflowsPerUnit: e.overflowsPerUnit,
    };
  }

  private context(now: number) {
    const core = this.core;
    // With a substitution server the master asks it for reviews like a backup (Fig. 16, P30).
    const coordinator = this.seeded.bypassCoordinator ? null : core.activeCoordinator;
    const role =
      core.role === "master" && !coordinator
        ? "master"
        : core.role === "backup" || core.role === "master"
          ? "backup"
          : "initialize";
    const self = core.opts.self;
    let allocation: ReadonlyMap<string, string>;
    let healthy: string[];
    let epoch: number;
    if (role === "master" && core.master.isActive) {
      const s = core.master.snapshot(now);
      allocation = core.master.allocationInForce;
      epoch = s.epoch;
      // The master engine's own order (self first, then priority), so the reviewer's
      // estimate of the by-rate allocation is the one the engine computes.
      healthy = s.members
        .filter((m) => m.condition !== "faulty")
        .sort((a, b) => (a.id === self ? -1 : b.id === self ? 1 : b.priority - a.priority))
        .map((m) => m.id);
    } else {
      allocation = allocationMap(core.member.allocation);
      epoch = core.member.currentVersion.epoch;
      healthy = [];
    }
    const master = coordinator ?? core.vrrpState.masterAddress;
    return { now, role, master, healthy, allocation, epoch } as const;
  }

  snapshot(now: number) {
    return this.reviewer?.snapshot(now) ?? null;
  }
}

function allocationMap(entries: readonly AllocationEntry[]): Map<string, string> {
  return new Map(entries.map((e) => [e.condition, e.owner]));
}
