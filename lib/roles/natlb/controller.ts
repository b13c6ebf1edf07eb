import { waitUntil } from "../../remote/wait.ts";
import type { LoadReport } from "../../wire/natlb-status.ts";
import { computeAssignment } from "./assignment.ts";
import { type NatlbConfig, type NodeIds, nodeIds } from "./config.ts";
import type { ControlChannel } from "./control-channel.ts";
import { emptyReport, type HoldReport } from "./hold.ts";
import {
  type BalancerPort,
  type CopySource,
  type MoveContext,
  MoveJournal,
  type MoveKind,
  type MoveReport,
  type MoveStep,
  moveVip,
  recoverMoves,
  type TransferPhase,
} from "./move.ts";

/**
 * The control function 52 (seed 002): collects each balancer's per-VIP traffic from its
 * load reports, computes the VIP-to-balancer assignment, and moves VIPs in the four steps
 * by control messages. A balancer whose reports stop for failureTimeoutMs is failed: its
 * VIPs go to the survivors with the entries restored from the servers' copies.
 */

/** A balancer reached by control messages; every method resolves on the balancer's ack. */
export class UdpBalancerPort implements BalancerPort {
  moveId = 0;

  constructor(
    readonly name: string,
    private readonly channel: ControlChannel,
    private readonly config: NatlbConfig,
    private readonly ids: NodeIds,
  ) {}

  private get id(): number {
    return this.ids.balancer.get(this.name) as number;
  }

  private get dest() {
    const b = this.config.balancers[this.name];
    if (!b) throw new Error(`no balancer named "${this.name}"`);
    return { address: b.address, port: this.config.control.port };
  }

  private ask(body: Parameters<ControlChannel["request"]>[0], timeoutMs = 10_000): Promise<number> {
    return this.channel.request(body, this.dest, { moveId: this.moveId, timeoutMs });
  }

  async beginTransition(vip: string): Promise<void> {
    await this.ask({ type: 1, vip, from: 0, to: this.id, enter: true });
  }
  async abortTransition(vip: string): Promise<HoldReport> {
    await this.ask({ type: 1, vip, from: 0, to: this.id, enter: false });
    return emptyReport(vip);
  }
  async claim(vip: string): Promise<void> {
    await this.ask({ type: 2, vip, from: 0, to: this.id, method: "garp" });
  }
  async release(vip: string): Promise<void> {
    await this.ask({ type: 2, vip, from: this.id, to: 0, method: "garp" });
  }
  /** The balancer keys the pre-copy/delta pair by the move id of the messages. */
  sendEntries(
    vip: string,
    to: string,
    _transferId?: string,
    phase: TransferPhase = "final",
  ): Promise<number> {
    const toId = this.ids.balancer.get(to);
    if (toId === undefined) throw new Error(`no balancer named "${to}"`);
    // An empty type 3 from the controller is a transfer request: the old owner sends its
    // entries to `to` itself (entries travel balancer to balancer, as in the seed's step 3).
    // parts 1 / part 0: the transfer proper; parts 2 / part 1: the pre-copy.
    const part = phase === "precopy" ? { part: 1, parts: 2 } : { part: 0, parts: 1 };
    return this.ask({ type: 3, vip, from: this.id, to: toId, ...part, entries: [] }, 30_000);
  }
  async endSwitch(vip: string, side: "old" | "new"): Promise<HoldReport> {
    const released = await this.ask(
      side === "new"
        ? { type: 4, vip, from: 0, to: this.id, entriesTransferred: 0 }
        : { type: 4, vip, from: this.id, to: 0, entriesTransferred: 0 },
    );
    // The balancer keeps the full hold report (its agent's holdReports); the ack carries the count.
    return { ...emptyReport(vip), released, held: released };
  }
}

/** The servers' keepers, asked to send a failed balancer's entries of a VIP to the survivor. */
export class UdpCopySource implements CopySource {
  moveId = 0;
  constructor(
    private readonly channel: ControlChannel,
    private readonly config: NatlbConfig,
    private readonly ids: NodeIds,
  ) {}

