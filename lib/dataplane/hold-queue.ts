// HoldQueue: the seeds' packet buffer on top of NFQUEUE.
// - VRLS (seed 000, buffer processor; hand-off in Figs. 10-13): key = packet condition
//   (source address, prefix or hash bucket). The new owner holds a condition from the
//   allocation (type 3) until it may forward; the old owner observes it (accept + remember
//   the last packet per flow) so it can report where it stopped (type 5 / exactly-once).
// - NAT-LB (seed 002, transition mode, Figs. 7-8): key = destination VIP. Packets for a VIP
//   in transition are held, bounded, and drained in arrival order after the entries moved.
// Every packet that enters the queue gets exactly one verdict from here: accepted at once
// (pass/observe), held and later accepted or dropped (release/discard/expiry/close), or
// dropped at once (block, overflow, malformed).
import {
  type NfQueue,
  openQueue,
  type QueuedPacket,
  type QueueOptions,
  type QueueStats,
} from "tandem-nfqueue";
import { type PacketSummary, packetIdentity, summarizePacket } from "./packet.ts";

/** What happens to new arrivals of a key. */
export type KeyMode = "pass" | "hold" | "observe" | "block";

/** What happened to one arriving packet (given to the per-packet hook). */
export type ArrivalAction = "passed" | "held" | "observed" | "blocked" | "overflow" | "unkeyed";

export interface HoldBounds {
  /** Most packets held per key; arrivals beyond are dropped and counted as overflowDropped. */
  packets?: number;
  /** Most bytes (IP packet lengths) held per key; same overflow rule. */
  bytes?: number;
  /** Held packets older than this are dropped and counted as timeoutDropped. */
  ageMs?: number;
}

/** One packet that went through the queue. `identity` is computed on first use. */
export class QueuedRecord {
  #identity: string | undefined;
  constructor(
    /** Kernel packet id (per queue). */
    readonly id: number,
    /** Arrival order across the whole HoldQueue (1, 2, ...). */
    readonly arrival: number,
    /** performance.now() at arrival (ms). */
    readonly arrivedAt: number,
    /** The IP packet as the queue saw it. */
    readonly payload: Buffer,
    readonly summary: PacketSummary,
    readonly mark: number,
    readonly indev: number | undefined,
  ) {}
  /** {@link packetIdentity} of the payload (TTL/checksum-invariant 64-bit hash, hex). */
  get identity(): string {
    this.#identity ??= packetIdentity(this.payload);
    return this.#identity;
  }
  get size(): number {
    return this.payload.length;
  }
}

/** Last packet seen per flow while a key is observed. */
export interface FlowObservation {
  flow: string;
  /** Identity of the last packet of the flow that was accepted. */
  identity: string;
  packets: number;
  firstAt: number;
  lastAt: number;
  summary: PacketSummary;
  /** For TCP: the next sequence number after the last packet (seq + payload + SYN/FIN). */
  tcpNextSeq?: number;
}

export interface KeyCounters {
  /** Packets held right now, and their bytes. */
  held: number;
  heldBytes: number;
  /** Packets ever held. */
  heldTotal: number;
  /** Held packets accepted (release, passThrough, observe, forget, close). */
  released: number;
  /** Held packets dropped by discard/release filter/block/close. */
  discarded: number;
  /** Arrivals dropped because a packets/bytes bound was hit. */
  overflowDropped: number;
  /** Held packets dropped because they were older than ageMs. */
  timeoutDropped: number;
  /** Arrivals accepted at once in pass mode. */
  passed: number;
  /** Arrivals accepted at once in observe mode. */
  observed: number;
  /** Arrivals dropped at once in block mode. */
  blocked: number;
}

export interface HoldQueueOptions<K> {
  queueNum: number;
  /** Options of the underlying NFQUEUE (netns, maxLen, rcvBufBytes...). Defaults: maxLen 8192, rcvBufBytes 8 MiB. */
  queue?: QueueOptions;
  /** Maps a packet to its key (condition, VIP...). `undefined`: not ours, accepted (counted as unkeyed). */
  key: (summary: PacketSummary, packet: QueuedPacket) => K | undefined;
  /** Per-key bounds. */
  bounds?: HoldBounds;
  /** Mode of keys never set explicitly. Default "pass". */
  defaultMode?: KeyMode;
  /** Per-packet hook, after the packet's fate on arrival was decided. Must not throw. */
  onPacket?: (record: QueuedRecord, key: K | undefined, action: ArrivalAction) => void;
}

