import { QUEUE_MARK_MASK, ROLE_QUEUES } from "../../dataplane/conventions.ts";
import { HoldQueue, type KeyCounters } from "../../dataplane/hold-queue.ts";
import { ensureQueueRule, type QueueRule, removeQueueRule } from "../../dataplane/iptables-queue.ts";
import type { CommandHost } from "../../remote/command.ts";
import type { NatlbConfig } from "./config.ts";
import { emptyReport, type HoldReport, type TransitionHold } from "./hold.ts";
import { HOLD_MARK } from "./ruleset.ts";

/**
 * Transition-mode holding with the kernel's NFQUEUE (lib/dataplane HoldQueue): nftables
 * marks the packets of a VIP in transition (ruleset.ts, chain hold_mark), one iptables
 * rule in raw PREROUTING queues marked packets *before conntrack*, and this class keeps
 * them per VIP, bounded in packets, bytes and age (each bound counted), until step 4
 * releases them in arrival order; conntrack then looks each one up afresh and finds the
 * moved entry.
 */
export class NfqueueHold implements TransitionHold {
  private queue: HoldQueue<string> | undefined;
  private readonly keyOf = new Map<string, string>();
  private readonly fromServer = new Map<string, string>();
  private readonly firstHeldAt = new Map<string, number>();
  private readonly episodeStart = new Map<string, KeyCounters>();
  private readonly rule: QueueRule;

  constructor(
    private readonly config: NatlbConfig,
    private readonly host: CommandHost,
    private readonly options: { netns?: string } = {},
  ) {
    this.rule = {
      table: "raw",
      chain: "PREROUTING",
      mark: HOLD_MARK,
      mask: QUEUE_MARK_MASK,
      queueNum: config.queueNum,
    };
    for (const v of config.vips) {
      this.keyOf.set(v.address, v.address);
      if (config.embodiment === "fullnat") this.keyOf.set(v.internal, v.address);
      else for (const s of v.servers) this.fromServer.set(s.address, v.address);
    }
  }

  async open(): Promise<void> {
    if (this.queue) return;
    const t = this.config.transition;
    this.queue = HoldQueue.open<string>({
      queueNum: this.config.queueNum,
      ...(this.options.netns ? { queue: { netns: this.options.netns } } : {}),
      // Client -> VIP (and, full NAT, server -> the VIP's internal address) by destination;
      // embodiment 1 server -> client by the server's source address.
      key: (s) => this.keyOf.get(s.dst) ?? this.fromServer.get(s.src),
      bounds: { packets: t.maxPackets, bytes: t.maxBytes, ageMs: t.maxHoldMs },
      onPacket: (record, key, action) => {
        if (key !== undefined && action === "held" && !this.firstHeldAt.has(key))
          this.firstHeldAt.set(key, record.arrivedAt);
      },
    });
    await ensureQueueRule(this.host, this.rule);
  }

  async hold(vip: string): Promise<void> {
    if (!this.queue) throw new Error("hold queue not open");
    this.firstHeldAt.delete(vip);
    this.episodeStart.set(vip, this.queue.counters(vip));
    this.queue.hold(vip);
  }

  /** What happened to `vip`'s packets since hold(vip). */
  private episode(vip: string, released: number, discarded: number, inOrder: boolean): HoldReport {
    const q = this.queue;
    if (!q) return emptyReport(vip);
    const now = q.counters(vip);
    const start = this.episodeStart.get(vip) ?? now;
    const first = this.firstHeldAt.get(vip);
    this.firstHeldAt.delete(vip);
    this.episodeStart.delete(vip);
    return {
      vip,
      held: now.heldTotal - start.heldTotal,
      released,
      discarded,
      overflowDropped: now.overflowDropped - start.overflowDropped,
      timeoutDropped: now.timeoutDropped - start.timeoutDropped,
      holdMs: first !== undefined && released > 0 ? Math.round((performance.now() - first) * 10) / 10 : 0,
      inOrder,
    };
  }

  async release(vip: string): Promise<HoldReport> {
    const q = this.queue;
    if (!q) return emptyReport(vip);
    const held = q.held(vip);
    // HoldQueue keeps arrival order; check it rather than assume it.
    let inOrder = true;
    for (let i = 1; i < held.length; i++)
      if ((held[i]?.arrival ?? 0) <= (held[i - 1]?.arrival ?? 0)) inOrder = false;
    const r = q.release(vip, { nextMode: "pass" });
    return this.episode(vip, r.released, r.discarded, inOrder);
  }

  async discard(vip: string): Promise<HoldReport> {
    const q = this.queue;
    if (!q) return emptyReport(vip);
    const n = q.discard(vip);
    q.passThrough(vip);
    return this.episode(vip, 0, n, true);
  }

  /** Counters of every VIP the queue has seen (bounds hits included). */
  stats() {
    return this.queue?.stats();
  }

  async close(): Promise<void> {
    await removeQueueRule(this.host, this.rule).catch(() => 0);
    this.queue?.close();
    this.queue = undefined;
  }
}

/** The mark and queue the NAT-LB balancer uses (lib/dataplane/conventions.ts). */
export const NATLB_QUEUE = ROLE_QUEUES.natlb;
