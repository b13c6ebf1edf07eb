/**
 * One member of a load-sharing virtual router, as a pure, clock-injected core:
 * the RFC 5798 state machine (type 1, vrrp-state.ts) plus the seed's extension
 * (types 2-8): responses to advertisements, the master's allocation
 * (master.ts) and every member's hand-off (member.ts), and end-system
 * discovery (discovery.ts). The router agent turns received packets into
 * events and carries out the actions; tests drive several cores over a
 * simulated LAN.
 */
import { bucketConditions, type Condition, conditionKey } from "./conditions.ts";
import { Discovery, type LearnedBy, type SubnetSpec } from "./discovery.ts";
import { MasterEngine, type MasterSnapshot } from "./master.ts";
import { type MemberAction, MemberEngine, type MemberSnapshot } from "./member.ts";
import type { Destination, HandoffMode, VrlsMessage } from "./messages.ts";
import { initialVrrpState, nextDeadline, step, type VrrpAction, type VrrpState } from "./vrrp-state.ts";

export type ConditionScheme =
  | { kind: "address" }
  | { kind: "prefix"; prefixes: string[] }
  | { kind: "bucket"; over: "src" | "src+dst"; count: number; seed: number };

export interface RouterCoreOptions {
  vrid: number;
  self: string;
  priority: number;
  advertIntervalCs: number;
  preempt: boolean;
  virtualAddresses: string[];
  members: { id: string; priority: number }[];
  mode: HandoffMode;
  timerDelayMs: number;
  retryMs: number;
  maxRetries: number;
  responseTimeoutMs: number;
  discoveryMs: number;
  /** A member that failed gets conditions again only after answering this long (issue 6). */
  rejoinHoldDownMs?: number;
  infoRequestIntervalMs: number;
  /**
   * Substitution server (seed Fig. 14, coordinator.ts): its registered address, and how long
   * without its keepalive (type 9) before the master does the work itself again.
   */
  coordinator?: string;
  coordinatorTimeoutMs?: number;
  /**
   * While the substitution server allocates, the master router confirms nothing (P24), so a
   * hand-off with it runs on this grace time (member.ts): default 100 ms.
   */
  coordinatorGraceMs?: number;
  subnets: SubnetSpec[];
  conditions: ConditionScheme;
  /** Seeded faults switched on (lib/roles/seeded-faults.ts); absent: none. */
  faults?: string[];
}

export type CoreAction =
  | Exclude<VrrpAction, { type: "transition" }>
  | { type: "role"; role: "initialize" | "backup" | "master"; now: number }
  | { type: "send"; to: Destination; message: VrlsMessage }
  | Exclude<MemberAction, { type: "send" }>
  | { type: "sendInfoRequest"; subnets: SubnetSpec[] };

export type CoreEvent =
  | { type: "startup"; now: number }
  | { type: "shutdown"; now: number }
  | { type: "tick"; now: number }
  | { type: "advertisement"; now: number; from: string; priority: number; maxAdverIntCs: number }
  /**
   * `from`: the member that sent the message; `via`: the substitution server that transferred
   * it (a backup's confirmation, seed Fig. 15 P25), when it did not come straight from `from`.
   */
  | { type: "message"; now: number; from: string; message: VrlsMessage; via?: string }
  | { type: "learned"; now: number; address: string; by: LearnedBy }
  | {
      type: "reallocate";
      now: number;
      explicit?: ReadonlyMap<string, string>;
      ratesBps?: ReadonlyMap<string, number>;
    };

export interface CoreSnapshot {
  self: string;
  vrid: number;
  role: VrrpState["name"];
  masterAddress: string | null;
  mode: HandoffMode;
  member: MemberSnapshot;
  master: MasterSnapshot | null;
  endSystems: ReturnType<Discovery["list"]>;
  counters: Record<string, number>;
}

export class RouterCore {
  private vrrp: VrrpState;
  readonly member: MemberEngine;
  readonly master: MasterEngine;
  readonly discovery: Discovery;
  private lastInfoRequest = Number.NEGATIVE_INFINITY;
  /** Substitution server: last keepalive heard, and whether it does the master's work now. */
  private coordinatorHeard = Number.NEGATIVE_INFINITY;
  private coordinatorOn = false;
  readonly counters: Record<string, number> = {
    advertisementsIn: 0,
    responsesSent: 0,
    allocationsIn: 0,
    confirmationsIn: 0,
    markersIn: 0,
    unknownSender: 0,
  };

