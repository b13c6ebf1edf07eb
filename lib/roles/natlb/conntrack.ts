import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import {
  type ConnEntry,
  entryKey,
  entryToInsertLine,
  flowToEntry,
  type ParsedTable,
  parseConntrackLine,
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
    // Fast path (a move's step 3): one batch. conntrack -R stops at the first line that
    // fails (an entry already there), so on failure the present ones are filtered out and
    // the rest go in a second batch; a repeated transfer is therefore idempotent.
    const first = await this.batch(entries);
    if (first.code === 0) return { imported: entries.length, alreadyPresent: 0 };
    const vips = [...new Set(entries.map((e) => e.vip))];
    const present = new Set<string>();
    for (const vip of vips) for (const e of (await this.list(vip)).entries) present.add(entryKey(e));
    const fresh = entries.filter((e) => !present.has(entryKey(e)));
    if (fresh.length > 0) {
      const r = await this.batch(fresh);
      if (r.code !== 0) throw new Error(`conntrack -R failed: ${r.stderr.trim()}`);
    }
    return { imported: fresh.length, alreadyPresent: entries.length - fresh.length };
  }

  private batch(entries: readonly ConnEntry[]) {
    const input = `${entries.map(entryToInsertLine).join("\n")}\n`;
    // conntrack opens "-" as /dev/stdin, which fails on the socketpair Node gives a
    // child for stdin; a shell pipe is a real FIFO.
    return this.exec(["sh", "-c", "cat | conntrack -R -"], { input, allowFailure: true });
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

/**
 * Follows the conntrack events of one VIP (`conntrack -E -e NEW,UPDATE,DESTROY -d VIP`)
 * and keeps the latest state of every flow that appeared or changed since start(). A
 * move uses it for the delta after the pre-copy: entries born or changed on the old
 * owner after the bulk copy, each with its latest state (a flow copied in SYN_SENT that
 * has since become ESTABLISHED must arrive as ESTABLISHED, or the new owner would find
 * the client's ACK invalid). Flows destroyed meanwhile are listed as removed.
 */
export class CtEventWatcher {
  private child: ChildProcessWithoutNullStreams | undefined;
  private buffer = "";
  private readonly changed = new Map<string, ConnEntry>();
  private readonly removed = new Map<string, ConnEntry>();
  private ready: Promise<void> = Promise.resolve();
  malformed = 0;
  /** Events were lost (netlink overflow): the changes collected are not complete. */
  lost = false;

  private readonly vips: Set<string>;

  /** One VIP (filtered by the kernel tool) or several (filtered here). */
  constructor(
    vip: string | readonly string[],
    private readonly namespace?: string,
  ) {
    this.vips = new Set(typeof vip === "string" ? [vip] : vip);
    this.filter = typeof vip === "string" ? vip : undefined;
  }

  private readonly filter: string | undefined;

  /** Starts listening; resolves once the subscription is in place. */
  start(): Promise<void> {
    const argv = [
      ...(this.namespace ? ["ip", "netns", "exec", this.namespace] : []),
      "conntrack",
      "-E",
      "-e",
      "NEW,UPDATE,DESTROY",
      // A large socket buffer: a burst of new connections must not overflow it (ENOBUFS).
      "-b",
      String(16 << 20),
      ...(this.filter ? ["-d", this.filter] : []),
      "-o",
      "extended",
    ];
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      // The kernel dropped events for us: what we collected is incomplete.
      if (/ENOBUFS|No buffer space/i.test(d)) this.lost = true;
    });
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      this.buffer += d;
      for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
        this.onLine(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
    });
    // The tool prints nothing when the subscription starts; a short settle is enough
    // (netlink group membership is immediate once the socket is bound).
    this.ready = new Promise((resolve) => {
      child.once("spawn", () => setTimeout(resolve, 30));
      child.once("error", () => resolve());
    });
    return this.ready;
  }

  private onLine(line: string): void {
    const m = /^\s*\[(NEW|UPDATE|DESTROY)\]\s+(.*)$/.exec(line);
    if (!m) return;
    const parsed = parseConntrackLine(m[2] as string);
    if (!parsed.ok) {
      this.malformed++;
      return;
    }
    const entry = flowToEntry(parsed.flow, this.vips);
    if (!entry) return;
    const key = entryKey(entry);
    if (m[1] === "DESTROY") {
      this.changed.delete(key);
      this.removed.set(key, entry);
    } else {
      this.removed.delete(key);
      this.changed.set(key, entry);
    }
  }

  /** What changed since start (or the last take), after letting pending events arrive. */
  async take(settleMs = 5): Promise<{ changed: ConnEntry[]; removed: ConnEntry[] }> {
    await this.ready;
    await new Promise((r) => setTimeout(r, settleMs));
    const out = { changed: [...this.changed.values()], removed: [...this.removed.values()] };
    this.changed.clear();
    this.removed.clear();
    return out;
  }

  /** Listening, and nothing lost so far. */
  get running(): boolean {
    return !!this.child && this.child.exitCode === null && !this.lost;
  }

  stop(): void {
    this.child?.kill();
    this.child = undefined;
  }
}
