import { Conntrack, ConntrackEvents, type CtEvent } from "tandem-netlink";
import {
  type ConnEntry,
  entryCtKey,
  entryKey,
  entryToCreate,
  entryToInsertLine,
  flowToEntry,
  type ParsedTable,
  rawFlowOf,
} from "./conn-table.ts";

/**
 * The kernel's conntrack table of one balancer, over one persistent ctnetlink socket
 * (tandem-netlink: libnetfilter_conntrack's message encoding over libmnl, the encoding
 * the conntrack tool uses, so NAT bindings are set up as `conntrack -I --dst-nat` does).
 * No process per operation: listing 1000 entries takes ~10 ms and creating them ~6 ms,
 * where a spawned `conntrack -L` / `conntrack -R` took 70-200 ms each on a loaded host
 * and was most of a move's time. Every call is synchronous.
 */
export class ConntrackTable {
  private readonly ct: Conntrack;

  constructor(
    private readonly vips: () => ReadonlySet<string>,
    options: { netns?: string } = {},
  ) {
    this.ct = new Conntrack(options.netns ? { netns: options.netns } : {});
  }

  /** Entries whose original destination is a VIP (all VIPs, or just `vip`). */
  list(vip?: string): ParsedTable {
    const vips = vip ? new Set([vip]) : this.vips();
    const out: ParsedTable = { entries: [], skipped: 0, malformed: [] };
    for (const f of this.ct.dump({ dst: [...vips] })) {
      const e = flowToEntry(rawFlowOf(f), vips);
      if (e) out.entries.push(e);
      else out.skipped++;
    }
    return out;
  }

  /** The current state of each entry (undefined when the kernel no longer has it). */
  get(entries: readonly ConnEntry[]): (ConnEntry | undefined)[] {
    if (entries.length === 0) return [];
    const vips = this.vips();
    return this.ct.get(entries.map(entryCtKey)).map((f) => (f ? flowToEntry(rawFlowOf(f), vips) : undefined));
  }

  /**
   * Creates entries (step 3 on the new owner), in batches on the one socket. An entry
   * already there (same original tuple) is replaced with the state given (`replace`, what
   * a move does: a new owner's copies are inert until the end of switch, and a delta
   * brings newer states of flows the pre-copy sent) or left alone. Either way a repeated
   * transfer is idempotent.
   */
  import(
    entries: readonly ConnEntry[],
    options: { replace?: boolean } = {},
  ): { imported: number; alreadyPresent: number } {
    if (entries.length === 0) return { imported: 0, alreadyPresent: 0 };
    const r = this.ct.create(entries.map(entryToCreate), { replace: options.replace ?? false });
    const first = r.errors[0];
    if (first) {
      const e = entries[first.index] as ConnEntry;
      throw new Error(
        `conntrack create failed for ${r.errors.length} of ${entries.length} entries, first: ${first.code} (${first.message}) for \`conntrack ${entryToInsertLine(e)}\``,
      );
    }
    return { imported: r.created + r.replaced, alreadyPresent: r.existing + r.replaced };
  }

  /** Deletes every entry of `vip` (step 4 on the old owner). Returns how many went. */
  deleteVip(vip: string): number {
    return this.deleteEntries(this.list(vip).entries);
  }

  /** Deletes the given entries (their original tuples). Returns how many went. */
  deleteEntries(entries: readonly ConnEntry[]): number {
    if (entries.length === 0) return 0;
    return this.ct.destroy(entries.map(entryCtKey)).destroyed;
  }

  counters() {
    return this.ct.counters();
  }

  get open(): boolean {
    return this.ct.open;
  }

  close(): void {
    this.ct.close();
  }
}

/**
 * One subscription to the kernel's conntrack events (NEW, UPDATE, DESTROY) for a
 * balancer's VIPs, for the agent's whole life (kernel-side group membership on a
 * persistent socket: nothing to start per move, no settle time). Any number of
 * {@link CtWatcher}s collect from it. A burst that overflows the socket's 16 MiB buffer
 * is counted by the kernel (ENOBUFS) and marks every watcher lost.
 */
export class CtEventHub {
  private readonly events: ConntrackEvents;
  private readonly watchers = new Set<CtWatcher>();
  private lostSeen = 0;