  constructor(readonly opts: RouterCoreOptions) {
    if (!opts.members.some((m) => m.id === opts.self))
      throw new Error(`members must include this router (${opts.self})`);
    this.vrrp = initialVrrpState({
      vrid: opts.vrid,
      priority: opts.priority,
      advertIntervalCs: opts.advertIntervalCs,
      preempt: opts.preempt,
      primaryAddress: opts.self,
      virtualAddresses: opts.virtualAddresses,
      ...(opts.faults?.length ? { faults: opts.faults } : {}),
    });
    this.member = new MemberEngine({
      self: opts.self,
      timerDelayMs: opts.timerDelayMs,
      retryMs: opts.retryMs,
      ...(opts.faults?.length ? { faults: opts.faults } : {}),
    });
    this.master = new MasterEngine({
      self: opts.self,
      members: opts.members,
      mode: opts.mode,
      retryMs: opts.retryMs,
      maxRetries: opts.maxRetries,
      responseTimeoutMs: opts.responseTimeoutMs,
      discoveryMs: opts.discoveryMs,
      rejoinHoldDownMs: opts.rejoinHoldDownMs ?? 0,
      ...(opts.faults?.length ? { faults: opts.faults } : {}),
    });
    this.discovery = new Discovery(opts.subnets, [
      ...opts.virtualAddresses,
      ...opts.members.map((m) => m.id),
    ]);
    if (opts.conditions.kind !== "address")
      this.master.addConditions(this.fixedConditions().map(conditionKey));
  }

  /** The substitution server's address while it does the allocation work (Fig. 14), else null. */
  get activeCoordinator(): string | null {
    return this.coordinatorOn ? (this.opts.coordinator ?? null) : null;
  }

  get role(): VrrpState["name"] {
    return this.vrrp.name;
  }

  get vrrpState(): VrrpState {
    return this.vrrp;
  }

  /**
   * When the driver should call tick next: VRRP timers, a hand-off's timed step
   * (MemberEngine.nextDeadline), else the extension's periodic tick at retryMs.
   */
  nextWake(now: number): number {
    const ext = now + Math.max(1, Math.min(this.opts.retryMs, 10 * this.opts.advertIntervalCs));
    let wake = ext;
    for (const d of [nextDeadline(this.vrrp), this.member.nextDeadline()])
      if (d !== null) wake = Math.min(wake, d);
    return wake;
  }

  handle(event: CoreEvent): CoreAction[] {
    const out: CoreAction[] = [];
    const loopback: { from: string; message: VrlsMessage }[] = [];
    const emit = (actions: readonly (MemberAction | CoreAction | { type: "log"; message: string })[]) => {
      for (const a of actions) {
        if (a.type === "send") {
          out.push(a);
          // Our own multicast is not looped back by the socket: deliver it to ourselves here.
          if (a.to === "all" || a.to.member === this.opts.self)
            loopback.push({ from: this.opts.self, message: a.message });
        } else out.push(a as CoreAction);
      }
    };
    this.dispatch(event, emit);
    for (let i = 0; i < loopback.length && i < 64; i++) {
      const l = loopback[i];
      if (l) this.dispatch({ type: "message", now: event.now, from: l.from, message: l.message }, emit, true);
    }
    return out.filter((a) => !(a.type === "send" && a.to !== "all" && a.to.member === this.opts.self));
  }

