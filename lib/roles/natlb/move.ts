import { appendFileSync, closeSync, fsyncSync, openSync, readFileSync } from "node:fs";
import { pause } from "../../remote/wait.ts";
import { emptyReport, type HoldReport } from "./hold.ts";

/**
 * The control function's VIP move (seed 002, first embodiment, "the IP address is moved
 * through a process comprising the following four steps"), as a journaled state machine:
 *
 *   1 transition  the new owner puts the VIP in transition mode (Fig. 8A): its packets are held
 *   2 route       the old owner drops the VIP's addresses; the new one takes them + gratuitous ARP
 *   3 entries     the VIP's entries go from the old owner's table (or, on failover, from the
 *                 servers' copies, third embodiment) into the new owner's; the old owner deletes
 *                 them after step 4 (and a grace period for packets already on their way to it)
 *   4 end         end-of-switch: the old owner forgets the VIP (Fig. 8B); the new owner returns
 *                 it to normal mode and sends the held packets through the new entries (Fig. 8C)
 *
 * Every step is a call that resolves only when the balancer confirms it. Every step is
 * idempotent, so a step can be repeated after a crash. The journal (one JSON line per
 * event, fsync'd) lets a restarted controller finish or undo a half-done move:
 * before the old owner deleted its entries the move is rolled back (the old owner
 * re-takes the route; the held packets are dropped and TCP retransmits them), after
 * that it is completed. A VIP is therefore never left without an owner.
 */

export interface BalancerPort {
  readonly name: string;
  /** Step 1 (enter) on the new owner; also the undo of step 1 (leave). */
  beginTransition(vip: string): Promise<void>;
  abortTransition(vip: string): Promise<HoldReport>;
  /** Step 2: take (claim) or give up (release) the VIP's addresses. */
  claim(vip: string): Promise<void>;
  release(vip: string): Promise<void>;
  /**
   * Step 3 on a live old owner: send the VIP's entries straight to balancer `to` (which
   * confirms them). Resolves with the count. "precopy" sends everything and starts
   * watching for changes; a later "final" call with the same `transferId` sends only
   * what appeared or changed since (the delta); "final" without a pre-copy sends all.
   */
  sendEntries(vip: string, to: string, transferId?: string, phase?: TransferPhase): Promise<number>;
  /** Step 4. Old side: forget the VIP (mode row and any entry left). New side: normal mode, drain. */
  endSwitch(vip: string, side: "old" | "new"): Promise<HoldReport>;
}

export type TransferPhase = "precopy" | "final";

/** Where a failover finds the entries of a failed balancer: the servers' copies (Fig. 13). */
export interface CopySource {
  /** Step 3 of a failover: the keepers send their copies of `failed`'s entries for `vip` to `to`. */
  sendCopies(vip: string, failed: string, to: string): Promise<number>;
}

/**
 * planned: the four steps, entries from the old owner (first embodiment).
 * failover: the old owner is dead; entries from the servers' copies (third embodiment).
 * failover-entries-first: Modification 2 for a failover: the copies first, then the route.
 * entries-first: Modification 2 (entries set before the route moves; no transition mode).
 * naive: the prior art (route first, entries after, no transition mode), for comparison.
 */
export type MoveKind = "planned" | "failover" | "failover-entries-first" | "entries-first" | "naive";
export type MoveStep = "transition" | "precopy" | "route" | "entries" | "end";

export interface MoveRequest {
  id: string;
  vip: string;
  from: string;
  to: string;
  kind: MoveKind;
}

export interface StepTiming {
  step: MoveStep;
  ms: number;
  /** When the step finished, ms since the epoch (the controller's clock; charts mark it). */
  at: number;
}

export interface MoveReport extends MoveRequest {
  outcome: "completed" | "rolled-back";
  /** When the move began, ms since the epoch (the controller's clock). */
  startedAt: number;
  totalMs: number;
  steps: StepTiming[];
  entriesMoved: number;
  /** Entries sent ahead of the route switch (planned moves with pre-copy). */
  entriesPrecopied: number;
  entriesSource: "old-owner" | "copies" | "none";
  hold: HoldReport;
  error?: string;
}

type JournalEvent =
  | { ev: "begin"; at: number; move: MoveRequest }
  | { ev: "step"; at: number; id: string; step: MoveStep; ms: number; detail?: unknown }
  | { ev: "done"; at: number; id: string; outcome: MoveReport["outcome"]; error?: string };

export interface JournalRecord {
  move: MoveRequest;
  steps: MoveStep[];
  outcome?: MoveReport["outcome"];
}

/** Append-only move journal: one JSON object per line, fsync'd after every event. */
export class MoveJournal {
  constructor(readonly file: string) {}

