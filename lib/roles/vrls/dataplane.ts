/**
 * A member's data plane (seed: "determination data table 40" and "buffer processor 38"),
 * programmed inside the member's network namespace:
 *
 * - a macvlan `vr<VRID>` on the LAN interface carries the virtual MAC 00:00:5e:00:01:VRID
 *   on every member (the virtual address /32 only on the master); on a hub every member
 *   receives every frame sent to the virtual MAC. arp_ignore=1 and arp_announce=2 on the
 *   LAN interface, and on the macvlan 1 for the master and 8 for backups, so only the
 *   master answers ARP for the VIP and nobody announces the VIP with its own MAC.
 * - nftables table `ip vrls<VRID>` (owner-table.ts), forward hook at priority -200, for
 *   packets that came in on the macvlan: one verdict-map lookup by source (or bucket) ->
 *   accept (forwarded by the kernel: "own"), mark 0x1000 (held or observed in user space:
 *   "inqueue") or drop ("others"); anything else (an end system not allocated yet) -> the
 *   master queues it (forwarded at once and learned: passive discovery), a backup drops it.
 *   Per-element counters. Every packet it lets through carries the ADMITTED mark bit.
 * - Fate sharing (issue 11): that table is created with `flags owner` through the agent's
 *   persistent libnftables context, so the kernel removes it the moment the agent dies
 *   (SIGKILL included). A second table, `ip vrls<VRID>_guard` (not owned: it outlives the
 *   agent), drops at priority -150 every packet from the macvlan without the ADMITTED bit.
 *   While the agent lives the guard changes nothing; once it is dead the member forwards
 *   nothing for the virtual router, so a dead member never forwards beside its successor.
 *   docs/dataplane.md lists what stays in the kernel after a crash.
 * - one iptables-nft rule (filter FORWARD, priority 0) sends marked packets to NFQUEUE 100,
 *   where a HoldQueue keyed by condition holds, observes, passes or blocks them.
 * Element changes are single nft transactions; the hold/observe/stop decisions that must be
 * instantaneous happen in the HoldQueue (user space, one thread), never by waiting for nft.
 */
import { writeFileSync } from "node:fs";
import { Link } from "tandem-netlink";
import {
  deleteTable,
  ensureQueueRule,
  HoldQueue,
  listMapsJson,
  type NftTarget,
  nftApply,
  type QueuedRecord,
  type QueueRule,
  ROLE_QUEUES,
  readCounter,
  removeQueueRule,
  replaceTable,
} from "../../dataplane/index.ts";
import type { CommandHost } from "../../remote/command.ts";
import { virtualMac } from "../../wire/vrrp.ts";
import { type Condition, conditionMatches, parseConditionKey } from "./conditions.ts";
import { decideExactlyOnce, decideSequenceNumber, type PacketInfo, seqLt } from "./handoff.ts";
import type { Disposition } from "./member.ts";
import type { FlowMarker, HandoffMode } from "./messages.ts";
import {
  kernelClassOf,
  OWNER_MAPS,
  ownerElementOf,
  ownerMoveLines,
  ownerTableScript,
  parseOwnerMaps,
} from "./owner-table.ts";

/** Held packets named in a "holding" confirmation per condition (any one of them suffices). */
const HELD_SAMPLE_PER_CONDITION = 8;

