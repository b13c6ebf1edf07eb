import { Link } from "tandem-netlink";
import {
  deleteTable,
  InProcessNft,
  inProcessNft,
  listCounters,
  type NftTarget,
  nftApply,
} from "../../dataplane/nft.ts";
import type { CommandHost } from "../../remote/command.ts";
import { type NatlbConfig, type VipConfig, vipByAddress } from "./config.ts";
import { type ConnEntry, entryKey } from "./conn-table.ts";
import { ConntrackTable, CtEventHub, type CtWatcher } from "./conntrack.ts";
import { sendGratuitousArp } from "./garp.ts";
import { emptyReport, type HoldReport, noHold, type TransitionHold } from "./hold.ts";
import { type ModeRow, ModeTable } from "./mode-table.ts";
import { BALANCER_SYSCTLS, buildRuleset, TABLE, transitionElements, vipCounterName } from "./ruleset.ts";

export interface VipCounter {
  vip: string;
  packets: number;
  bytes: number;
}

export interface BalancerCounters {
  at: number;
  vips: VipCounter[];
  invalidRejected: number;
  invalidDropped: number;
  /** Packets for a VIP in neither mode, refused with an error. */
  unknownVip: number;
}

export interface BalancerState {
  name: string;
  owned: string[];
  modes: ModeRow[];
  entries: ConnEntry[];
}

/**
 * A NAT load balancer (seed 002, load balancers 3a/3b): the kernel translates (nftables
 * NAT + conntrack, see ruleset.ts), this class owns the control side: the mode table,
 * the VIP addresses, the access correspondence table (conntrack) and transition holding.
 * It runs inside the balancer's network namespace (as the balancer agent) or drives
 * one from outside (tests: `namespace`).
 *
 * Nothing on a move's path starts a process: nftables through a persistent libnftables
 * context, conntrack (table and events), addresses and gratuitous ARP through persistent
 * netlink and packet sockets (tandem-netlink), all opened once, in the balancer's
 * namespace. `exec` runs only the one-off set-up commands (sysctl; the iptables rule of
 * the hold queue).
 */
export class Balancer {
  readonly modes = new ModeTable();
  readonly table: ConntrackTable;
  /** Conntrack events of every VIP, for the agent's life (move deltas, copy pushes). */
  readonly events: CtEventHub;
  private readonly link: Link;
  private readonly vipSet: Set<string>;
  private macs: { external: string; internal: string } | undefined;
  private readonly transfers = new Map<string, { vip: string; watcher: CtWatcher; sent: Set<string> }>();
  /** Flows that ended on this balancer during a move's delta (for the record). */
  readonly deltaRemoved = new Map<string, ConnEntry[]>();
  private readonly nft: NftTarget;
  /** Per VIP given up: the deletion of its entries, due after the grace period. */
  private readonly pendingDeletes = new Map<string, NodeJS.Timeout>();
  /** Per VIP claimed: the repeat of its gratuitous ARP. */
  private readonly garpRepeats = new Map<string, NodeJS.Timeout>();
  /** Entries deleted after their VIP left (grace period over). */
  deletedAfterGrace = 0;
  /** Entries of the VIPs an earlier balancer on this host left in conntrack, removed at setup. */
  staleEntriesRemoved = 0;
  /** Addresses of VIPs not its own that the balancer found on its interface at setup and removed. */
  staleAddressesRemoved = 0;
  private readonly entryGraceMs: number;
  private readonly garpRepeatMs: number;
  private readonly faults: ReadonlySet<string>;

