import { endianness } from "node:os";
import type { ConnEntry, Embodiment, L4Protocol, TcpState } from "./conn-table.ts";

/**
 * The copy keeping function 53 and the copy 54 of the access correspondence table
 * (seed 002, third embodiment, Fig. 13). Balancers push their entries to the servers the
 * entries lead to; each server keeps them, per balancer; on a balancer failure the
 * controller has the servers send the failed balancer's entries of a VIP to the survivor.
 *
 * What a copy holds follows the seed:
 * - embodiment 1 (DNAT): "the client address 901 and 902, the server port number 905, and
 *   TCP flow controls 906, 907 and 908"; the VIP 903 and the server address 904 are known
 *   to the control function (the server belongs to one VIP; it is this server);
 * - embodiment 2 (full NAT): "all the items except for the server IP address 904".
 */
export interface CopyRow {
  protocol: L4Protocol;
  clientAddr: string;
  clientPort: number;
  serverPort: number;
  tcpState?: TcpState;
  timeoutS: number;
  seenReply: boolean;
  assured: boolean;
  mark: number;
  /** Full NAT only. */
  vip?: string;
  vipPort?: number;
  internalAddr?: string;
  internalPort?: number;
}

export function toCopyRow(e: ConnEntry, embodiment: Embodiment): CopyRow {
  const row: CopyRow = {
    protocol: e.protocol,
    clientAddr: e.clientAddr,
    clientPort: e.clientPort,
    serverPort: e.serverPort,
    timeoutS: e.timeoutS,
    seenReply: e.seenReply,
    assured: e.assured,
    mark: e.mark,
  };
  if (e.tcpState) row.tcpState = e.tcpState;
  if (embodiment === "fullnat") {
    row.vip = e.vip;
    row.vipPort = e.vipPort;
    if (e.internalAddr !== undefined) row.internalAddr = e.internalAddr;
    if (e.internalPort !== undefined) row.internalPort = e.internalPort;
  }
  return row;
}

/** What the control function knows and the copy leaves out (903/904 in embodiment 1, 904 in 2). */
export interface RestoreContext {
  vip: string;
  vipPort: number;
  /** This server's address (904). */
  serverAddr: string;
}

export function fromCopyRow(row: CopyRow, ctx: RestoreContext): ConnEntry {
  const e: ConnEntry = {
    protocol: row.protocol,
    clientAddr: row.clientAddr,
    clientPort: row.clientPort,
    vip: row.vip ?? ctx.vip,
    vipPort: row.vipPort ?? ctx.vipPort,
    serverAddr: ctx.serverAddr,
    serverPort: row.serverPort,
    seqDelta: 0,
    timeoutS: row.timeoutS,
    seenReply: row.seenReply,
    assured: row.assured,
    mark: row.mark,
  };
  if (row.tcpState) e.tcpState = row.tcpState;
  if (row.internalAddr !== undefined) e.internalAddr = row.internalAddr;
  if (row.internalPort !== undefined) e.internalPort = row.internalPort;
  return e;
}

export interface PushInfo {
  balancer: string;
  generation: number;
  at: number;
  rows: number;
}

function rowKey(r: CopyRow): string {
  return `${r.protocol} ${r.clientAddr}:${r.clientPort} ${r.vip ?? ""}:${r.vipPort ?? ""}`;
}

interface BalancerCopy {
  /** The last generation whose every part arrived. */
  complete: { generation: number; at: number; rows: Map<string, CopyRow> } | undefined;
  /** The generation being received (parts still missing). */
  staging: { generation: number; parts: number; got: Set<number>; rows: Map<string, CopyRow> } | undefined;
}

/**
 * One server's copy 54: per balancer, the rows of its latest complete full push. A push
 * of many entries comes in parts; the new generation replaces the copy only once every
 * part arrived, so a balancer that dies in the middle of a push leaves the previous
 * complete copy, overlaid with the parts that did arrive (newer states of the same
 * connections, and connections born since). A delta adds and removes rows. Older
 * generations are ignored, so a reordered datagram cannot roll a copy back. Only the
 * seed's columns for the embodiment are stored (toCopyRow).
 */
export class CopyStore {
  private readonly byBalancer = new Map<string, BalancerCopy>();

  constructor(private readonly embodiment: Embodiment) {}