export interface MemberDataplaneOptions {
  /** Commands (ip, sysctl) in the member's namespace. */
  /** Where its commands run (the agent's own namespace: localHost()). */
  host: CommandHost;
  /** nftables: the agent's persistent in-process context. */
  nft: NftTarget;
  /**
   * false only for the negative control `fault=zombie-dataplane`: the table is not owned
   * and no guard is installed, so the kernel rules outlive a killed agent.
   */
  fateSharing?: boolean;
  vrid: number;
  lanInterface: string;
  virtualAddress: string;
  /** Unknown sources (not in any condition) seen by the master: passive discovery. */
  onUnknownSource: (address: string) => void;
  log: (line: string) => void;
  queueNum?: number;
  mark?: number;
  /**
   * Hash-bucket conditions: the kernel computes `jhash <over> mod count seed S` into the
   * packet mark (values < 0x1000, clear of the queue mark bits) and looks it up in the
   * bucket sets; lib/roles/vrls/jhash.ts predicts the same value (tested against the kernel).
   */
  buckets?: { over: "src" | "src+dst"; count: number; seed: number };
  /**
   * false: RFC 9568 Accept_Mode False for a router that is not the address owner. The owner
   * table gets an input chain that drops every IPv4 packet addressed to the virtual address
   * (counter `accept_mode_drops`), so the master still answers ARP for it and forwards
   * through the virtual MAC, but no local socket sees packets sent to it (no ping reply, no
   * ICMP error: silently dropped). Absent or true: accepted (the VIP is a local address of
   * the master's macvlan).
   */
  acceptMode?: boolean;
}

export interface SetCounters {
  set: string;
  elements: { condition: string; packets: number; bytes: number }[];
}

/** Mark bit set on every packet the owner table lets through (outside the queue mask and the bucket values). */
const ADMITTED = 0x10000;

export class MemberDataplane {
  readonly macvlan: string;
  readonly table: string;
  readonly guardTable: string;
  private queue: HoldQueue<string> | undefined;
  private readonly applied = new Map<string, Disposition>();
  private conditions: { key: string; parsed: Condition }[] = [];
  private readonly rule: QueueRule;
  private readonly learned = new Set<string>();
  private role: "master" | "backup" | "initialize" = "initialize";
  /** Markers already sent per (peer, version, conditions), so a repeated request gets the same. */
  private readonly sentMarkers = new Map<string, FlowMarker[]>();
  readonly counters = {
    nftTransactions: 0,
    nftFailures: 0,
    /** The longest nft transaction so far, ms (it runs on the event loop: a long one stalls it). */
    nftSlowestMs: 0,
    released: 0,
    droppedAtResolve: 0,
    stopped: 0,
    deferredTransactions: 0,
  };

  constructor(private readonly opts: MemberDataplaneOptions) {
    this.macvlan = `vr${opts.vrid}`;
    this.table = `vrls${opts.vrid}`;
    this.guardTable = `vrls${opts.vrid}_guard`;
    this.rule = {
      table: "filter",
      chain: "FORWARD",
      mark: opts.mark ?? ROLE_QUEUES.vrls.mark,
      mask: 0xf000,
      queueNum: opts.queueNum ?? ROLE_QUEUES.vrls.queueNum,
    };
  }

  private async sh(argv: string[]): Promise<void> {
    const r = await this.opts.host.exec(argv);
    if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  }