  constructor(
    readonly name: string,
    readonly config: NatlbConfig,
    private readonly host: CommandHost,
    private readonly hold: TransitionHold = noHold,
    options: {
      namespace?: string;
      nft?: NftTarget;
      /**
       * How long the old owner keeps a VIP's entries after the end of switch (default 500
       * ms), so that packets already on their way to it (sent before the upstream router
       * or a server took in the gratuitous ARP) are still translated, not refused with a RST.
       */
      entryGraceMs?: number;
      /** The gratuitous ARP of a claim is sent again after this long (default 50 ms; 0: never). */
      garpRepeatMs?: number;
      /** Seeded faults switched on (lib/roles/seeded-faults.ts); default none. */
      faults?: ReadonlySet<string>;
    } = {},
  ) {
    this.faults = options.faults ?? new Set();
    if (!config.balancers[name]) throw new Error(`no balancer named "${name}" in the natlb section`);
    this.entryGraceMs = options.entryGraceMs ?? 500;
    this.garpRepeatMs = options.garpRepeatMs ?? 50;
    const ns = options.namespace ? { netns: options.namespace } : {};
    // A persistent libnftables context (no process per transaction; the owner table dies
    // with it): the agent's own, or one opened in the namespace a test drives.
    this.nft = options.nft ?? inProcessNft(ns);
    this.vipSet = new Set(config.vips.map((v) => v.address));
    this.table = new ConntrackTable(() => this.vipSet, ns);
    this.events = new CtEventHub([...this.vipSet], this.table, ns);
    this.link = new Link(ns);
  }

  private get ifaces() {
    const b = this.config.balancers[this.name];
    if (!b) throw new Error(`no balancer named "${this.name}"`);
    return b;
  }

  /** Kernel settings, the nftables table (atomically replaced), the hold queue, initial VIPs. */
  async setup(options: { claimInitial?: boolean } = {}): Promise<void> {
    const { external, internal } = this.ifaces;
    const sysctls = { ...BALANCER_SYSCTLS };
    for (const ifname of [external, internal]) sysctls[`net.ipv4.conf.${ifname}.rp_filter`] = "0";
    await this.host.execOrThrow([
      "sysctl",
      "-q",
      "-w",
      ...Object.entries(sysctls).map(([k, v]) => `${k}=${v}`),
    ]);
    // One transaction: create-if-missing, delete, define. No window without rules.
    // Seeded faults: full NAT without its source rewrite, destination NAT with one.
    const embodiment = this.faults.has("natlb-fullnat-no-snat")
      ? "dnat"
      : this.faults.has("natlb-dnat-snat")
        ? "fullnat"
        : this.config.embodiment;
    const ruleset = buildRuleset({ ...this.config, embodiment }, this.name, {
      owner: this.nft instanceof InProcessNft,
      unknownVip: this.faults.has("natlb-unknown-vip-silent") ? "drop" : "reject",
    });
    const script = `table ip ${TABLE} {\n}\ndelete table ip ${TABLE}\n${ruleset}`;
    await nftApply(this.nft, script);
    // A starting balancer has no accesses: conntrack entries of its VIPs still in the
    // kernel are from an earlier life on this host (an agent stopped, or killed, before
    // this one). Their NAT bindings belong to that run (another embodiment, other client
    // ports), they would go on translating, and exported on a move one whose reply tuple
    // clashes with an entry the new owner holds fails the whole import. Physical labs
    // reuse the same hosts run after run, so this is where it shows.
    this.staleEntriesRemoved = this.removeEntriesOfVips();
    await this.hold.open();
    if (options.claimInitial ?? true) {
      // Likewise the addresses of VIPs an earlier balancer on this host held (a namespace
      // keeps them after its agent is stopped or killed): left on the interface, this one
      // would report them owned beside their initial owner, and a failover of that owner
      // would not move them.
      for (const v of this.config.vips)
        if (v.owner !== this.name && (await this.ownedVips()).includes(v.address)) {
          this.staleAddressesRemoved++;
          await this.release(v.address);
        }
      for (const v of this.config.vips) if (v.owner === this.name) await this.claim(v.address);
    }
  }

  /** Removes this balancer's table, queue and VIP addresses (lab teardown does the rest) and closes its sockets. */
  async teardown(): Promise<void> {
    for (const t of [...this.pendingDeletes.values(), ...this.garpRepeats.values()]) clearTimeout(t);
    this.pendingDeletes.clear();
    this.garpRepeats.clear();
    for (const t of this.transfers.values()) t.watcher.stop();
    this.transfers.clear();
    await this.hold.close();
    // An owner table (in-process context) cannot be redeclared without its flag, which is
    // what deleteTable's create-then-delete does (EOPNOTSUPP): delete it directly. Closing
    // the context would remove it too, but not while a child process still holds the socket.
    await (this.nft instanceof InProcessNft
      ? nftApply(this.nft, `delete table ip ${TABLE}\n`)
      : deleteTable(this.nft, { family: "ip", table: TABLE })
    ).catch(() => undefined);
    // Without the table, entries would still translate (the NAT binding lives in the
    // entry) and the next balancer on this host would inherit them: leave none behind.
    try {
      this.removeEntriesOfVips();
    } catch {
      // the socket is gone; the next setup removes them
    }
    this.events.close();
    this.table.close();
    this.link.close();
    if (this.nft instanceof InProcessNft) this.nft.close();
  }