  async sendCopies(vip: string, failed: string, to: string): Promise<number> {
    const v = this.config.vips.find((x) => x.address === vip);
    if (!v) throw new Error(`unknown VIP ${vip}`);
    const from = this.ids.balancer.get(failed) as number;
    const toId = this.ids.balancer.get(to) as number;
    const hosts = [...new Set(v.servers.map((s) => s.host))];
    const counts = await Promise.all(
      hosts.map((h) =>
        this.channel.request(
          { type: 3, vip, from, to: toId, part: 0, parts: 1, entries: [] },
          { address: this.ids.serverAddress.get(h) as string, port: this.config.control.port },
          { moveId: this.moveId, timeoutMs: 30_000 },
        ),
      ),
    );
    return counts.reduce((a, b) => a + b, 0);
  }
}

export interface BalancerView {
  name: string;
  alive: boolean;
  lastSeenMs: number | undefined;
  owned: string[];
  transition: string[];
  invalidRejected: number;
}

export interface VipView {
  vip: string;
  owner: string | undefined;
  /** Bytes per second over the last report interval (both directions). */
  bytesPerS: number;
  packetsPerS: number;
}

interface Sample {
  at: number;
  packets: number;
  bytes: number;
}

export class Controller {
  readonly ids: NodeIds;
  readonly ports: Map<string, UdpBalancerPort>;
  readonly copies: UdpCopySource;
  readonly journal: MoveJournal;
  private readonly lastSeen = new Map<string, number>();
  private readonly lastReport = new Map<string, LoadReport>();
  /** Per VIP: the owner's last two counter samples, for a rate. */
  private readonly samples = new Map<string, { owner: string; prev?: Sample; cur?: Sample; rate: Sample }>();
  private readonly failed = new Set<string>();
  private moveCounter = Date.now() % 100_000;
  private busy: Promise<unknown> = Promise.resolve();
  private autoTimer: NodeJS.Timeout | undefined;
  private lastMoveAt = 0;
  readonly moves: MoveReport[] = [];
  onStep: MoveContext["onStep"];
  entriesFirstFailover = false;
  /** Seeded faults (lib/roles/seeded-faults.ts) switched on in this controller; none by default. */
  faults: ReadonlySet<string> = new Set();

  constructor(
    readonly config: NatlbConfig,
    readonly channel: ControlChannel,
    journalFile: string,
  ) {
    this.ids = nodeIds(config);
    this.ports = new Map(
      Object.keys(config.balancers).map((b) => [b, new UdpBalancerPort(b, channel, config, this.ids)]),
    );
    this.copies = new UdpCopySource(channel, config, this.ids);
    this.journal = new MoveJournal(journalFile);
    channel.onLoadReport = (r) => this.onReport(r);
  }

  private onReport(r: LoadReport): void {
    const name = this.ids.nameOf.get(r.balancer);
    if (!name || !this.config.balancers[name]) return;
    const now = Date.now();
    this.lastSeen.set(name, now);
    this.lastReport.set(name, r);
    for (const v of r.vips) {
      if (!v.owned) continue;
      const cur: Sample = { at: now, packets: Number(v.packets), bytes: Number(v.bytes) };
      const s = this.samples.get(v.vip);
      if (!s || s.owner !== name) {
        this.samples.set(v.vip, { owner: name, cur, rate: s?.rate ?? { at: now, packets: 0, bytes: 0 } });
        continue;
      }
      const prev = s.cur;
      s.prev = prev;
      s.cur = cur;
      if (prev && cur.at > prev.at) {
        const dt = (cur.at - prev.at) / 1000;
        const rate = {
          at: now,
          packets: (cur.packets - prev.packets) / dt,
          bytes: (cur.bytes - prev.bytes) / dt,
        };
        // Smooth over a few reports (EWMA, alpha 0.5): one report interval is short.
        s.rate = {
          at: now,
          packets: s.rate.packets * 0.5 + rate.packets * 0.5,
          bytes: s.rate.bytes * 0.5 + rate.bytes * 0.5,
        };
      }
    }
  }