  async setup(): Promise<void> {
    const { lanInterface: lan, virtualAddress: vip } = this.opts;
    const mv = this.macvlan;
    await this.opts.host.exec(["ip", "link", "del", mv]);
    await this.sh(["ip", "link", "add", mv, "link", lan, "type", "macvlan", "mode", "bridge"]);
    await this.sh(["ip", "link", "set", mv, "address", virtualMac(this.opts.vrid)]);
    for (const [k, v] of [
      [`net.ipv4.conf.${lan}.arp_ignore`, "1"],
      // ARP requests carry the LAN address, never the VIP: a backup asking "who has X,
      // tell VIP" from its own MAC would teach end systems the wrong MAC for the VIP.
      [`net.ipv4.conf.${lan}.arp_announce`, "2"],
      [`net.ipv4.conf.${lan}.rp_filter`, "0"],
      [`net.ipv4.conf.${mv}.arp_ignore`, "8"],
      [`net.ipv4.conf.${mv}.rp_filter`, "0"],
      ["net.ipv4.conf.all.rp_filter", "0"],
      [`net.ipv4.conf.${mv}.send_redirects`, "0"],
      ["net.ipv4.conf.all.send_redirects", "0"],
    ] as const) {
      await this.sh(["sysctl", "-qw", `${k}=${v}`]);
    }
    await this.sh(["ip", "link", "set", mv, "up"]);
    // The VIP is configured on the macvlan only while master (setRole).
    this.queue = HoldQueue.open<string>({
      queueNum: this.rule.queueNum,
      queue: { maxLen: 16384 },
      bounds: { packets: 100_000 },
      defaultMode: "pass",
      key: (s) => this.keyOf(s.src, s.dst),
      onPacket: (record, key, action) => {
        if (
          (action === "passed" || action === "unkeyed") &&
          !this.applied.has(key ?? "") &&
          !this.learned.has(record.summary.src)
        ) {
          this.learned.add(record.summary.src);
          this.opts.onUnknownSource(record.summary.src);
        }
      },
    });
    const mark = `0x${(this.rule.mark | ADMITTED).toString(16)}`;
    const admitted = `0x${ADMITTED.toString(16)}`;
    const fateSharing = this.opts.fateSharing !== false;
    // The guard first: from here on, only what the owner table admits leaves the macvlan.
    if (fateSharing)
      await replaceTable(
        this.opts.nft,
        { family: "ip", table: this.guardTable },
        [
          "chain guard {",
          "  type filter hook forward priority -150; policy accept;",
          `  iifname "${mv}" meta mark and ${admitted} == 0 counter drop`,
          "}",
        ].join("\n"),
      );
    await replaceTable(
      this.opts.nft,
      { family: "ip", table: this.table },
      ownerTableScript({
        macvlan: mv,
        admitted,
        queueMark: mark,
        owned: fateSharing,
        ...(this.opts.acceptMode === false ? { acceptModeDropsTo: vip } : {}),
        ...(this.opts.buckets ? { buckets: this.opts.buckets } : {}),
      }),
    );
    await ensureQueueRule(this.opts.host, this.rule);
  }

  /**
   * Master: answers ARP for the VIP and forwards (and learns) unallocated sources; backup: neither.
   * `invert` (seeded faults only, lib/roles/seeded-faults.ts): ARP and/or forwarding as the other role.
   */
  async setRole(
    role: "master" | "backup" | "initialize",
    invert: { arp?: boolean; forward?: boolean } = {},
  ): Promise<void> {
    this.role = role;
    const mark = `0x${(this.rule.mark | ADMITTED).toString(16)}`;
    const actsAs = (inverted: boolean | undefined) =>
      inverted && role !== "initialize" ? (role === "master" ? "backup" : "master") : role;
    const arpRole = actsAs(invert.arp);
    const rule =
      actsAs(invert.forward) === "master"
        ? `counter name "unknown_master" meta mark set mark or ${mark} accept`
        : 'counter name "unknown_backup" drop';
    // Only the master owns the VIP (answers ARP and traffic addressed to it, RFC 5798
    // accept mode); every member still receives the frames sent to the virtual MAC.
    // In process (rtnetlink, /proc/sys): a takeover waited ~10 ms for a spawned
    // `sh -c "sysctl ...; ip addr ..."` before its allocations (issue 11, bench failover).
    this.vipOwnership(arpRole === "master");
    await this.nft(`flush chain ip ${this.table} unknown\nadd rule ip ${this.table} unknown ${rule}\n`);
  }

  /** The VIP on the macvlan and ARP answers for it (arp_ignore 1), or neither (8). Failures are logged. */
  private vipOwnership(owner: boolean): void {
    const dev = this.macvlan;
    try {
      writeFileSync(`/proc/sys/net/ipv4/conf/${dev}/arp_ignore`, owner ? "1" : "8");
      this.link ??= new Link();
      if (owner) this.link.addAddress(dev, this.opts.virtualAddress, 32, { replace: true });
      else this.link.deleteAddress(dev, this.opts.virtualAddress, 32);
    } catch (e) {
      this.opts.log(
        `${owner ? "claim" : "release"} ${this.opts.virtualAddress} on ${dev}: ${(e as Error).message}`,
      );
    }
  }