  append(event: JournalEvent): void {
    appendFileSync(this.file, `${JSON.stringify(event)}\n`);
    const fd = openSync(this.file, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Every move in the journal; a torn last line (crash mid-write) is ignored. */
  load(): Map<string, JournalRecord> {
    const out = new Map<string, JournalRecord>();
    let text = "";
    try {
      text = readFileSync(this.file, "utf8");
    } catch {
      return out;
    }
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      let e: JournalEvent;
      try {
        e = JSON.parse(line) as JournalEvent;
      } catch {
        continue;
      }
      if (e.ev === "begin") out.set(e.move.id, { move: e.move, steps: [] });
      else if (e.ev === "step") out.get(e.id)?.steps.push(e.step);
      else if (e.ev === "done") {
        const r = out.get(e.id);
        if (r) r.outcome = e.outcome;
      }
    }
    return out;
  }

  unfinished(): JournalRecord[] {
    return [...this.load().values()].filter((r) => !r.outcome);
  }
}

export interface MoveContext {
  balancers: ReadonlyMap<string, BalancerPort>;
  journal: MoveJournal;
  copies?: CopySource;
  /** Called between steps (tests use it to inject a crash at a known point). */
  onStep?: (id: string, step: MoveStep) => void | Promise<void>;
  /** For the naive move: how long traffic reaches the new owner before its entries do. */
  naiveGapMs?: number;
  /** Planned moves send the entries ahead of the route switch too (default true). */
  precopy?: boolean;
  /** How long a failover waits for the failed balancer's answers (default 0: it does not). */
  deadCallTimeoutMs?: number;
}

/**
 * Thrown by an onStep hook to stop a move dead, as a controller crash would: no rollback,
 * no completion, no "done" in the journal. recoverMoves() picks the move up.
 */
export class ControllerCrash extends Error {
  constructor(step: MoveStep) {
    super(`controller crashed after step ${step}`);
    this.name = "ControllerCrash";
  }
}

class StepError extends Error {
  constructor(
    readonly step: MoveStep,
    cause: unknown,
  ) {
    super(`step ${step} failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

function port(ctx: MoveContext, name: string): BalancerPort {
  const p = ctx.balancers.get(name);
  if (!p) throw new Error(`no balancer named "${name}" (known: ${[...ctx.balancers.keys()].join(", ")})`);
  return p;
}

/**
 * A failed balancer is still told (it may only have lost its control path), but the move
 * does not wait for an answer that will likely never come: at most `ms` (default 0).
 */
async function tellDead(p: Promise<unknown>, ms: number): Promise<void> {
  p.catch(() => undefined);
  if (ms > 0) await withTimeout(p, ms, "failed balancer").catch(() => undefined);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Runs one move to completion or rollback. Never leaves the VIP without an owner. */
export async function moveVip(ctx: MoveContext, req: MoveRequest): Promise<MoveReport> {
  ctx.journal.append({ ev: "begin", at: Date.now(), move: req });
  return runMove(ctx, req, new Set());
}

/** Finishes or undoes every move the journal shows as unfinished (controller restart). */
export async function recoverMoves(ctx: MoveContext): Promise<MoveReport[]> {
  const out: MoveReport[] = [];
  for (const rec of ctx.journal.unfinished()) out.push(await runMove(ctx, rec.move, new Set(rec.steps)));
  return out;
}

async function runMove(ctx: MoveContext, req: MoveRequest, done: Set<MoveStep>): Promise<MoveReport> {
  const t0 = performance.now();
  const startedAt = Date.now();
  const to = port(ctx, req.to);
  const from = port(ctx, req.from);
  const deadMs = ctx.deadCallTimeoutMs ?? 0;
  const failover = req.kind === "failover" || req.kind === "failover-entries-first";
  const fromAlive = !failover;
  const report: MoveReport = {
    ...req,
    outcome: "completed",
    startedAt,
    totalMs: 0,
    steps: [],
    entriesMoved: 0,
    entriesPrecopied: 0,
    entriesSource: "none",
    hold: emptyReport(req.vip),
  };
  const step = async (name: MoveStep, fn: () => Promise<unknown>) => {
    if (done.has(name)) return;
    const s = performance.now();
    let detail: unknown;
    try {
      detail = await fn();
    } catch (e) {
      throw new StepError(name, e);
    }
    const ms = Math.round((performance.now() - s) * 10) / 10;
    const at = Date.now();
    report.steps.push({ step: name, ms, at });
    ctx.journal.append({ ev: "step", at, id: req.id, step: name, ms, detail });
    done.add(name);
    try {
      await ctx.onStep?.(req.id, name);
    } catch (e) {
      if (e instanceof ControllerCrash) throw e;
    }
  };

  const transfer = async () => {
    let n: number;
    if (failover) {
      if (!ctx.copies) throw new Error("failover needs the servers' table copies (no CopySource)");
      n = await ctx.copies.sendCopies(req.vip, req.from, req.to);
      report.entriesSource = "copies";
    } else {
      n = await from.sendEntries(req.vip, req.to, req.id, "final");
      report.entriesSource = "old-owner";
    }
    report.entriesMoved = report.entriesPrecopied + n;
    return { entries: n };
  };
  const switchRoute = async () => {
    // The old owner lets go of the addresses first, then the new owner takes them and
    // announces them: the new owner's hold starts with that announcement, so nothing but
    // the entries should come between it and the end of switch. Meanwhile the old owner
    // still translates whatever reaches it (its entries and mode stay until step 4).
    if (fromAlive) await from.release(req.vip);
    else await tellDead(from.release(req.vip), deadMs);
    await to.claim(req.vip);
  };

  try {
    if (req.kind === "planned" || req.kind === "failover") {
      await step("transition", () => to.beginTransition(req.vip));
      if (req.kind === "planned" && (ctx.precopy ?? true)) {
        // Beyond the seed: the bulk of the entries goes before the route switch (the new
        // owner has no traffic of the VIP yet), step 3 sends only what appeared since, so
        // packets are held for milliseconds rather than for a whole table transfer.
        await step("precopy", async () => {
          report.entriesPrecopied = await from.sendEntries(req.vip, req.to, req.id, "precopy");
          return { entries: report.entriesPrecopied };
        });
      }
      await step("route", switchRoute);
      await step("entries", transfer);
    } else if (req.kind === "entries-first" || req.kind === "failover-entries-first") {
      await step("entries", transfer);
      await step("route", switchRoute);
    } else {
      await step("route", switchRoute);
      // Time is the subject: the naive mode's gap between the route and the entries.
      await pause(ctx.naiveGapMs ?? 0);
      await step("entries", transfer);
    }
    await step("end", async () => {
      // The new owner first: its held packets wait for this, the old owner's cleanup does not.
      report.hold = await to.endSwitch(req.vip, "new");
      if (fromAlive) await from.endSwitch(req.vip, "old");
      else await tellDead(from.endSwitch(req.vip, "old"), deadMs);
      return report.hold;
    });
  } catch (e) {
    if (e instanceof ControllerCrash) throw e;
    report.error = (e as Error).message;
    // Before the old owner deleted its entries the move can be undone; after, only finished.
    // The old owner deletes its copy only when both the entries and the route have moved.
    const entriesGone = done.has("entries") && done.has("route");
    if (!entriesGone && fromAlive) {
      await rollback(ctx, req, from, to);
      report.outcome = "rolled-back";
    } else {
      // Complete what is missing; every step is idempotent, so repeat until it holds.
      await completeAfterFailure(req, done, step, switchRoute, transfer, from, to, report, fromAlive, deadMs);
    }
  }
  report.totalMs = Math.round((performance.now() - t0) * 10) / 10;
  ctx.journal.append({
    ev: "done",
    at: Date.now(),
    id: req.id,
    outcome: report.outcome,
    ...(report.error ? { error: report.error } : {}),
  });
  return report;
}

async function rollback(
  ctx: MoveContext,
  req: MoveRequest,
  from: BalancerPort,
  to: BalancerPort,
): Promise<void> {
  // The old owner still has every entry: give it the route back, undo the new owner's
  // transition mode (held packets are dropped; TCP retransmits them) and its copies.
  await from.claim(req.vip);
  await to.release(req.vip).catch(() => undefined);
  await to.abortTransition(req.vip).catch(() => undefined);
  await to.endSwitch(req.vip, "old").catch(() => undefined);
  await from.endSwitch(req.vip, "new").catch(() => undefined);
  ctx.journal.append({ ev: "step", at: Date.now(), id: req.id, step: "end", ms: 0, detail: "rolled back" });
}

async function completeAfterFailure(
  req: MoveRequest,
  done: Set<MoveStep>,
  step: (name: MoveStep, fn: () => Promise<unknown>) => Promise<void>,
  switchRoute: () => Promise<void>,
  transfer: () => Promise<unknown>,
  from: BalancerPort,
  to: BalancerPort,
  report: MoveReport,
  fromAlive: boolean,
  deadMs: number,
): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      if (!done.has("transition") && (req.kind === "planned" || req.kind === "failover")) {
        await step("transition", () => to.beginTransition(req.vip));
      }
      await step("route", switchRoute);
      await step("entries", transfer);
      await step("end", async () => {
        if (fromAlive)
          await withTimeout(from.endSwitch(req.vip, "old"), 30_000, "endSwitch old").catch(() => undefined);
        else await tellDead(from.endSwitch(req.vip, "old"), deadMs);
        report.hold = await to.endSwitch(req.vip, "new");
        return report.hold;
      });
      return;
    } catch (e) {
      lastError = e;
      // The controller's own recovery policy (role behaviour, seed 002): back off, then resume.
      await pause(100 * (attempt + 1));
    }
  }
  throw new Error(`move ${req.id} of ${req.vip} could not be completed: ${(lastError as Error)?.message}`);
}
