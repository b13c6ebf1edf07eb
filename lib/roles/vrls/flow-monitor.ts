/**
 * The packet monitor of one member (seed Fig. 6: buffer checker 392 / flow rate checker
 * 393, buffer overflow monitor 390 / counter 391, flow rate record controller 396):
 * per-condition flow rate (bps) from the per-element byte counters of the member's
 * owner table's verdict maps (owner-table.ts), and buffer overflows per time unit: the egress qdiscs' drops (a
 * router's capacity, what `tc -s qdisc` shows), the kernel's NFQUEUE drops (queue full or netlink
 * socket full: /proc/net/netfilter/nfnetlink_queue, per network namespace) and the
 * HoldQueue's own overflow drops.
 *
 * One JSON listing of the table's maps through the agent's in-process libnftables and one
 * rtnetlink qdisc dump (tandem-netlink `Link.rootQdiscs`) per sample. Until issue 11 this
 * spawned `tc -s -j qdisc show` every 250 ms: the fork blocked the agent's event loop for
 * 1.3 ms p50 and up to 6.7 ms (an 85 MB node process), a stall in the middle of whatever
 * hand-off message arrived then. A hand-off re-creates a condition's element with a new
 * verdict and a fresh counter, so a counter that went down is taken as having restarted from
 * zero (one that restarted and passed its old value within one sample is undercounted once).
 *
 * The listing is `list maps ip`, never `list table`: nftables 1.0.6 prints the flags of a
 * table with `flags owner` out of bounds in JSON, which corrupted the agent's heap within a
 * few hundred listings (see listSetsJson in lib/dataplane/nft.ts).
 */
import { readFile } from "node:fs/promises";
import { listMapsJson, type NftTarget } from "../../dataplane/nft.ts";
import { type OwnerMap, parseOwnerMaps } from "./owner-table.ts";

/** One interface's root qdisc: its interface index and drop counter (null: the kernel gave none). */
export interface RootQdisc {
  index: number;
  drops: number | null;
}

export interface FlowMonitorOptions {
  /** The namespace's root qdiscs now (in the agent: an rtnetlink dump, no process). */
  rootQdiscs: () => RootQdisc[];
  /** The member's nftables (in process in the agent). */
  nft: NftTarget;
  table: string;
  /** The condition key of an owner-table element (address/prefix, or a bucket's number in `by_bucket`). */
  conditionOf: (map: OwnerMap, element: string) => string | undefined;
  /** Interface indexes whose qdisc drops are not the router's egress (the LAN side, the macvlan), now. */
  ignoreIndexes: () => readonly number[];
  /** Rates are averaged over this window (seed: "measured before for a certain time period"). */
  windowMs: number;
  /** Overflows are reported per this time unit. */
  timeUnitMs: number;
  /** Overflow drops of the hold queue so far (cumulative). */
  queueOverflows: () => number;
}

export interface FlowReading {
  at: number;
  rates: Map<string, number>;
  overflowsPerUnit: number;
  /** Cumulative egress qdisc drops and queue overflows (diagnostics). */
  qdiscDrops: number;
  nfqueueDrops: number;
  queueOverflows: number;
}

interface Point {
  at: number;
  bytes: Map<string, number>;
  overflows: number;
}

export class FlowMonitor {
  private readonly lastCounter = new Map<string, number>();
  private readonly cumulative = new Map<string, number>();
  private readonly history: Point[] = [];
  private lastQdisc = new Map<number, number>();
  private qdiscDrops = 0;
  failures = 0;

  constructor(private readonly opts: FlowMonitorOptions) {}

  /** Reads the kernel counters and returns the averages over the window. */
  async sample(now: number): Promise<FlowReading | null> {
    const maps = await listMapsJson(this.opts.nft, "ip").catch(() => undefined);
    if (maps === undefined) {
      this.failures++;
      return null;
    }
    this.readMaps(maps);
    try {
      this.readQdiscs(this.opts.rootQdiscs());
    } catch {
      this.failures++;
    }
    const queueOverflows = this.opts.queueOverflows();
    const nfqueueDrops = await readNfqueueDrops();
    const point: Point = {
      at: now,
      bytes: new Map(this.cumulative),
      overflows: this.qdiscDrops + nfqueueDrops + queueOverflows,
    };
    this.history.push(point);
    while (this.history.length > 2 && (this.history[1]?.at ?? now) <= now - this.opts.windowMs)
      this.history.shift();
    const first = this.history[0] as Point;
    const dt = now - first.at;
    const rates = new Map<string, number>();
    for (const [c, b] of point.bytes)
      rates.set(c, dt > 0 ? ((b - (first.bytes.get(c) ?? 0)) * 8 * 1000) / dt : 0);
    const overflowsPerUnit = dt > 0 ? ((point.overflows - first.overflows) * this.opts.timeUnitMs) / dt : 0;
    return { at: now, rates, overflowsPerUnit, qdiscDrops: this.qdiscDrops, nfqueueDrops, queueOverflows };
  }

  private readMaps(json: string): void {
    let elements: ReturnType<typeof parseOwnerMaps>;
    try {
      elements = parseOwnerMaps(json, this.opts.table);
    } catch {
      this.failures++;
      return;
    }
    for (const e of elements) {
      const condition = this.opts.conditionOf(e.map, e.element);
      if (condition === undefined) continue;
      // A hand-off re-creates the element (new verdict, counter from zero): a counter that
      // went down restarted.
      const id = `${e.map} ${e.element}`;
      const prev = this.lastCounter.get(id) ?? 0;
      const delta = e.bytes >= prev ? e.bytes - prev : e.bytes;
      this.lastCounter.set(id, e.bytes);
      this.cumulative.set(condition, (this.cumulative.get(condition) ?? 0) + delta);
    }
  }

  private readQdiscs(list: readonly RootQdisc[]): void {
    const ignore = this.opts.ignoreIndexes();
    const seen = new Map<number, number>();
    for (const q of list) {
      if (ignore.includes(q.index) || q.drops === null) continue;
      const prev = this.lastQdisc.get(q.index) ?? 0;
      this.qdiscDrops += q.drops >= prev ? q.drops - prev : q.drops;
      seen.set(q.index, q.drops);
    }
    this.lastQdisc = seen;
  }
}

/**
 * Kernel NFQUEUE drops in this namespace: per queue line of
 * /proc/net/netfilter/nfnetlink_queue, fields 6 (queue_dropped: queue full) and 7
 * (user_dropped: netlink socket full). 0 when the file is absent (no queue bound yet).
 */
export async function readNfqueueDrops(file = "/proc/net/netfilter/nfnetlink_queue"): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return 0;
  }
  let sum = 0;
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length >= 7) sum += (f[5] ?? 0) + (f[6] ?? 0);
  }
  return sum;
}