  get currentRole(): string {
    return this.role;
  }

  /** The condition a packet belongs to (address conditions: its source). */
  private keyOf(src: string, dst: string): string | undefined {
    if (this.applied.has(src)) return src;
    for (const c of this.conditions)
      if (c.parsed.kind !== "address" && conditionMatches(c.parsed, src, dst)) return c.key;
    return src;
  }

  private nftChain: Promise<void> = Promise.resolve();
  /** rtnetlink in the agent's namespace (the VIP's address), opened at the first role change. */
  private link: Link | undefined;
  /** Per condition moved from prehold to hold: the arrival number of the last packet held before. */
  private readonly boundaries = new Map<string, number>();
  /**
   * Conditions whose stop (stopAndSendMarkers) is on its way: they keep observing until
   * `stop` blocks them, even when an apply queued before the stop already sees the newest
   * state (drop). Blocking them there cut the old owner's observation short before it had
   * seen one of the new owner's held packets (measured: a third of one member's stops).
   */
  private readonly stopsPending = new Set<string>();

  /** The agent announces a stop as soon as its core decides it, before earlier work has run. */
  expectStop(conditions: readonly string[]): void {
    for (const c of conditions) this.stopsPending.add(c);
  }

  /**
   * nft transactions run one at a time, in the order they were asked for. `later`: start it
   * from a fresh event loop turn, so that whatever the caller does next (a confirmation
   * that need not wait for it) goes out before libnftables' synchronous call; later
   * transactions still queue behind it.
   */
  private nft(script: string, later = false): Promise<void> {
    this.counters.nftTransactions++;
    const start = later ? this.nftChain.then(() => new Promise<void>((r) => setImmediate(r))) : this.nftChain;
    const next = start.then(() => {
      const t0 = performance.now();
      const applied = nftApply(this.opts.nft, script);
      this.counters.nftSlowestMs = Math.max(this.counters.nftSlowestMs, performance.now() - t0);
      return applied;
    });
    this.nftChain = next.catch(() => undefined);
    return next.catch((e) => {
      this.counters.nftFailures++;
      throw e;
    });
  }

  /** Makes the kernel and the hold queue match the core's dispositions. */
  async apply(desired: ReadonlyMap<string, Disposition>): Promise<void> {
    const q = this.queue;
    if (!q) throw new Error("data plane not set up");
    this.conditions = [...desired.keys()]
      .map((key) => ({ key, parsed: parseConditionKey(key) as Condition }))
      .filter((c) => c.parsed);
    const lines: string[] = [];
    // Whether every change only takes a condition out of the queue set: the queue already
    // does in user space what the kernel move makes permanent (pass after a resolve or
    // release, block after a stop), so what comes next (a confirmation) need not wait for it.
    let leavesQueueOnly = true;
    const all = new Set([...desired.keys(), ...this.applied.keys()]);
    for (const c of all) {
      const before = this.applied.get(c);
      let after = desired.get(c);
      // observe -> drop waits for its stop, which comes later in the agent's queue.
      if (before === "observe" && after === "drop" && this.stopsPending.has(c)) after = "observe";
      if (before === after) continue;
      if (
        before === undefined ||
        after === undefined ||
        kernelClassOf(before) !== "inqueue" ||
        kernelClassOf(after) === "inqueue"
      )
        leavesQueueOnly = false;
      // Queue modes first: packets reach the queue only once nft marks them.
      if (after === "hold" && before === "prehold") {
        // The old owner observes now: what is held so far arrived before (docs/vrls.md).
        q.pump();
        this.boundaries.set(c, q.lastArrival);
      } else if (after === "hold" || after === "prehold") q.hold(c);
      else if (after === "observe") q.observe(c);
      else if (after === "drop") q.block(c);
      // hold -> forward: the packets held stay held for the resolve/release/stop that always
      // comes with this transition (queued behind this apply). Passing them through here
      // released them unfiltered when an earlier queued apply already saw the newest state
      // (the core says forward as soon as markers arrive): duplicates under load, traced.
      // prehold -> forward comes only after a stop that blocked the condition (member.settle).
      else if (after === "forward" && q.mode(c) !== "pass" && before !== "hold" && before !== "prehold")
        q.passThrough(c);
      if (after !== "hold") this.boundaries.delete(c);
      if (ownerElementOf(c).map === OWNER_MAPS.bucket && !this.opts.buckets) continue;
      lines.push(
        ...ownerMoveLines(
          this.table,
          c,
          before === undefined ? undefined : kernelClassOf(before),
          after === undefined ? undefined : kernelClassOf(after),
        ),
      );
    }
    for (const c of all) {
      const d = desired.get(c);
      if (d === undefined) this.applied.delete(c);
      else
        this.applied.set(
          c,
          this.applied.get(c) === "observe" && d === "drop" && this.stopsPending.has(c) ? "observe" : d,
        );
    }
    if (lines.length === 0) return;
    const done = this.nft(`${lines.join("\n")}\n`, leavesQueueOnly);
    if (!leavesQueueOnly) return done;
    // Still ordered behind and before every other transaction (the chain); a failure is
    // counted (nftFailures) and logged, not lost.
    this.counters.deferredTransactions++;
    done.catch((e) => this.opts.log(`deferred nft transaction failed: ${(e as Error).message}`));
  }

