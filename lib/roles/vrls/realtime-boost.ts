/**
 * Issue 11: a VRLS agent's event loop thread runs under SCHED_FIFO while a hand-off is in
 * flight on it, and under SCHED_OTHER (nice -10) otherwise.
 *
 * Why: a hand-off is a chain of message hops (seed Figs. 9/10: allocation 3, responses 2,
 * confirmations 4, markers), each one wake-up of an agent on a busy 2-core host. At nice
 * -10 a hop costs ~1 ms p50 with a ~3 ms tail (bench handoff's per-step trace), and the
 * exactly-once p99 stayed at 21.5-23.6 ms; with real-time agents it was 7.3 ms. Always
 * real-time is wrong for a router that forwards in the kernel: on 2 cores the agents then
 * preempt the kernel's deferred packet processing (ksoftirqd) and two members reached only
 * 1.41x one member's goodput (test/vrls-sharing.test.ts). Boosting only while this member
 * or master has a hand-off in flight (bounded: the hand-off's own timeouts) gives the
 * hops the CPU when they matter and leaves it to forwarding the rest of the time.
 */
export type SchedulerPolicy = "fifo" | "other";

export interface RealtimeBoostOptions {
  /** Sets the calling thread's policy (tandem-netlink's setThreadScheduler); throws if refused. */
  setScheduler: (policy: SchedulerPolicy, priority: number) => void;
  /** The SCHED_FIFO priority while boosted. Default 10 (below the kernel's own threads at 50). */
  priority?: number;
  /**
   * How long the boost outlives the last hand-off activity, so back-to-back hand-offs do
   * not switch policy twice each. Default 20 ms.
   */
  lingerMs?: number;
  /** Told once if the kernel refuses (e.g. EPERM without CAP_SYS_NICE); boosting then stops. */
  onRefused?: (message: string) => void;
}

export class RealtimeBoost {
  private boosted = false;
  private refused = false;
  private linger: ReturnType<typeof setTimeout> | undefined;
  /** Times the thread went real-time (status). */
  boosts = 0;
  private readonly priority: number;
  private readonly lingerMs: number;

  constructor(private readonly o: RealtimeBoostOptions) {
    this.priority = o.priority ?? 10;
    this.lingerMs = o.lingerMs ?? 20;
  }

  get active(): boolean {
    return this.boosted;
  }

  /** Called whenever hand-off state may have changed: true while one is in flight. */
  update(inHandoff: boolean): void {
    if (this.refused) return;
    if (inHandoff) {
      if (this.linger) {
        clearTimeout(this.linger);
        this.linger = undefined;
      }
      if (!this.boosted && this.set("fifo", this.priority)) {
        this.boosted = true;
        this.boosts++;
      }
      return;
    }
    if (!this.boosted || this.linger) return;
    this.linger = setTimeout(() => {
      this.linger = undefined;
      this.drop();
    }, this.lingerMs);
    this.linger.unref();
  }

  /** Back to SCHED_OTHER now (shutdown). */
  drop(): void {
    if (this.linger) clearTimeout(this.linger);
    this.linger = undefined;
    if (this.boosted && this.set("other", 0)) this.boosted = false;
  }

  private set(policy: SchedulerPolicy, priority: number): boolean {
    try {
      this.o.setScheduler(policy, priority);
      return true;
    } catch (e) {
      this.refused = true;
      this.o.onRefused?.((e as Error).message);
      return false;
    }
  }
}