  isAlive(name: string, now = Date.now()): boolean {
    const seen = this.lastSeen.get(name);
    return seen !== undefined && now - seen <= this.config.failureTimeoutMs && !this.failed.has(name);
  }

  /** The VIP's owner as the balancers report it (the one that holds the address). */
  ownerOf(vip: string): string | undefined {
    for (const [name, r] of this.lastReport) {
      if (this.failed.has(name)) continue;
      if (r.vips.some((v) => v.vip === vip && v.owned)) return name;
    }
    // A failed balancer still "owns" its VIPs until they are moved.
    for (const [name, r] of this.lastReport) if (r.vips.some((v) => v.vip === vip && v.owned)) return name;
    return undefined;
  }

  status(): { balancers: BalancerView[]; vips: VipView[]; moves: MoveReport[] } {
    const now = Date.now();
    const balancers = Object.keys(this.config.balancers).map((name) => {
      const r = this.lastReport.get(name);
      const seen = this.lastSeen.get(name);
      return {
        name,
        alive: this.isAlive(name, now),
        lastSeenMs: seen === undefined ? undefined : now - seen,
        owned: r?.vips.filter((v) => v.owned).map((v) => v.vip) ?? [],
        transition: r?.vips.filter((v) => v.transition).map((v) => v.vip) ?? [],
        invalidRejected: Number(r?.invalidRejected ?? 0n),
      };
    });
    const vips = this.config.vips.map((v) => {
      const s = this.samples.get(v.address);
      return {
        vip: v.address,
        owner: this.ownerOf(v.address),
        bytesPerS: Math.round(s?.rate.bytes ?? 0),
        packetsPerS: Math.round(s?.rate.packets ?? 0),
      };
    });
    return { balancers, vips, moves: this.moves };
  }

  /** Waits until every balancer has reported at least once. */
  async waitForReports(timeoutMs = 10_000): Promise<void> {
    const silent = () => Object.keys(this.config.balancers).filter((b) => !this.lastSeen.has(b));
    await waitUntil(() => silent().length === 0, {
      timeoutMs,
      what: "every balancer's first report",
      everyMs: 50,
      last: () => `silent: ${silent().join(", ")}`,
    });
  }

  private context(): MoveContext {
    const ctx: MoveContext = { balancers: this.ports, journal: this.journal, copies: this.copies };
    if (this.onStep) ctx.onStep = this.onStep;
    return ctx;
  }

  /** Runs moves one at a time (a VIP is in at most one move; the journal stays linear). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.busy.then(fn, fn);
    this.busy = next.catch(() => undefined);
    return next;
  }

  move(vip: string, to: string, kind: MoveKind = "planned", from?: string): Promise<MoveReport> {
    return this.serial(async () => {
      const owner = from ?? this.ownerOf(vip);
      if (!owner) throw new Error(`VIP ${vip} has no owner to move it from`);
      if (owner === to) throw new Error(`VIP ${vip} is already on ${to}`);
      const moveId = ++this.moveCounter;
      for (const p of this.ports.values()) p.moveId = moveId;
      this.copies.moveId = moveId;
      const report = await moveVip(this.context(), { id: String(moveId), vip, from: owner, to, kind });
      this.moves.push(report);
      this.lastMoveAt = Date.now();
      return report;
    });
  }

  /** Computes the assignment from the measured loads and carries out its moves (planned). */
  async rebalance(): Promise<{ moves: MoveReport[]; imbalance: number; loads: Record<string, number> }> {
    const healthy = Object.keys(this.config.balancers).filter((b) => this.isAlive(b));
    const st = this.status();
    const plan = computeAssignment(
      st.vips.map((v) => ({ vip: v.vip, load: v.bytesPerS, owner: v.owner })),
      healthy,
    );
    const done: MoveReport[] = [];
    // Seeded fault natlb-no-rebalance: the plan is computed, no VIP is moved toward it.
    const moves = this.faults.has("natlb-no-rebalance") ? [] : plan.moves;
    for (const m of moves) done.push(await this.move(m.vip, m.to, "planned", m.from));
    return { moves: done, imbalance: plan.imbalance, loads: Object.fromEntries(plan.loads) };
  }