  /**
   * New owner, for its "holding" confirmation (type 4 extension): identities of the first
   * packets (at most `limit`) it holds for `condition` that arrived after its boundary, that
   * is after the old owner's "observing" reached it (with no boundary, every held packet).
   * The old owner observed since before it said so, so it takes each of them in itself; a
   * packet held before the boundary may have been forwarded by its kernel instead, unseen.
   * Empty when none has arrived yet.
   */
  heldSample(condition: string, limit = HELD_SAMPLE_PER_CONDITION): string[] {
    const q = this.queue;
    if (!q) return [];
    q.pump();
    const boundary = this.boundaries.get(condition) ?? 0;
    const out: string[] = [];
    for (const r of q.held(condition)) {
      if (out.length >= limit) break;
      if (r.arrival > boundary) out.push(r.identity);
    }
    return out;
  }

  /**
   * Old owner: whether, for every condition of `held`, it has itself taken in (observed) one
   * of the packets the new owner holds. Then every packet that reached both before the new
   * owner's hold has passed this member's kernel (one hub, one order) and the stop loses none.
   */
  observedOneHeld(held: Readonly<Record<string, readonly string[]>>): boolean {
    const q = this.queue;
    if (!q) return true;
    q.pump();
    return Object.entries(held).every(([c, ids]) => ids.length === 0 || q.observedAny(c, ids));
  }

  /**
   * Resolves true once `check()` holds, checked now and whenever the queue takes packets in,
   * or with its value after `timeoutMs` (never polls: see HoldQueue.whenArrived).
   */
  whenQueued(check: () => boolean, timeoutMs: number): Promise<boolean> {
    const q = this.queue;
    return q ? q.whenArrived(check, timeoutMs) : Promise.resolve(check());
  }

  /** For a log line: per condition, how many packets were named, the queue's mode and what it observed. */
  describeObserved(held: Readonly<Record<string, readonly string[]>>): string {
    const q = this.queue;
    if (!q) return "no queue";
    return Object.entries(held)
      .map(([c, ids]) => {
        const flows = q
          .observations(c)
          .map((o) => `${o.flow} ${o.packets} pkts, last ${(performance.now() - o.lastAt).toFixed(1)} ms ago`)
          .join(", ");
        return `${c}: ${ids.length} named [${ids.join(" ")}], mode ${q.mode(c)}, kernel ${this.applied.get(c)}, ${q.counters(c).observed} observed in all, seen ${ids.filter((i) => q.observedAny(c, [i])).length}; this stop: ${flows}; observed ids ${q.observedIdentityList(c).join(" ")}`;
      })
      .join("; ");
  }

