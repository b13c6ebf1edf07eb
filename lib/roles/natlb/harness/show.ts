import { attachLab, type Lab } from "../../../lab/lab.ts";
import { loadTopology } from "../../../topology/load.ts";
import type { NatlbConfig } from "../config.ts";
import { entryRow, parseConntrackListing } from "../conn-table.ts";
import { TABLE } from "../ruleset.ts";
import { loadNatlbSection } from "../section.ts";

/**
 * `tandem natlb show LAB`: each balancer's transfer processing mode table (Figs. 7/8) and
 * access correspondence table (Figs. 5/6/9/10/12), read from the kernel over SSH: a VIP
 * is in the mode table when its address is on the external interface (normal) or in the
 * transition set (transition); the table is conntrack, shown in the seed's columns.
 */
export interface BalancerTables {
  balancer: string;
  modes: { address: string; mode: "normal" | "transition" }[];
  entries: Record<string, string>[];
  total: number;
}

export async function readBalancerTables(lab: Lab, config: NatlbConfig): Promise<BalancerTables[]> {
  const vips = new Set(config.vips.map((v) => v.address));
  return Promise.all(
    Object.keys(config.balancers).map(async (name) => {
      const host = lab.host(name);
      const [modeSet, set, ct] = await Promise.all([
        host.exec(["nft", "-j", "list", "set", "ip", TABLE, "mode_vips"]),
        host.exec(["nft", "-j", "list", "set", "ip", TABLE, "transition_dst"]),
        host.exec(["conntrack", "-L", "-o", "extended"]),
      ]);
      const elements = (json: string): string[] => {
        try {
          const parsed = JSON.parse(json) as { nftables: { set?: { elem?: unknown[] } }[] };
          const elems = parsed.nftables.find((x) => x.set)?.set?.elem ?? [];
          return elems.filter((e): e is string => typeof e === "string").filter((e) => vips.has(e));
        } catch {
          return [];
        }
      };
      const owned = elements(modeSet.stdout);
      const transition = elements(set.stdout);
      const modes = [
        ...transition.map((address) => ({ address, mode: "transition" as const })),
        ...owned
          .filter((a) => !transition.includes(a))
          .map((address) => ({ address, mode: "normal" as const })),
      ].sort((x, y) => x.address.localeCompare(y.address));
      const table = parseConntrackListing(ct.stdout, vips);
      return { balancer: name, modes, entries: table.entries.map(entryRow), total: table.entries.length };
    }),
  );
}

export function formatBalancerTables(tables: readonly BalancerTables[], maxRows = 20): string {
  const out: string[] = [];
  for (const t of tables) {
    out.push(`balancer ${t.balancer}`);
    out.push("  transfer processing mode table (Figs. 7, 8)");
    out.push(`    ${"address 70".padEnd(18)}mode 71`);
    if (t.modes.length === 0) out.push("    (empty: this balancer owns no VIP)");
    for (const m of t.modes) out.push(`    ${m.address.padEnd(18)}${m.mode}`);
    out.push(`  access correspondence table (Figs. 5, 12): ${t.total} entries`);
    const rows = t.entries.slice(0, maxRows);
    const first = rows[0];
    if (first) {
      const cols = Object.keys(first);
      const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? "").length)));
      out.push(`    ${cols.map((c, i) => c.padEnd(width[i] ?? 0)).join("  ")}`);
      for (const r of rows)
        out.push(`    ${cols.map((c, i) => (r[c] ?? "").padEnd(width[i] ?? 0)).join("  ")}`);
      if (t.total > rows.length) out.push(`    ... ${t.total - rows.length} more`);
    }
  }
  return out.join("\n");
}

/** For the CLI: attach to a running lab by name or prefix and print its NAT-LB tables. */
export async function showNatlbLab(
  nameOrPrefix: string,
  options: { maxRows?: number } = {},
): Promise<string> {
  const lab = await attachLab(nameOrPrefix);
  try {
    const config = loadNatlbSection(loadTopology(lab.record.topologyFile));
    return formatBalancerTables(await readBalancerTables(lab, config), options.maxRows);
  } finally {
    for (const h of lab.hostNames) lab.host(h).close();
  }
}