  constructor(
    vips: readonly string[],
    private readonly table: ConntrackTable,
    options: { netns?: string } = {},
  ) {
    this.events = new ConntrackEvents(
      { ...(options.netns ? { netns: options.netns } : {}), dst: [...vips], rcvBufBytes: 16 << 20 },
      (events) => this.dispatch(events),
    );
  }

  private dispatch(events: readonly CtEvent[]): void {
    const { enobufs } = this.events.counters();
    if (enobufs > this.lostSeen) {
      this.lostSeen = enobufs;
      for (const w of this.watchers) w.lost = true;
    }
    if (this.watchers.size === 0) return;
    for (const e of events) for (const w of this.watchers) w.onEvent(e);
  }

  /** Hands every event the kernel has queued by now to the watchers (synchronously). */
  pump(): void {
    this.dispatch(this.events.pump());
  }

  /**
   * A watcher of the flows of `vips` (default: all) that change from now on. Events the
   * kernel queued before this call are consumed first, so they do not count.
   */
  watch(vips?: Iterable<string>): CtWatcher {
    this.pump();
    const w = new CtWatcher(this, this.table, vips ? new Set(vips) : undefined);
    this.watchers.add(w);
    return w;
  }

  /** @internal */
  detach(w: CtWatcher): void {
    this.watchers.delete(w);
  }

  counters() {
    return this.events.counters();
  }

  close(): void {
    this.watchers.clear();
    this.events.close();
  }
}

/**
 * The flows of some VIPs that appeared, changed or ended since the watcher started (or
 * its last take). A move uses one for the delta after the pre-copy: entries born or
 * changed on the old owner after the bulk copy, each in its latest state (a flow copied
 * in SYN_SENT that has since become ESTABLISHED must arrive as ESTABLISHED, or the new
 * owner would find the client's ACK invalid). The latest state is read from the table
 * when taken (an UPDATE event carries the TCP state only when that changed).
 */
export class CtWatcher {
  /** Latest event per flow; `complete`: the event carried the whole state (see take()). */
  private readonly changed = new Map<string, { entry: ConnEntry; complete: boolean }>();
  private readonly removed = new Map<string, ConnEntry>();
  private stopped = false;
  /** Events were lost (socket overflow): the changes collected are not complete. */
  lost = false;

  constructor(
    private readonly hub: CtEventHub,
    private readonly table: ConntrackTable,
    private readonly vips: ReadonlySet<string> | undefined,
  ) {}

  /** @internal */
  onEvent(ev: CtEvent): void {
    if (this.vips && !this.vips.has(ev.flow.orig.dst)) return;
    const entry = flowToEntry(rawFlowOf(ev.flow), this.vips ?? new Set([ev.flow.orig.dst]));
    if (!entry) return;
    const key = entryKey(entry);
    if (ev.type === "destroy") {
      this.changed.delete(key);
      this.removed.set(key, entry);
    } else {
      this.removed.delete(key);
      this.changed.set(key, { entry, complete: entry.protocol === "udp" || entry.tcpState !== undefined });
    }
  }

  /**
   * What changed since start (or the last take): every event the kernel has sent by now
   * counts (the hub is pumped first), each changed flow in its latest state. A flow's last
   * event gives that state when it carried the TCP state (NEW events do, and any event of
   * a state change); otherwise (e.g. an UPDATE that only set ASSURED) the flow is read
   * from the table now, and one gone meanwhile is listed as removed. The timeout is the
   * one of the event (the kernel refreshes it without telling).
   */
  take(): { changed: ConnEntry[]; removed: ConnEntry[] } {
    this.hub.pump();
    const latest = [...this.changed.values()];
    const removed = [...this.removed.values()];
    this.changed.clear();
    this.removed.clear();
    const changed = latest.filter((c) => c.complete).map((c) => c.entry);
    const stale = latest.filter((c) => !c.complete).map((c) => c.entry);
    this.table.get(stale).forEach((now, i) => {
      if (now) changed.push(now);
      else removed.push(stale[i] as ConnEntry);
    });
    return { changed, removed };
  }

  /** Listening, and nothing lost so far. */
  get running(): boolean {
    return !this.stopped && !this.lost;
  }

  stop(): void {
    this.stopped = true;
    this.hub.detach(this);
  }
}