  /** Old owner: stop forwarding now (user space, instantaneous) and return the markers. */
  stop(
    peer: string,
    epoch: number,
    version: number,
    conditions: readonly string[],
    mode: HandoffMode,
  ): FlowMarker[] {
    const q = this.queue;
    if (!q) return [];
    for (const c of conditions) this.stopsPending.delete(c);
    const key = `${peer} ${epoch}.${version} ${conditions.join(",")}`;
    const known = this.sentMarkers.get(key);
    if (known) return known;
    // First take in (observe: forward) every packet the kernel already queued. Some of them
    // reached the members before the new owner began holding, so the new owner dropped its
    // copies: blocking them here lost them (a busy event loop leaves milliseconds of packets
    // in the socket; `tandem bench handoff` lost 121 of 1.8 M datagrams in 150 hand-offs).
    q.pump();
    const markers: FlowMarker[] = [];
    for (const c of conditions) {
      if (q.mode(c) === "observe") {
        q.block(c);
        this.counters.stopped++;
      }
      for (const o of q.takeObservations(c)) {
        if (mode === "exactly-once") markers.push({ flow: o.flow, identity: o.identity, count: o.packets });
        else if (o.tcpNextSeq !== undefined)
          markers.push({ flow: o.flow, nextSeq: o.tcpNextSeq, count: o.packets });
      }
    }
    this.sentMarkers.set(key, markers);
    if (this.sentMarkers.size > 64) this.sentMarkers.delete(this.sentMarkers.keys().next().value as string);
    return markers;
  }

  /**
   * Timer mode, old owner: stop now. Blocks in the queue and moves the conditions to the
   * `others` set in the next nft transaction (queued behind at most the one running),
   * without waiting for earlier actions of the agent.
   */
  stopNow(conditions: readonly string[]): Promise<void> {
    const lines: string[] = [];
    for (const c of conditions) {
      this.queue?.block(c);
      const before = this.applied.get(c);
      if (before === undefined || before === "drop") continue;
      this.applied.set(c, "drop");
      if (ownerElementOf(c).map === OWNER_MAPS.bucket && !this.opts.buckets) continue;
      lines.push(...ownerMoveLines(this.table, c, kernelClassOf(before), "others"));
    }
    return lines.length > 0 ? this.nft(`${lines.join("\n")}\n`) : Promise.resolve();
  }

  /**
   * New owner: whether the last packet the old owner forwarded, per marker, is among the
   * held packets yet (exactly-once: its identity; sequence-number: a segment reaching the
   * marker's next sequence number). Frames reach the members from one hub at the same
   * moment, so it nearly always is; on a loaded host its softirq may still be pending.
   */
  markersHeld(conditions: readonly string[], mode: HandoffMode, markers: readonly FlowMarker[]): boolean {
    const q = this.queue;
    if (!q || mode === "timer" || markers.length === 0) return true;
    q.pump();
    const held = conditions.flatMap((c) => q.held(c));
    return markers.every((m) =>
      mode === "exactly-once"
        ? held.some((r) => r.summary.flow === m.flow && r.identity === m.identity)
        : m.nextSeq === undefined ||
          held.some(
            (r) =>
              r.summary.flow === m.flow &&
              r.summary.tcp !== undefined &&
              !seqLt((r.summary.tcp.seq + r.summary.tcp.payloadLength) >>> 0, m.nextSeq as number),
          ),
    );
  }