export interface ReleaseOptions {
  /** Return false to drop a held packet instead of accepting it (counted as discarded). */
  filter?: (record: QueuedRecord) => boolean;
  /** Mode after the release. Default "pass". */
  nextMode?: KeyMode;
}

export interface ReleaseResult {
  released: number;
  discarded: number;
}

export interface MarkerReleaseResult extends ReleaseResult {
  /** Flows whose marker was among the held packets (dropped up to and including it). */
  markersFound: number;
  /** Flows with a marker that was not held (the marker preceded the hold: all accepted). */
  markersMissing: number;
}

export interface HoldQueueStats<K> {
  received: number;
  /** Packets without a parseable IP header (dropped). */
  malformed: number;
  /** Packets the key function mapped to undefined (accepted). */
  unkeyed: number;
  /** Packets whose key function threw (accepted). */
  keyErrors: number;
  /** Times the per-packet hook threw (the verdict was already given). */
  hookErrors: number;
  keys: Array<{ key: K; mode: KeyMode } & KeyCounters>;
  totals: KeyCounters;
  queue: QueueStats;
}

interface KeyState {
  mode: KeyMode;
  held: QueuedRecord[];
  head: number;
  counters: KeyCounters;
  observations: Map<string, FlowObservation>;
  /** Identities of the packets observed since the observations were last taken (bounded). */
  observedIdentities: Set<string>;
}

/** How many observed identities a key remembers (a hand-off's observe window is milliseconds). */
const OBSERVED_IDENTITIES_KEPT = 4096;

function zeroCounters(): KeyCounters {
  return {
    held: 0,
    heldBytes: 0,
    heldTotal: 0,
    released: 0,
    discarded: 0,
    overflowDropped: 0,
    timeoutDropped: 0,
    passed: 0,
    observed: 0,
    blocked: 0,
  };
}

/**
 * Holds, releases, discards and observes the packets of one NFQUEUE queue per key.
 * Open it before installing the iptables rule that feeds the queue (see
 * iptables-queue.ts) and close it after removing the rule.
 */