  /** Deletes every conntrack entry whose original destination is one of the VIPs. */
  private removeEntriesOfVips(): number {
    return this.table.deleteEntries(this.table.list().entries);
  }

  /** The VIPs whose address is on the external interface. */
  async ownedVips(): Promise<string[]> {
    const local = this.link.addresses(this.ifaces.external).map((a) => a.slice(0, a.indexOf("/")));
    return local.filter((a) => this.vipSet.has(a));
  }

  /**
   * Step 2 on the new owner: the VIP's external address and its internal address go on
   * the interfaces (idempotent), then gratuitous ARP for both, so the upstream router and
   * the servers switch at once. The mode table gets the VIP as normal unless a move put
   * it in transition first.
   */
  async claim(vipAddress: string): Promise<void> {
    const v = vipByAddress(this.config, vipAddress);
    this.keepEntries(v.address);
    const { external, internal } = this.ifaces;
    this.link.addAddress(external, v.address, 32, { replace: true });
    this.link.addAddress(internal, v.internal, 32, { replace: true });
    if (!this.modes.get(v.address)) {
      this.modes.setNormal(v.address);
      await this.setModeElement(v.address, "add");
    }
    this.macs ??= { external: this.link.info(external).mac, internal: this.link.info(internal).mac };
    const announcements = [
      { ifname: external, mac: this.macs.external, address: v.address },
      { ifname: internal, mac: this.macs.internal, address: v.internal },
    ];
    if (this.faults.has("natlb-no-garp")) return;
    sendGratuitousArp(this.link, announcements);
    // Once more a little later: one frame may be lost, or overtaken by the previous owner's
    // announcement (a rolled-back move announces twice within a millisecond; two senders'
    // frames can cross on a busy host). A release cancels the repeat.
    clearTimeout(this.garpRepeats.get(v.address));
    if (this.garpRepeatMs > 0) {
      const t = setTimeout(() => {
        this.garpRepeats.delete(v.address);
        if (this.link.open) sendGratuitousArp(this.link, announcements);
      }, this.garpRepeatMs);
      t.unref();
      this.garpRepeats.set(v.address, t);
    }
  }

  /**
   * Step 2 on the old owner: the addresses leave the interfaces (idempotent). The entries
   * and the mode stay until step 4 (the entries a grace period longer): whatever still
   * reaches this balancer meanwhile is translated.
   */
  async release(vipAddress: string): Promise<void> {
    const v = vipByAddress(this.config, vipAddress);
    clearTimeout(this.garpRepeats.get(v.address));
    this.garpRepeats.delete(v.address);
    const { external, internal } = this.ifaces;
    this.link.deleteAddress(external, v.address, 32);
    this.link.deleteAddress(internal, v.internal, 32);
  }

  /** Step 1 on the new owner (Fig. 8A): transition mode; the VIP's packets are held from now on. */
  async beginTransition(vipAddress: string): Promise<void> {
    if (this.faults.has("natlb-no-transition")) return;
    const v = vipByAddress(this.config, vipAddress);
    this.keepEntries(v.address);
    this.modes.setTransition(v.address);
    await this.hold.hold(v.address);
    await this.setTransitionElements(v, "add");
    await this.setModeElement(v.address, "add");
  }

