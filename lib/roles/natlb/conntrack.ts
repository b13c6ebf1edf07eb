import {
  type ConnEntry,
  entryKey,
  entryToInsertLine,
  type ParsedTable,
  parseConntrackListing,
} from "./conn-table.ts";
import type { Exec } from "./exec.ts";

/**
 * The kernel's conntrack table of one balancer, read and written with the conntrack
 * tool (conntrack-tools 1.4.7): `-L -o extended` to read, `-R -` (batch of `-I` lines on
 * stdin, one netlink socket for the whole batch: ~1000 entries in <0.1 s here) to
 * write, `-D` to delete. The tool rather than hand-written ctnetlink: it is the kernel
 * project's own, well-kept client and its NAT setup attributes are what the kernel expects.
 */
export class ConntrackTable {
  constructor(
    private readonly exec: Exec,
    private readonly vips: () => ReadonlySet<string>,
  ) {}

  /** Entries whose original destination is a VIP (all VIPs, or just `vip`). */
  async list(vip?: string): Promise<ParsedTable> {
    const argv = ["conntrack", "-L", "-o", "extended"];
    if (vip) argv.push("-d", vip);
    const r = await this.exec(argv, { allowFailure: true });
    if (r.code !== 0 && !/0 flow entries/.test(r.stderr))
      throw new Error(`conntrack -L failed: ${r.stderr.trim()}`);
    return parseConntrackListing(r.stdout, vip ? new Set([vip]) : this.vips());
  }

  /**
   * Creates entries (step 3 on the new owner). Entries already present (same original
   * tuple) are left alone, which makes a repeated transfer idempotent: `conntrack -R`
   * stops at the first line that fails, so the duplicates are filtered out first.
   */
  async import(entries: readonly ConnEntry[]): Promise<{ imported: number; alreadyPresent: number }> {
    if (entries.length === 0) return { imported: 0, alreadyPresent: 0 };
    const vips = [...new Set(entries.map((e) => e.vip))];
    const present = new Set<string>();
    for (const vip of vips) for (const e of (await this.list(vip)).entries) present.add(entryKey(e));
    const fresh = entries.filter((e) => !present.has(entryKey(e)));
    if (fresh.length > 0) {
      const input = `${fresh.map(entryToInsertLine).join("\n")}\n`;
      // conntrack opens "-" as /dev/stdin, which fails on the socketpair Node gives a
      // child for stdin; a shell pipe is a real FIFO.
      const r = await this.exec(["sh", "-c", "cat | conntrack -R -"], { input, allowFailure: true });
      if (r.code !== 0) throw new Error(`conntrack -R failed: ${r.stderr.trim()}`);
    }
    return { imported: fresh.length, alreadyPresent: entries.length - fresh.length };
  }

  /** Deletes every entry of `vip` (step 3 on the old owner). Returns how many went. */
  async deleteVip(vip: string): Promise<number> {
    const r = await this.exec(["conntrack", "-D", "-d", vip], { allowFailure: true });
    const m = /(\d+) flow entries have been deleted/.exec(r.stderr);
    return m ? Number(m[1]) : 0;
  }

  /** Deletes the given entries one by one (used when only some entries of a VIP must go). */
  async deleteEntries(entries: readonly ConnEntry[]): Promise<number> {
    let n = 0;
    for (const e of entries) {
      const r = await this.exec(
        [
          "conntrack",
          "-D",
          "-p",
          e.protocol,
          "-s",
          e.clientAddr,
          "-d",
          e.vip,
          "--sport",
          String(e.clientPort),
          "--dport",
          String(e.vipPort),
        ],
        { allowFailure: true },
      );
      if (r.code === 0) n++;
    }
    return n;
  }
}