  private dispatch(
    event: CoreEvent,
    emit: (a: readonly (MemberAction | CoreAction)[]) => void,
    fromSelf = false,
  ): void {
    const now = event.now;
    switch (event.type) {
      case "startup":
      case "shutdown":
      case "tick":
      case "advertisement": {
        if (event.type === "advertisement")
          this.counters.advertisementsIn = (this.counters.advertisementsIn ?? 0) + 1;
        const before = this.vrrp;
        const r = step(this.vrrp, event);
        this.vrrp = r.state;
        for (const a of r.actions) {
          if (a.type === "transition") emit(this.onTransition(before, a.to, now));
          else emit([a]);
        }
        if (event.type === "shutdown") {
          emit([{ type: "dataplane", dispositions: new Map() }]);
        }
        // The master router of a coordinated series is its silent member (P24), also a new one.
        if (event.type === "advertisement" && this.coordinatorOn && this.vrrp.name === "backup")
          this.member.setSilent(this.vrrp.masterAddress);
        if (event.type === "advertisement" && this.vrrp.name === "backup" && event.priority > 0) {
          // Seed: "on receiving an advertisement packet, a backup router transmits a response (Type 2)".
          const v = this.member.currentVersion;
          this.counters.responsesSent = (this.counters.responsesSent ?? 0) + 1;
          emit([
            {
              type: "send",
              to: { member: event.from },
              message: { type: "response", priority: this.opts.priority, ...v },
            },
          ]);
          // Figs. 14-15 (P20-P21): the substitution server hears the backups' responses too
          // (its view of their health).
          const coord = this.activeCoordinator;
          if (coord)
            emit([
              {
                type: "send",
                to: { member: coord },
                message: { type: "response", priority: this.opts.priority, ...v },
              },
            ]);
        }
        if (event.type === "tick") {
          if (
            this.coordinatorOn &&
            !this.opts.faults?.includes("vrls-substitution-failure-ignored") &&
            now - this.coordinatorHeard > (this.opts.coordinatorTimeoutMs ?? this.opts.responseTimeoutMs)
          ) {
            // Seed: "the condition of substitution server (fault) is set into master router 3-1
            // and master router 3-1 performs the processing without using substitution server 6".
            this.coordinatorOn = false;
            this.counters.coordinatorFaults = (this.counters.coordinatorFaults ?? 0) + 1;
            emit([{ type: "log", message: `substitution server ${this.opts.coordinator} faulty` }]);
            if (this.vrrp.name === "master" && !this.master.isActive) {
              for (const a of this.master.start(
                now,
                this.member.currentVersion.epoch,
                this.member.allocation,
                null,
              ))
                if (a.type === "log") emit([a]);
              // The allocation in force stays as it is (same owners: a new series, no hand-off).
              this.master.requestReallocation(
                new Map(this.member.allocation.map((e) => [e.condition, e.owner])),
              );
            }
          }
          if (this.vrrp.name !== "initialize") emit(this.member.onTick(now));
          if (this.master.isActive) {
            emit(this.master.onTick(now));
            if (
              now - this.lastInfoRequest >= this.opts.infoRequestIntervalMs &&
              this.opts.infoRequestIntervalMs > 0
            ) {
              this.lastInfoRequest = now;
              emit([{ type: "sendInfoRequest", subnets: this.discovery.subnetSpecs() }]);
            }
          }
        }
        return;
      }
      case "learned": {
        if (this.discovery.learn(event.address, event.by, now) && this.opts.conditions.kind === "address") {
          this.master.addConditions([event.address]);
        }
        return;
      }
      case "reallocate":
        if (this.master.isActive) this.master.requestReallocation(event.explicit, event.ratesBps);
        return;
      case "message":
        if (event.via !== undefined) {
          // P25: only the registered server transfers, and only confirmations.
          if (event.via !== this.activeCoordinator || event.message.type !== "confirmation") {
            this.counters.transfersRejected = (this.counters.transfersRejected ?? 0) + 1;
            return;
          }
          this.counters.confirmationsTransferredIn = (this.counters.confirmationsTransferredIn ?? 0) + 1;
        }
        this.onMessage(event.from, event.message, now, emit, fromSelf);
        return;
    }
  }

  private onMessage(
    from: string,
    m: VrlsMessage,
    now: number,
    emit: (a: readonly (MemberAction | CoreAction)[]) => void,
    fromSelf: boolean,
  ): void {
    if (this.opts.coordinator !== undefined && from === this.opts.coordinator) {
      if (this.vrrp.name !== "initialize") this.onCoordinatorMessage(m, now, emit);
      return;
    }
    if (!this.opts.members.some((x) => x.id === from)) {
      this.counters.unknownSender = (this.counters.unknownSender ?? 0) + 1;
      return;
    }
    if (this.vrrp.name === "initialize") return;
    switch (m.type) {
      case "response":
        if (this.master.isActive) emit(this.master.onResponse(from, m, now));
        return;
      case "allocation": {
        this.counters.allocationsIn = (this.counters.allocationsIn ?? 0) + 1;
        // Only the master VRRP elected allocates (a master that just lost its place may
        // still have allocations in flight).
        const master = this.vrrp.name === "master" ? this.opts.self : this.vrrp.masterAddress;
        if (this.coordinatorOn || (master !== null && from !== master)) {
          this.counters.allocationsFromNonMaster = (this.counters.allocationsFromNonMaster ?? 0) + 1;
          return;
        }
        emit(this.member.onAllocation(m, now, from));
        return;
      }
      case "confirmation":
        this.counters.confirmationsIn = (this.counters.confirmationsIn ?? 0) + 1;
        if (!fromSelf) emit(this.member.onConfirmation(from, m, now));
        if (this.master.isActive) emit(this.master.onConfirmation(from, m, now));
        return;
      case "markers":
        this.counters.markersIn = (this.counters.markersIn ?? 0) + 1;
        emit(this.member.onMarkers(from, m, now));
        return;
      case "reviewRequest":
      case "rateRequest":
      case "rateResponse":
        // Allocation review: handled by the Reviewer (reviewed-core.ts) before the core.
        return;
      case "registration":
      case "registrationAck":
        // Only a substitution server registers (seed Fig. 14); routers are configured members.
        this.counters.registrationFromRouter = (this.counters.registrationFromRouter ?? 0) + 1;
        return;
    }
  }

