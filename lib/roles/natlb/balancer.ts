import { deleteTable, InProcessNft, listCounters, type NftTarget, nftApply } from "../../dataplane/nft.ts";
import { type NatlbConfig, type VipConfig, vipByAddress } from "./config.ts";
import { type ConnEntry, entryKey } from "./conn-table.ts";
import { ConntrackTable, CtEventWatcher } from "./conntrack.ts";
import type { Exec } from "./exec.ts";
import { GarpSender, interfaceMac } from "./garp.ts";
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
 * one from outside (tests), depending on the `exec` it is given.
 */
export class Balancer {
  readonly modes = new ModeTable();
  readonly table: ConntrackTable;
  private readonly vipSet: Set<string>;
  private readonly garp: GarpSender;
  private macs: { external: string; internal: string } | undefined;
  private readonly transfers = new Map<string, { vip: string; watcher: CtEventWatcher; sent: Set<string> }>();
  /** Flows that ended on this balancer during a move's delta (for the record). */
  readonly deltaRemoved = new Map<string, ConnEntry[]>();
  private readonly namespace: string | undefined;
  private readonly nft: NftTarget;

  constructor(
    readonly name: string,
    readonly config: NatlbConfig,
    private readonly exec: Exec,
    private readonly hold: TransitionHold = noHold,
    options: { namespace?: string; nft?: NftTarget } = {},
  ) {
    // In the agent: its persistent libnftables context (no process per transaction, and the
    // owner table dies with the agent). Elsewhere (a test driving a namespace): spawned nft.
    this.nft = options.nft ?? ((argv, o) => exec(argv, { ...o, allowFailure: true }));
    this.garp = new GarpSender(options.namespace);
    this.namespace = options.namespace;
    if (!config.balancers[name]) throw new Error(`no balancer named "${name}" in the natlb section`);
    this.vipSet = new Set(config.vips.map((v) => v.address));
    this.table = new ConntrackTable(exec, () => this.vipSet);
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
    await this.exec(["sysctl", "-q", "-w", ...Object.entries(sysctls).map(([k, v]) => `${k}=${v}`)]);
    // One transaction: create-if-missing, delete, define. No window without rules.
    const script = `table ip ${TABLE} {\n}\ndelete table ip ${TABLE}\n${buildRuleset(this.config, this.name, { owner: this.nft instanceof InProcessNft })}`;
    await nftApply(this.nft, script);
    await this.hold.open();
    if (options.claimInitial ?? true) {
      for (const v of this.config.vips) if (v.owner === this.name) await this.claim(v.address);
    }
  }

  /** Removes this balancer's table, queue and VIP addresses (lab teardown does the rest). */
  async teardown(): Promise<void> {
    this.garp.close();
    for (const t of this.transfers.values()) t.watcher.stop();
    await this.hold.close();
    await deleteTable(this.nft, { family: "ip", table: TABLE }).catch(() => undefined);
  }

  /** The VIPs whose address is on the external interface. */
  async ownedVips(): Promise<string[]> {
    const r = await this.exec(["ip", "-j", "-4", "addr", "show", "dev", this.ifaces.external]);
    const parsed = JSON.parse(r.stdout) as { addr_info?: { local: string }[] }[];
    const local = (parsed[0]?.addr_info ?? []).map((a) => a.local);
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
    const { external, internal } = this.ifaces;
    await this.ipBatch([
      `addr replace ${v.address}/32 dev ${external}`,
      `addr replace ${v.internal}/32 dev ${internal}`,
    ]);
    if (!this.modes.get(v.address)) {
      this.modes.setNormal(v.address);
      await this.setModeElement(v.address, "add");
    }
    if (!this.macs) {
      const [e, i] = await Promise.all([
        interfaceMac(this.exec, external),
        interfaceMac(this.exec, internal),
      ]);
      this.macs = { external: e, internal: i };
    }
    await this.garp.send([
      { ifname: external, mac: this.macs.external, address: v.address },
      { ifname: internal, mac: this.macs.internal, address: v.internal },
    ]);
  }

  /** Step 2 on the old owner: the addresses leave the interfaces (idempotent). Entries stay until step 3. */
  async release(vipAddress: string): Promise<void> {
    const v = vipByAddress(this.config, vipAddress);
    const { external, internal } = this.ifaces;
    await this.ipBatch(
      [`addr del ${v.address}/32 dev ${external}`, `addr del ${v.internal}/32 dev ${internal}`],
      true,
    );
  }

  /** Step 1 on the new owner (Fig. 8A): transition mode; the VIP's packets are held from now on. */
  async beginTransition(vipAddress: string): Promise<void> {
    const v = vipByAddress(this.config, vipAddress);
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
      if (!(await this.ownedVips()).includes(v.address)) await this.setModeElement(v.address, "delete");
      // Whatever entry is left of the VIP (all of them after a rolled-back move) goes too,
      // unless the VIP came back to this balancer.
      if (!(await this.ownedVips()).includes(v.address)) await this.table.deleteVip(v.address);
      return emptyReport(v.address);
    }
    const report =
      this.modes.get(v.address) === "transition"
        ? await this.hold.release(v.address)
        : emptyReport(v.address);
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
    const parsed = await this.table.list(vipAddress);
    return parsed.entries;
  }

  /** Step 3 (destination side). */
  importEntries(entries: readonly ConnEntry[]): Promise<{ imported: number; alreadyPresent: number }> {
    return this.table.import(entries);
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
    const previous = transferId ? this.transfers.get(transferId) : undefined;
    if (phase === "final" && previous) {
      this.transfers.delete(transferId as string);
      if (previous.watcher.running) {
        // The delta: what the event watcher saw appear or change since the pre-copy.
        const { changed, removed } = await previous.watcher.take();
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
    let watcher: CtEventWatcher | undefined;
    if (phase === "precopy" && transferId) {
      // Subscribe before the dump, so nothing born in between is missed.
      previous?.watcher.stop();
      watcher = new CtEventWatcher(vipAddress, this.namespace);
      await watcher.start();
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
  deleteEntries(vipAddress: string): Promise<number> {
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
    const [owned, parsed] = await Promise.all([this.ownedVips(), this.table.list()]);
    return { name: this.name, owned, modes: this.modes.list(), entries: parsed.entries };
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

  private async ipBatch(commands: string[], allowFailure = false): Promise<void> {
    const r = await this.exec(["ip", "-force", "-batch", "-"], {
      input: `${commands.join("\n")}\n`,
      allowFailure: true,
    });
    if (r.code !== 0 && !allowFailure) throw new Error(`ip failed on ${this.name}: ${r.stderr.trim()}`);
  }
}