  /**
   * Step 4 (Figs. 8B/8C). Old owner: the VIP leaves the mode table. New owner: normal mode,
   * held packets go through the moved entries in arrival order, then the classification
   * is removed so new packets skip the queue.
   */
  async endSwitch(vipAddress: string, side: "old" | "new"): Promise<HoldReport> {
    const v = vipByAddress(this.config, vipAddress);
    // A pre-copy whose move ended (completed or rolled back) needs its watcher no more.
    for (const [id, t] of this.transfers) {
      if (t.vip !== v.address) continue;
      t.watcher.stop();
      this.transfers.delete(id);
    }
    if (side === "old") {
      this.modes.remove(v.address);
      // Whatever entry is left of the VIP (all of them after a rolled-back move) goes too,
      // after a grace period, unless the VIP came back to this balancer meanwhile.
      if (!(await this.ownedVips()).includes(v.address)) {
        await this.setModeElement(v.address, "delete");
        if (!this.faults.has("natlb-old-keeps-entries")) this.deleteEntriesLater(v.address);
      }
      return emptyReport(v.address);
    }
    const report =
      this.modes.get(v.address) !== "transition"
        ? emptyReport(v.address)
        : this.faults.has("natlb-held-dropped")
          ? await this.hold.discard(v.address)
          : await this.hold.release(v.address);
    await this.setTransitionElements(v, "delete");
    this.modes.setNormal(v.address);
    await this.setModeElement(v.address, "add");
    return report;
  }

  /** Undoes step 1 (a move rolled back before the route switched): held packets are dropped and counted. */
  async abortTransition(vipAddress: string): Promise<HoldReport> {
    const v = vipByAddress(this.config, vipAddress);
    await this.setTransitionElements(v, "delete");
    const report = await this.hold.discard(v.address);
    if (this.modes.get(v.address) === "transition") {
      this.modes.remove(v.address);
      await this.setModeElement(v.address, "delete");
    }
    return report;
  }

  /** Step 3 (source side): the VIP's access control information entries. */
  async exportEntries(vipAddress: string): Promise<ConnEntry[]> {
    return this.table.list(vipAddress).entries;
  }

  /**
   * Step 3 (destination side). An entry already here is replaced: the copies of a VIP in
   * transition (or not yet routed here) carry no traffic, and a later part of a transfer
   * (the delta after the pre-copy, a repeated transfer) brings a newer state.
   */
  async importEntries(entries: readonly ConnEntry[]): Promise<{ imported: number; alreadyPresent: number }> {
    for (const vip of new Set(entries.map((e) => e.vip))) this.keepEntries(vip);
    return this.table.import(entries, { replace: true });
  }

  /**
   * "An entry which becomes unnecessary is deleted" (step 3 of the seed; here at the end of
   * switch): after entryGraceMs, so that packets already on their way here when the route
   * moved (sent before their sender took in the gratuitous ARP) are still translated
   * rather than found invalid and answered with a RST. Cancelled if the VIP comes back
   * (keepEntries).
   */
  private deleteEntriesLater(vip: string): void {
    clearTimeout(this.pendingDeletes.get(vip));
    const t = setTimeout(() => {
      this.pendingDeletes.delete(vip);
      if (this.modes.get(vip) || !this.table.open) return;
      try {
        this.deletedAfterGrace += this.table.deleteVip(vip);
      } catch {
        // The socket failed (agent shutting down): the entries time out in the kernel.
      }
    }, this.entryGraceMs);
    t.unref();
    this.pendingDeletes.set(vip, t);
  }

  /** The VIP is this balancer's again (or about to be): its entries stay. */
  private keepEntries(vip: string): void {
    clearTimeout(this.pendingDeletes.get(vip));
    this.pendingDeletes.delete(vip);
  }

  /**
   * Taking part in a move: a VIP in transition here (new owner, steps 1-4) or a pre-copy
   * whose delta is still to send (old owner, until step 3). Periodic work that would
   * block the agent's loop for milliseconds (a full copy push) waits meanwhile, so that
   * the move's messages, and the held packets, are not kept waiting behind it.
   */
  get moving(): boolean {
    return this.transfers.size > 0 || this.modes.inMode("transition").length > 0;
  }