  /**
   * The substitution server (seed Figs. 14-16): its registration (type 9) doubles as its
   * keepalive; while it is registered it allocates (the master engine rests) and its
   * allocations are the ones members apply.
   */
  private onCoordinatorMessage(
    m: VrlsMessage,
    now: number,
    emit: (a: readonly (MemberAction | CoreAction)[]) => void,
  ): void {
    const from = this.opts.coordinator as string;
    switch (m.type) {
      case "registration": {
        this.coordinatorHeard = now;
        if (this.vrrp.name === "master") {
          emit([
            {
              type: "send",
              to: { member: from },
              message: {
                type: "registrationAck",
                epoch: this.member.currentVersion.epoch,
                accepted: true,
                role: "coordinator",
                member: from,
              },
            },
          ]);
        }
        if (!this.coordinatorOn) {
          this.coordinatorOn = true;
          this.counters.coordinatorRegistrations = (this.counters.coordinatorRegistrations ?? 0) + 1;
          if (this.master.isActive) this.master.stop();
          emit([{ type: "log", message: `substitution server ${from} registered: it allocates now` }]);
        }
        return;
      }
      case "allocation": {
        this.counters.allocationsIn = (this.counters.allocationsIn ?? 0) + 1;
        if (!this.coordinatorOn) {
          this.counters.allocationsFromNonMaster = (this.counters.allocationsFromNonMaster ?? 0) + 1;
          return;
        }
        // P24: the master router records the server's allocation without a response; the
        // backups' responses go to the server, which transfers them (P25).
        const master = this.vrrp.name === "master" ? this.opts.self : this.vrrp.masterAddress;
        emit(
          this.member.onAllocation(m, now, from, {
            coordinator: from,
            silent: master,
            graceMs: this.opts.coordinatorGraceMs ?? 100,
          }),
        );
        return;
      }
      default:
        return;
    }
  }

  private onTransition(before: VrrpState, to: VrrpState["name"], now: number): CoreAction[] {
    const actions: CoreAction[] = [{ type: "role", role: to, now }];
    // A new master router while the server allocates: it is the silent member now (P24).
    if (this.coordinatorOn && to === "master") this.member.setSilent(this.opts.self);
    if (to === "master" && this.coordinatorOn) {
      // The substitution server allocates; it sees the new master's advertisements.
    } else if (to === "master") {
      const dead = before.name === "backup" ? before.masterAddress : null;
      for (const a of this.master.start(
        now,
        this.member.currentVersion.epoch,
        this.member.allocation,
        dead,
      )) {
        if (a.type === "log") actions.push(a);
      }
      this.lastInfoRequest = Number.NEGATIVE_INFINITY;
    } else if (this.master.isActive) {
      this.master.stop();
    }
    return actions;
  }

  private fixedConditions(): Condition[] {
    const c = this.opts.conditions;
    if (c.kind === "bucket") return bucketConditions(c.over, c.count, c.seed);
    if (c.kind === "prefix") {
      return c.prefixes.map((p) => {
        const [network, len] = p.split("/");
        return { kind: "prefix", network: network ?? "0.0.0.0", length: Number(len) };
      });
    }
    return [];
  }

  snapshot(now: number): CoreSnapshot {
    return {
      self: this.opts.self,
      vrid: this.opts.vrid,
      role: this.vrrp.name,
      masterAddress: this.vrrp.masterAddress,
      mode: this.opts.mode,
      member: this.member.snapshot(),
      master: this.master.isActive ? this.master.snapshot(now) : null,
      endSystems: this.discovery.list(),
      counters: { ...this.counters, discoveryIgnored: this.discovery.ignored },
    };
  }
}