  /** New owner: drop what the old owner forwarded, release the rest in order, then pass. */
  resolve(
    conditions: readonly string[],
    mode: HandoffMode,
    markers: readonly FlowMarker[],
  ): { released: number; dropped: number } {
    const q = this.queue;
    if (!q) return { released: 0, dropped: 0 };
    // The markers came through the raw socket; every frame that reached this member before
    // them has already been queued by the kernel (one receive path, in order) but may still
    // wait in the netlink socket. Take them in now, or they would meet "pass" after the
    // release and be forwarded although the old owner forwarded them too.
    q.pump();
    const held: PacketInfo[] = [];
    const records = new Map<number, QueuedRecord>();
    for (const c of conditions) {
      for (const r of q.held(c)) {
        records.set(r.arrival, r);
        held.push(toPacketInfo(r));
      }
    }
    held.sort((a, b) => a.id - b.id);
    // Held before the old owner observed (prehold): only its markers may release them.
    const preBoundary = new Set<number>();
    for (const c of conditions) {
      const boundary = this.boundaries.get(c) ?? 0;
      for (const r of q.held(c)) if (r.arrival <= boundary) preBoundary.add(r.arrival);
      this.boundaries.delete(c);
    }
    const decision =
      mode === "sequence-number"
        ? decideSequenceNumber(held, markers, preBoundary)
        : decideExactlyOnce(held, markers, preBoundary);
    const drop = new Set(decision.drop);
    let released = 0;
    let dropped = 0;
    for (const c of conditions) {
      const r = q.release(c, { filter: (rec) => !drop.has(rec.arrival), nextMode: "pass" });
      released += r.released;
      dropped += r.discarded;
    }
    this.counters.released += released;
    this.counters.droppedAtResolve += dropped;
    return { released, dropped };
  }

  releaseAll(conditions: readonly string[]): void {
    for (const c of conditions) this.queue?.passThrough(c);
  }

  /** The owner table's elements with their counters, per kernel class (`show`, `tandem vrls show`). */
  async setCounters(): Promise<SetCounters[]> {
    const elements = parseOwnerMaps(await listMapsJson(this.opts.nft, "ip"), this.table);
    return (["own", "inqueue", "others"] as const).map((set) => ({
      set,
      elements: elements
        .filter((e) => e.kernelClass === set)
        .map((e) => ({ condition: e.element, packets: e.packets, bytes: e.bytes })),
    }));
  }

  /**
   * Packets from sources in no map since the table was made: the master forwards and learns
   * them (passive discovery), a backup drops them. Once every end system is allocated, any
   * count is a packet the table failed to classify (test/vrls-handoff.test.ts asserts none
   * during the hand-offs).
   */
  async unknownCounters(): Promise<{ master: number; backup: number }> {
    const ref = { family: "ip", table: this.table } as const;
    const [master, backup] = await Promise.all([
      readCounter(this.opts.nft, ref, "unknown_master"),
      readCounter(this.opts.nft, ref, "unknown_backup"),
    ]);
    return { master: master.packets, backup: backup.packets };
  }

  queueStats(): unknown {
    return this.queue?.stats();
  }

  async teardown(): Promise<void> {
    try {
      await removeQueueRule(this.opts.host, this.rule);
    } catch (e) {
      this.opts.log(`queue rule removal: ${(e as Error).message}`);
    }
    await deleteTable(this.opts.nft, { family: "ip", table: this.table }).catch(() => undefined);
    await deleteTable(this.opts.nft, { family: "ip", table: this.guardTable }).catch(() => undefined);
    this.queue?.close("accept");
    this.queue = undefined;
    this.link?.close();
    this.link = undefined;
    await this.opts.host.exec(["ip", "link", "del", this.macvlan]);
  }
}

function toPacketInfo(r: QueuedRecord): PacketInfo {
  const s = r.summary;
  const info: PacketInfo = { id: r.arrival, flow: s.flow, identity: r.identity, protocol: s.protocol };
  if (s.tcp) {
    info.tcp = {
      seq: s.tcp.seq,
      ack: s.tcp.ack,
      payloadLength: s.tcp.payloadLength,
      syn: (s.tcp.flags & 0x02) !== 0,
      fin: (s.tcp.flags & 0x01) !== 0,
    };
  }
  return info;
}
