/**
 * Receive-side limits for authenticated control messages (VRLS extension, NAT-LB control),
 * beside the replay window (replay.ts): checked before the HMAC, so a flood of junk costs
 * a map lookup per message, not a SHA-256. Pure (the caller passes the time); every refusal
 * is counted. Issue 15.
 */

/** A token bucket: `rate` tokens a second, at most `burst` saved. */
class Bucket {
  private tokens: number;
  private at: number;
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface RxLimiterOptions {
  peers: readonly string[];
  /** Messages a second one peer may have processed. Default 20,000. */
  peerPerSecond?: number;
  /** Messages a second any other single sender may have processed. Default 100. */
  senderPerSecond?: number;
  /** Messages a second all non-peer senders together may have processed. Default 1,000. */
  globalPerSecond?: number;
  /** Senders tracked; past it the oldest is forgotten (counted). Default 1,024. */
  maxSenders?: number;
}

export type RxLimitVerdict = "accept" | "peer" | "sender" | "global";

/**
 * Per-sender and global limits on the control messages a member authenticates and processes.
 * Peers have a bucket each (far above their real rate); every other sender has one, bounded
 * in number, and all of them share a global one. `counters` says how often each limit was hit.
 */
export class RxLimiter {
  private readonly peers = new Map<string, Bucket>();
  private readonly senders = new Map<string, Bucket>();
  private readonly global: Bucket;
  readonly counters = { peer: 0, sender: 0, global: 0, sendersForgotten: 0 };

  constructor(
    private readonly o: RxLimiterOptions,
    now: number,
  ) {
    const p = o.peerPerSecond ?? 20_000;
    for (const peer of o.peers) this.peers.set(peer, new Bucket(p, p, now));
    const g = o.globalPerSecond ?? 1000;
    this.global = new Bucket(g, g, now);
  }

  check(sender: string, now: number): RxLimitVerdict {
    const peer = this.peers.get(sender);
    if (peer) {
      if (peer.take(now)) return "accept";
      this.counters.peer++;
      return "peer";
    }
    let bucket = this.senders.get(sender);
    if (!bucket) {
      if (this.senders.size >= (this.o.maxSenders ?? 1024)) {
        // Maps iterate in insertion order: forget the oldest sender.
        const oldest = this.senders.keys().next().value as string;
        this.senders.delete(oldest);
        this.counters.sendersForgotten++;
      }
      const rate = this.o.senderPerSecond ?? 100;
      bucket = new Bucket(rate, rate, now);
      this.senders.set(sender, bucket);
    }
    if (!bucket.take(now)) {
      this.counters.sender++;
      return "sender";
    }
    if (!this.global.take(now)) {
      this.counters.global++;
      return "global";
    }
    return "accept";
  }

  /** Non-peer senders currently tracked (at most maxSenders). */
  get trackedSenders(): number {
    return this.senders.size;
  }
}

/**
 * At most one log line per `intervalMs` for one kind of event; the next line says how
 * many were suppressed. A flood of bad messages must not become a flood of log lines.
 */
export class LogLimiter {
  private last = Number.NEGATIVE_INFINITY;
  suppressed = 0;
  constructor(private readonly intervalMs = 1000) {}
  line(now: number, text: string, emit: (line: string) => void): void {
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.last = now;
    emit(this.suppressed > 0 ? `${text} (${this.suppressed} more like it not logged)` : text);
    this.suppressed = 0;
  }
}