  /** Applies a push (or one part of it); returns false when it is older than what the store has. */
  apply(
    balancer: string,
    generation: number,
    kind: "full" | "delta",
    entries: readonly ConnEntry[],
    removed: readonly ConnEntry[] = [],
    now = Date.now(),
    part = 0,
    parts = 1,
  ): boolean {
    let c = this.byBalancer.get(balancer);
    if (!c) {
      c = { complete: undefined, staging: undefined };
      this.byBalancer.set(balancer, c);
    }
    const newest = Math.max(c.complete?.generation ?? -1, c.staging?.generation ?? -1);
    if (generation < newest || (c.complete && generation === c.complete.generation && kind === "full"))
      return false;
    if (kind === "delta") {
      const target = c.complete ?? { generation, at: now, rows: new Map<string, CopyRow>() };
      for (const e of entries) {
        const r = toCopyRow(e, this.embodiment);
        target.rows.set(rowKey(r), r);
      }
      for (const e of removed) target.rows.delete(rowKey(toCopyRow(e, this.embodiment)));
      target.generation = generation;
      target.at = now;
      c.complete = target;
      return true;
    }
    if (!c.staging || c.staging.generation !== generation) {
      c.staging = { generation, parts, got: new Set(), rows: new Map() };
    }
    const st = c.staging;
    st.got.add(part);
    for (const e of entries) {
      const r = toCopyRow(e, this.embodiment);
      st.rows.set(rowKey(r), r);
    }
    if (st.got.size >= st.parts) {
      c.complete = { generation, at: now, rows: st.rows };
      c.staging = undefined;
    }
    return true;
  }

  private rows(balancer: string): CopyRow[] {
    const c = this.byBalancer.get(balancer);
    if (!c) return [];
    const merged = new Map(c.complete?.rows ?? []);
    for (const [k, r] of c.staging?.rows ?? []) merged.set(k, r);
    return [...merged.values()];
  }

  /** The copy 54 rows of `balancer`'s entries for `vip` (rows without a VIP column belong to this server's VIP). */
  copyRows(balancer: string, vip: string): CopyRow[] {
    return this.rows(balancer).filter((r) => r.vip === undefined || r.vip === vip);
  }

  /** Entries rebuilt from the copy (third step of failover). */
  restore(balancer: string, ctx: RestoreContext): ConnEntry[] {
    return this.copyRows(balancer, ctx.vip).map((r) => fromCopyRow(r, ctx));
  }

  info(): PushInfo[] {
    return [...this.byBalancer.entries()].map(([balancer, c]) => ({
      balancer,
      generation: c.complete?.generation ?? -1,
      at: c.complete?.at ?? 0,
      rows: this.rows(balancer).length,
    }));
  }

  size(balancer?: string): number {
    if (balancer) return this.rows(balancer).length;
    let n = 0;
    for (const b of this.byBalancer.keys()) n += this.rows(b).length;
    return n;
  }
}

/** "0A0012C6" of /proc/net/tcp (the __be32 printed as a host-order u32) -> "198.18.0.10". */
function procAddress(hex: string, littleEndian: boolean): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const n = Number.parseInt(hex, 16);
  const b = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return (littleEndian ? b.reverse() : b).join(".");
}

/**
 * Modification 1 (embodiment 1 only): the server's own TCP/IP connection table (Fig. 14,
 * the kernel's /proc/net/tcp of the server's namespace, read in the keeper's process: no
 * `ss` started on a failover's path) stands in for the copy: the peers of its established
 * connections on the server port are the clients (901/902), its local port is 905, the
 * VIP (903) and the server (904) are known, and the flow-control delta (907) is zero.
 * Lines the parser does not understand are counted. In full NAT the peer would be the
 * balancer's internal address, not the client, so this source does not apply there.
 */
export function entriesFromSocketTable(
  procNetTcp: string,
  ctx: RestoreContext & { serverPort: number },
  littleEndian: boolean = endianness() === "LE",
): { entries: ConnEntry[]; malformed: number } {
  const entries: ConnEntry[] = [];
  let malformed = 0;
  for (const line of procNetTcp.split("\n")) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4 || cols[0] === "sl") continue;
    const [, local, remote, state] = cols as [string, string, string, string];
    const lm = /^([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})$/.exec(local);
    const rm = /^([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})$/.exec(remote);
    const peer = rm ? procAddress(rm[1] as string, littleEndian) : undefined;
    if (!lm || !rm || !peer || !/^[0-9A-Fa-f]{2}$/.test(state)) {
      malformed++;
      continue;
    }
    // 01: TCP_ESTABLISHED; connections of other ports are not the web server's.
    if (state !== "01" || Number.parseInt(lm[2] as string, 16) !== ctx.serverPort) continue;
    entries.push({
      protocol: "tcp",
      clientAddr: peer,
      clientPort: Number.parseInt(rm[2] as string, 16),
      vip: ctx.vip,
      vipPort: ctx.vipPort,
      serverAddr: ctx.serverAddr,
      serverPort: ctx.serverPort,
      tcpState: "ESTABLISHED",
      seqDelta: 0,
      // The kernel's default established timeout (nf_conntrack_tcp_timeout_established).
      timeoutS: 432_000,
      seenReply: true,
      assured: true,
      mark: 0,
    });
  }
  return { entries, malformed };
}
