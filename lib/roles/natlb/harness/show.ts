import { attachLab, type Lab } from "../../../lab/lab.ts";
import { loadTopology } from "../../../topology/load.ts";
import type { NatlbConfig } from "../config.ts";
import { entryRow, parseConntrackListing } from "../conn-table.ts";
import type { ChannelStatus } from "../control-channel.ts";
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

/**
 * Issue 15: every NAT-LB agent's control channel counters (received, accepted, refused per
 * reason, limits hit, RSS), from the status file each agent writes every 500 ms
 * (harness natlbChannelFile), read over SSH.
 */
export async function readChannelStatus(lab: Lab, config: NatlbConfig): Promise<ChannelStatus[]> {
  const hosts = [
    ...new Set([
      ...Object.keys(config.balancers),
      ...config.vips.flatMap((v) => v.servers.map((x) => x.host)),
      config.controller.host,
    ]),
  ];
  const out: ChannelStatus[] = [];
  for (const h of hosts) {
    const dir = await lab.host(h).runDir();
    const r = await lab
      .host(h)
      .exec([
        "sh",
        "-c",
        `for f in ${dir}/natlb-channel-*-${h}.json; do [ -f "$f" ] && cat "$f"; echo; done`,
      ]);
    for (const line of r.stdout.split("\n")) {
      const t = line.trim();
      if (!t) continue;
      try {
        out.push(JSON.parse(t) as ChannelStatus);
      } catch {
        // a file being replaced: skipped
      }
    }
  }
  return out;
}

export function formatChannelStatus(list: readonly ChannelStatus[]): string {
  const out = ["control channels (refused per reason):"];
  for (const c of list) {
    const refused = Object.entries(c.rejects)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`);
    out.push(
      `  ${c.host} ${c.role}: received ${c.counters.received}, accepted ${c.counters.accepted}, refused ${refused.length ? refused.join(", ") : "none"}; rss ${(c.rssBytes / 2 ** 20).toFixed(1)} MiB`,
    );
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
    const tables = formatBalancerTables(await readBalancerTables(lab, config), options.maxRows);
    return `${tables}\n${formatChannelStatus(await readChannelStatus(lab, config))}`;
  } finally {
    for (const h of lab.hostNames) lab.host(h).close();
  }
}
