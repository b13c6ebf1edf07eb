/**
 * `tandem vrls show LAB`: every member's live sharing table (seed Figs. 9A-9C: virtual
 * router information, subnet configuration, packet information) and its data plane
 * counters, read over SSH from the status file each router agent keeps and from nftables.
 * The CLI (lib/cli) calls printVrlsShow(labNameOrPrefix).
 */
import { attachLab } from "../../../lab/index.ts";
import { readLabRecords } from "../../../lab/state.ts";
import { loadTopology } from "../../../topology/load.ts";
import { loadVrlsConfig } from "../config.ts";
import { parseOwnerMaps } from "../owner-table.ts";
import { vrlsStatusFile } from "./lab-harness.ts";

export interface MemberView {
  virtualRouter: string;
  host: string;
  status: Record<string, unknown> | null;
  /** Why the status could not be read (no agent running, ...). */
  statusError?: string;
  /** nft set -> condition -> packets forwarded/held/dropped by this member. */
  counters: Record<string, Record<string, number>>;
}

export async function readVrls(labNameOrPrefix: string): Promise<MemberView[]> {
  const lab = await attachLab(labNameOrPrefix);
  const record = (await readLabRecords()).find((r) => r.prefix === lab.prefix);
  if (!record) throw new Error(`no lab ${labNameOrPrefix}`);
  const configs = loadVrlsConfig(loadTopology(record.topologyFile));
  const out: MemberView[] = [];
  try {
    for (const vr of configs) {
      for (const m of vr.members.filter((x) => x.implementation === "reference")) {
        const host = lab.host(m.host);
        const file = await host.exec(["cat", vrlsStatusFile(lab.prefix, vr.name, m.host)]);
        const nft = await host.exec(["nft", "-j", "list", "maps", "ip"]);
        const counters: Record<string, Record<string, number>> = {};
        if (nft.code === 0)
          for (const e of parseOwnerMaps(nft.stdout, `vrls${vr.spec.vrid}`)) {
            counters[e.kernelClass] ??= {};
            (counters[e.kernelClass] as Record<string, number>)[e.element] = e.packets;
          }
        out.push({
          virtualRouter: vr.name,
          host: m.host,
          status: file.code === 0 ? (JSON.parse(file.stdout) as Record<string, unknown>) : null,
          ...(file.code === 0 ? {} : { statusError: file.stderr.trim() }),
          counters,
        });
      }
    }
  } finally {
    for (const h of lab.hostNames) lab.host(h).close();
  }
  return out;
}

export async function printVrlsShow(labNameOrPrefix: string, json = false): Promise<void> {
  const views = await readVrls(labNameOrPrefix);
  if (json) {
    console.log(JSON.stringify(views, null, 2));
    return;
  }
  for (const v of views) {
    const s = v.status as {
      role?: string;
      masterAddress?: string;
      mode?: string;
      member?: {
        epoch: number;
        version: number;
        owners: Record<string, string>;
        dispositions: Record<string, string>;
      };
      endSystems?: { address: string; learnedBy: string; node: string | null }[];
    } | null;
    console.log(
      `== ${v.virtualRouter} on ${v.host}: ${s ? `${s.role}, master ${s.masterAddress ?? "?"}, mode ${s.mode}` : "no running agent"}`,
    );
    if (!s) continue;
    console.log(`   allocation ${s.member?.epoch}.${s.member?.version}`);
    // Issue 15: every rejected control message, per reason (agent), and what the kernel
    // guard shed before the agent saw it (nft counters of table vrls<VRID>_rx).
    const status = v.status as { rx?: Record<string, number>; rxGuard?: Record<string, number> | null };
    const refused = Object.entries(status.rx ?? {}).filter(
      ([k]) => k.startsWith("rx.rejected.") || k.startsWith("rx.limited."),
    );
    console.log(
      `   rejected by the agent: ${refused.length ? refused.map(([k, n]) => `${k.replace(/^rx\./, "")} ${n}`).join(", ") : "none"}`,
    );
    // Gratuitous ARP for the VIP from another MAC (rx-guard.ts arpConflictTable) and the
    // master's re-assertions.
    console.log(
      `   address conflicts (ARP for the VIP from another MAC): ${status.rx?.["rx.arpConflict"] ?? 0}, VIP re-asserted ${status.rx?.["tx.garpReassert"] ?? 0} time(s)`,
    );
    if (status.rxGuard)
      console.log(
        `   shed in the kernel: ${Object.entries(status.rxGuard)
          .map(([k, n]) => `${k} ${n}`)
          .join(", ")}`,
      );
    console.table(
      Object.entries(s.member?.owners ?? {}).map(([condition, owner]) => ({
        condition,
        "router in charge": owner,
        here: s.member?.dispositions[condition] ?? "-",
        packets:
          v.counters.own?.[condition] ??
          v.counters.inqueue?.[condition] ??
          v.counters.others?.[condition] ??
          0,
      })),
    );
    if (s.endSystems?.length)
      console.table(
        s.endSystems.map((e) => ({ address: e.address, learned: e.learnedBy, via: e.node ?? "-" })),
      );
  }
}