  /**
   * Declares failed balancers and moves their VIPs to the survivors (failover); with
   * `entriesFirst` (default: as startAuto set it) in the order of modification 2: the
   * servers' copies first, then the route, no transition mode.
   */
  async checkFailures(entriesFirst = this.entriesFirstFailover): Promise<MoveReport[]> {
    // Seeded fault natlb-failover-route-first: asked for modification 2, the controller
    // still moves the route first and installs the copies after, in transition mode.
    const kind =
      entriesFirst && !this.faults.has("natlb-failover-route-first") ? "failover-entries-first" : "failover";
    const now = Date.now();
    const out: MoveReport[] = [];
    for (const name of Object.keys(this.config.balancers)) {
      if (this.failed.has(name) || this.isAlive(name, now) || !this.lastSeen.has(name)) continue;
      this.failed.add(name);
      const healthy = Object.keys(this.config.balancers).filter((b) => this.isAlive(b, now));
      if (healthy.length === 0) continue;
      const st = this.status();
      const plan = computeAssignment(
        st.vips.map((v) => ({
          vip: v.vip,
          load: v.bytesPerS,
          owner: v.owner === name ? undefined : v.owner,
        })),
        healthy,
      );
      const orphans = st.vips.filter((v) => v.owner === name);
      for (const v of orphans) {
        const to = plan.assignment.get(v.vip) as string;
        out.push(await this.move(v.vip, to, kind, name));
      }
    }
    return out;
  }

  /** Per-balancer load now (bytes/s of the VIPs each owns) and its spread around the mean. */
  balance(): { loads: Map<string, number>; imbalance: number } {
    const healthy = Object.keys(this.config.balancers).filter((b) => this.isAlive(b));
    const loads = new Map(healthy.map((b) => [b, 0]));
    for (const v of this.status().vips)
      if (v.owner && loads.has(v.owner)) loads.set(v.owner, (loads.get(v.owner) ?? 0) + v.bytesPerS);
    const values = [...loads.values()];
    const mean = values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : 0;
    const imbalance = mean > 0 ? Math.max(...values.map((l) => Math.abs(l - mean))) / mean : 0;
    return { loads, imbalance };
  }

  /**
   * Watches for failures every `everyMs`; with `rebalanceEveryMs`, also recomputes the
   * assignment that often and carries it out when the per-balancer load strays more than
   * `threshold` from the mean (and at least `holdDownMs` after the last move, so the
   * rates measured after a move settle first).
   */
  startAuto(everyMs = 100, rebalance?: { everyMs: number; threshold?: number; holdDownMs?: number }): void {
    this.stopAuto();
    let running = false;
    let lastRebalance = Date.now();
    this.autoTimer = setInterval(() => {
      if (running) return;
      running = true;
      (async () => {
        await this.checkFailures();
        if (!rebalance) return;
        const now = Date.now();
        const lastMove = this.moves.length > 0 ? this.lastMoveAt : 0;
        if (now - lastRebalance < rebalance.everyMs || now - lastMove < (rebalance.holdDownMs ?? 2000))
          return;
        lastRebalance = now;
        if (this.balance().imbalance > (rebalance.threshold ?? 0.15)) await this.rebalance();
      })()
        .catch(() => undefined)
        .finally(() => {
          running = false;
        });
    }, everyMs);
  }

  stopAuto(): void {
    if (this.autoTimer) clearInterval(this.autoTimer);
    this.autoTimer = undefined;
  }

  /** After a restart: finish or roll back every move the journal shows as unfinished. */
  recover(): Promise<MoveReport[]> {
    return this.serial(async () => {
      const open = this.journal.unfinished();
      for (const rec of open) {
        const id = Number(rec.move.id);
        for (const p of this.ports.values()) p.moveId = id;
        this.copies.moveId = id;
      }
      const reports = await recoverMoves(this.context());
      this.moves.push(...reports);
      return reports;
    });
  }

  crashAfter(step: MoveStep, crash: () => void): void {
    this.onStep = (_id, s) => {
      if (s === step) crash();
    };
  }
}