  /**
   * Step 3 on the old owner: the VIP's entries go to the new owner (`deliver` resolves
   * when it confirmed them). Called twice with the same `transferId` (a pre-copy before
   * the route switch, then the transfer proper), the second call sends only the entries
   * the first did not: the new owner holds packets only for the time of that small delta.
   * The old entries are deleted at the end of switch (endSwitch "old"), once the new owner
   * has drained: "an entry which becomes unnecessary is deleted".
   */
  async sendEntries(
    vipAddress: string,
    deliver: (entries: ConnEntry[]) => Promise<unknown>,
    transferId?: string,
    phase: "precopy" | "final" = "final",
  ): Promise<number> {
    if (this.faults.has("natlb-entries-not-moved")) {
      await deliver([]);
      return 0;
    }
    const previous = transferId ? this.transfers.get(transferId) : undefined;
    if (phase === "final" && previous) {
      this.transfers.delete(transferId as string);
      if (previous.watcher.running) {
        // The delta: what the events showed appearing or changing since the pre-copy,
        // each flow in its state now.
        const { changed, removed } = previous.watcher.take();
        previous.watcher.stop();
        await deliver(changed);
        this.deltaRemoved.set(vipAddress, removed);
        return changed.length;
      }
      // The watcher died: a full listing minus what the pre-copy sent.
      const rest = (await this.exportEntries(vipAddress)).filter((e) => !previous.sent.has(entryKey(e)));
      await deliver(rest);
      return rest.length;
    }
    let watcher: CtWatcher | undefined;
    if (phase === "precopy" && transferId) {
      // Watch before the dump, so nothing born in between is missed.
      previous?.watcher.stop();
      watcher = this.events.watch([vipAddress]);
    }
    const entries = await this.exportEntries(vipAddress);
    try {
      await deliver(entries);
    } catch (e) {
      watcher?.stop();
      throw e;
    }
    if (watcher && transferId) {
      this.transfers.set(transferId, { vip: vipAddress, watcher, sent: new Set(entries.map(entryKey)) });
      for (const [id, t] of this.transfers) {
        if (this.transfers.size <= 8) break;
        t.watcher.stop();
        this.transfers.delete(id);
      }
    }
    return entries.length;
  }

  /** Deletes every entry of the VIP. */
  async deleteEntries(vipAddress: string): Promise<number> {
    return this.table.deleteVip(vipAddress);
  }

  /** Per-VIP traffic counters (both directions) and the strict-conntrack counters. */
  async counters(): Promise<BalancerCounters> {
    const byName = await listCounters(this.nft, { family: "ip", table: TABLE });
    return {
      at: Date.now(),
      vips: this.config.vips.map((v, i) => ({
        vip: v.address,
        packets: byName.get(vipCounterName(i))?.packets ?? 0,
        bytes: byName.get(vipCounterName(i))?.bytes ?? 0,
      })),
      invalidRejected: byName.get("invalid_rejected")?.packets ?? 0,
      invalidDropped: byName.get("invalid_dropped")?.packets ?? 0,
      unknownVip: byName.get("unknown_vip")?.packets ?? 0,
    };
  }

  /** Everything `tandem natlb show` prints for this balancer. */
  async state(): Promise<BalancerState> {
    const owned = await this.ownedVips();
    return { name: this.name, owned, modes: this.modes.list(), entries: this.table.list().entries };
  }

  /** Keeps the nftables set mode_vips equal to the mode table's addresses (idempotent). */
  private async setModeElement(address: string, op: "add" | "delete"): Promise<void> {
    const cmds = [`add element ip ${TABLE} mode_vips { ${address} }`];
    if (op === "delete") cmds.push(`delete element ip ${TABLE} mode_vips { ${address} }`);
    await nftApply(this.nft, `${cmds.join("\n")}\n`);
  }

  private async setTransitionElements(v: VipConfig, op: "add" | "delete"): Promise<void> {
    const { dst, src } = transitionElements(this.config, v);
    const cmds: string[] = [];
    // "add" of an existing element and "delete" of a missing one both fail in nft; make
    // the pair idempotent by adding before deleting inside one transaction.
    if (dst.length > 0) {
      cmds.push(`add element ip ${TABLE} transition_dst { ${dst.join(", ")} }`);
      if (op === "delete") cmds.push(`delete element ip ${TABLE} transition_dst { ${dst.join(", ")} }`);
    }
    if (src.length > 0) {
      cmds.push(`add element ip ${TABLE} transition_src { ${src.join(", ")} }`);
      if (op === "delete") cmds.push(`delete element ip ${TABLE} transition_src { ${src.join(", ")} }`);
    }
    if (cmds.length > 0) await nftApply(this.nft, `${cmds.join("\n")}\n`);
  }
}