export class HoldQueue<K = string> {
  readonly #queue: NfQueue;
  readonly #options: HoldQueueOptions<K>;
  readonly #keys = new Map<K, KeyState>();
  #arrivals = 0;
  #malformed = 0;
  #unkeyed = 0;
  #keyErrors = 0;
  #hookErrors = 0;
  readonly #arrivalListeners = new Set<() => void>();
  #arrivalsNotifyQueued = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: HoldQueueOptions<K>) {
    this.#options = options;
    for (const [field, value] of Object.entries(options.bounds ?? {})) {
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        throw new RangeError(`HoldQueue bounds.${field} must be a positive number, got ${String(value)}`);
      }
    }
    this.#queue = openQueue(
      options.queueNum,
      { maxLen: 8192, rcvBufBytes: 8 << 20, ...options.queue },
      (packet) => this.#onArrival(packet),
    );
    const ageMs = options.bounds?.ageMs;
    if (ageMs !== undefined) {
      this.#timer = setInterval(() => this.#expire(), Math.max(5, Math.min(100, ageMs / 4)));
      this.#timer.unref();
    }
  }

  /** Binds NFQUEUE `options.queueNum` (throws if another process has it). */
  static open<K = string>(options: HoldQueueOptions<K>): HoldQueue<K> {
    return new HoldQueue<K>(options);
  }

  get queueNum(): number {
    return this.#options.queueNum;
  }

  #state(key: K): KeyState {
    let st = this.#keys.get(key);
    if (!st) {
      st = {
        mode: this.#options.defaultMode ?? "pass",
        held: [],
        head: 0,
        counters: zeroCounters(),
        observations: new Map(),
        observedIdentities: new Set(),
      };
      this.#keys.set(key, st);
    }
    return st;
  }

  /**
   * Calls `listener` once after each batch of arrivals (a microtask after the queue's socket
   * was read). For waits on what the queue takes in: they wake when packets come, instead of
   * polling every event loop turn, which on a real-time thread starves the kernel's own packet
   * processing (measured: a 20 ms spin under SCHED_FIFO lost 74 datagrams of every stream).
   * Returns the function that removes it.
   */
  onArrivals(listener: () => void): () => void {
    this.#arrivalListeners.add(listener);
    return () => this.#arrivalListeners.delete(listener);
  }

  /**
   * Resolves true as soon as `check()` holds, checked now and after each batch of arrivals,
   * or with `check()`'s value after `timeoutMs`. Never polls.
   */
  whenArrived(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (value: boolean) => {
        off();
        clearTimeout(timer);
        resolve(value);
      };
      const off = this.onArrivals(() => {
        if (check()) finish(true);
      });
      const timer = setTimeout(() => finish(check()), timeoutMs);
    });
  }

  #notifyArrivals(): void {
    if (this.#arrivalListeners.size === 0 || this.#arrivalsNotifyQueued) return;
    this.#arrivalsNotifyQueued = true;
    queueMicrotask(() => {
      this.#arrivalsNotifyQueued = false;
      for (const l of [...this.#arrivalListeners]) {
        try {
          l();
        } catch {
          this.#hookErrors++;
        }
      }
    });
  }

  #onArrival(packet: QueuedPacket): void {
    this.#notifyArrivals();
    const decoded = summarizePacket(packet.payload);
    if (!decoded.ok) {
      this.#malformed++;
      this.#queue.verdict(packet.id, "drop");
      return;
    }
    const record = new QueuedRecord(
      packet.id,
      ++this.#arrivals,
      performance.now(),
      packet.payload,
      decoded.value,
      packet.mark,
      packet.indev,
    );
    let key: K | undefined;
    try {
      key = this.#options.key(decoded.value, packet);
    } catch {
      // A bug in the role's key function: the packet is not ours to hold; keep traffic flowing.
      this.#keyErrors++;
      this.#queue.verdict(packet.id, "accept");
      return;
    }
    let action: ArrivalAction;
    if (key === undefined) {
      this.#unkeyed++;
      this.#queue.verdict(packet.id, "accept");
      action = "unkeyed";
    } else {
      action = this.#decide(this.#state(key), record);
    }
    try {
      this.#options.onPacket?.(record, key, action);
    } catch {
      this.#hookErrors++;
    }
  }

  #decide(st: KeyState, record: QueuedRecord): ArrivalAction {
    const c = st.counters;
    switch (st.mode) {
      case "pass":
        this.#queue.verdict(record.id, "accept");
        c.passed++;
        return "passed";
      case "block":
        this.#queue.verdict(record.id, "drop");
        c.blocked++;
        return "blocked";
      case "observe":
        this.#queue.verdict(record.id, "accept");
        c.observed++;
        this.#observe(st, record);
        return "observed";
      case "hold": {
        const bounds = this.#options.bounds;
        if (
          (bounds?.packets !== undefined && c.held + 1 > bounds.packets) ||
          (bounds?.bytes !== undefined && c.heldBytes + record.size > bounds.bytes)
        ) {
          this.#queue.verdict(record.id, "drop");
          c.overflowDropped++;
          return "overflow";
        }
        st.held.push(record);
        c.held++;
        c.heldBytes += record.size;
        c.heldTotal++;
        return "held";
      }
    }
  }

  #observe(st: KeyState, record: QueuedRecord): void {
    const s = record.summary;
    const prev = st.observations.get(s.flow);
    const obs: FlowObservation = {
      flow: s.flow,
      identity: record.identity,
      packets: (prev?.packets ?? 0) + 1,
      firstAt: prev?.firstAt ?? record.arrivedAt,
      lastAt: record.arrivedAt,
      summary: s,
    };
    if (s.tcp) {
      const syn = s.tcp.flags & 0x02 ? 1 : 0;
      const fin = s.tcp.flags & 0x01 ? 1 : 0;
      obs.tcpNextSeq = (s.tcp.seq + s.tcp.payloadLength + syn + fin) >>> 0;
    }
    st.observations.set(s.flow, obs);
    st.observedIdentities.add(record.identity);
    if (st.observedIdentities.size > OBSERVED_IDENTITIES_KEPT)
      st.observedIdentities.delete(st.observedIdentities.values().next().value as string);
  }

  /** Takes the held packets of a key out of the buffer (in arrival order). */
  #drain(st: KeyState): QueuedRecord[] {
    const out = st.held.slice(st.head);
    st.held = [];
    st.head = 0;
    st.counters.held = 0;
    st.counters.heldBytes = 0;
    return out;
  }

  #verdicts(accept: number[], drop: number[]): void {
    // Drops first: they forward nothing, so the accepts that follow keep arrival order.
    if (drop.length > 0) this.#queue.verdictMany(drop, "drop");
    if (accept.length > 0) this.#queue.verdictMany(accept, "accept");
  }

  /** Holds new arrivals of `key` (buffered until release/discard/expiry). */
  hold(key: K): void {
    this.#state(key).mode = "hold";
  }

  /**
   * Accepts the held packets of `key` in arrival order (those `filter` rejects are dropped),
   * then switches the key to `nextMode` (default "pass"). Verdicts go out in one batch before
   * any later arrival is handled, so released packets keep their order ahead of new ones.
   */
  release(key: K, options: ReleaseOptions = {}): ReleaseResult {
    const st = this.#state(key);
    const accept: number[] = [];
    const drop: number[] = [];
    for (const r of this.#drain(st)) {
      if (options.filter && !options.filter(r)) drop.push(r.id);
      else accept.push(r.id);
    }
    st.mode = options.nextMode ?? "pass";
    this.#verdicts(accept, drop);
    st.counters.released += accept.length;
    st.counters.discarded += drop.length;
    return { released: accept.length, discarded: drop.length };
  }

  /**
   * Exactly-once hand-off, new owner's side: `markers` maps a flow ("proto src:sport>dst:dport",
   * {@link PacketSummary.flow}) to the identity of the last packet the old owner forwarded.
   * Held packets of such a flow up to and including the marker are dropped, the rest are
   * accepted in order. When a marker is not among the held packets, the old owner's last
   * packet preceded the hold and the whole flow is accepted.
   */
  releaseAfterMarkers(
    key: K,
    markers: ReadonlyMap<string, string>,
    nextMode: KeyMode = "pass",
  ): MarkerReleaseResult {
    const st = this.#state(key);
    const present = new Set<string>();
    for (let i = st.head; i < st.held.length; i++) {
      const r = st.held[i]!;
      if (markers.get(r.summary.flow) === r.identity) present.add(r.summary.flow);
    }
    const passed = new Set<string>();
    const result = this.release(key, {
      nextMode,
      filter: (r) => {
        const flow = r.summary.flow;
        if (!present.has(flow) || passed.has(flow)) return true;
        if (markers.get(flow) === r.identity) passed.add(flow);
        return false;
      },
    });
    let markersMissing = 0;
    for (const flow of markers.keys()) if (!present.has(flow)) markersMissing++;
    return { ...result, markersFound: present.size, markersMissing };
  }

  /** Drops the held packets of `key` that match `predicate` (all when omitted); the mode stays. */
  discard(key: K, predicate?: (record: QueuedRecord) => boolean): number {
    const st = this.#state(key);
    const keep: QueuedRecord[] = [];
    const drop: number[] = [];
    for (const r of this.#drain(st)) {
      if (!predicate || predicate(r)) drop.push(r.id);
      else keep.push(r);
    }
    st.held = keep;
    for (const r of keep) {
      st.counters.held++;
      st.counters.heldBytes += r.size;
    }
    this.#verdicts([], drop);
    st.counters.discarded += drop.length;
    return drop.length;
  }

  /** Accepts new arrivals of `key` at once (held packets are released first, in order). */
  passThrough(key: K): ReleaseResult {
    return this.release(key, { nextMode: "pass" });
  }

  /**
   * Accepts new arrivals of `key` at once and remembers, per flow, the last one (identity,
   * TCP next sequence number). Held packets are released first. Observations accumulate
   * until {@link takeObservations}.
   */
  observe(key: K): ReleaseResult {
    return this.release(key, { nextMode: "observe" });
  }

  /** Drops new arrivals of `key` and the packets it holds. */
  block(key: K): number {
    const dropped = this.discard(key);
    this.#state(key).mode = "block";
    return dropped;
  }

  /** Releases what `key` holds and forgets it (it falls back to the default mode). */
  forget(key: K): ReleaseResult {
    const result = this.release(key);
    this.#keys.delete(key);
    return result;
  }

  mode(key: K): KeyMode {
    return this.#keys.get(key)?.mode ?? this.#options.defaultMode ?? "pass";
  }

  /** The packets `key` holds now, oldest first (do not keep them past a verdict). */
  held(key: K): readonly QueuedRecord[] {
    const st = this.#keys.get(key);
    return st ? st.held.slice(st.head) : [];
  }

  /** Per-flow observations of `key` so far. */
  observations(key: K): FlowObservation[] {
    return [...(this.#keys.get(key)?.observations.values() ?? [])];
  }

  /** Returns and clears the per-flow observations of `key`. */
  takeObservations(key: K): FlowObservation[] {
    const st = this.#keys.get(key);
    if (!st) return [];
    const out = [...st.observations.values()];
    st.observations.clear();
    st.observedIdentities.clear();
    return out;
  }

  /** The identities `key` observed since its observations were last taken, oldest first (diagnostics). */
  observedIdentityList(key: K): string[] {
    return [...(this.#keys.get(key)?.observedIdentities ?? [])];
  }

  /** Whether `key` observed (took in and accepted) any of these packets since its observations were last taken. */
  observedAny(key: K, identities: readonly string[]): boolean {
    const seen = this.#keys.get(key)?.observedIdentities;
    return seen !== undefined && identities.some((i) => seen.has(i));
  }

  counters(key: K): KeyCounters {
    return { ...(this.#keys.get(key)?.counters ?? zeroCounters()) };
  }

  /** The arrival number of the newest packet taken in so far (0 before the first). */
  get lastArrival(): number {
    return this.#arrivals;
  }

  /** Takes in, synchronously, every packet the kernel already queued (see NfQueue.pump). */
  pump(): void {
    this.#queue.pump();
  }

  stats(): HoldQueueStats<K> {
    const totals = zeroCounters();
    const keys: HoldQueueStats<K>["keys"] = [];
    for (const [key, st] of this.#keys) {
      keys.push({ key, mode: st.mode, ...st.counters });
      for (const name of Object.keys(totals) as Array<keyof KeyCounters>) totals[name] += st.counters[name];
    }
    return {
      received: this.#arrivals + this.#malformed,
      malformed: this.#malformed,
      unkeyed: this.#unkeyed,
      keyErrors: this.#keyErrors,
      hookErrors: this.#hookErrors,
      keys,
      totals,
      queue: this.#queue.stats(),
    };
  }

  #expire(): void {
    const ageMs = this.#options.bounds?.ageMs;
    if (ageMs === undefined || this.#closed) return;
    const cutoff = performance.now() - ageMs;
    for (const st of this.#keys.values()) {
      const drop: number[] = [];
      while (st.head < st.held.length && st.held[st.head]!.arrivedAt <= cutoff) {
        const r = st.held[st.head++]!;
        drop.push(r.id);
        st.counters.held--;
        st.counters.heldBytes -= r.size;
      }
      if (st.head > 1024 && st.head * 2 > st.held.length) {
        st.held = st.held.slice(st.head);
        st.head = 0;
      }
      if (drop.length > 0) {
        this.#verdicts([], drop);
        st.counters.timeoutDropped += drop.length;
      }
    }
  }

  /**
   * Gives every held packet `heldVerdict` (default "drop"; counted as released/discarded),
   * then unbinds the queue. Remove the iptables rule first, or new packets are dropped by
   * the kernel while nothing is bound (unless the rule has --queue-bypass).
   */
  close(heldVerdict: "accept" | "drop" = "drop"): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const st of this.#keys.values()) {
      const ids = this.#drain(st).map((r) => r.id);
      if (heldVerdict === "accept") {
        this.#verdicts(ids, []);
        st.counters.released += ids.length;
      } else {
        this.#verdicts([], ids);
        st.counters.discarded += ids.length;
      }
    }
    this.#queue.close();
  }
}
