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

/**
 * One server's copy 54: per balancer, the rows of its latest full push (a full push
 * replaces that balancer's copy; a delta adds and removes rows). Only the seed's columns
 * for the embodiment are stored (toCopyRow). Old generations are ignored, so a reordered
 * datagram cannot roll a copy back.
 */
export class CopyStore {
  private readonly byBalancer = new Map<string, { generation: number; at: number; rows: Map<string, CopyRow> }>();

  constructor(private readonly embodiment: Embodiment) {}

  /** Applies a push; returns false when it is older than what the store has. */
  apply(
    balancer: string,
    generation: number,
    kind: "full" | "delta",
    entries: readonly ConnEntry[],
    removed: readonly ConnEntry[] = [],
    now = Date.now(),
  ): boolean {
    const cur = this.byBalancer.get(balancer);
    if (cur && generation < cur.generation) return false;
    const rows = kind === "full" && !(cur && generation === cur.generation) ? new Map<string, CopyRow>() : (cur?.rows ?? new Map());
    for (const e of entries) {
      const r = toCopyRow(e, this.embodiment);
      rows.set(rowKey(r), r);
    }
    for (const e of removed) rows.delete(rowKey(toCopyRow(e, this.embodiment)));
    this.byBalancer.set(balancer, { generation, at: now, rows });
    return true;
  }

  /** The copy 54 rows of `balancer`'s entries for `vip` (rows without a VIP column belong to this server's VIP). */
  copyRows(balancer: string, vip: string): CopyRow[] {
    const cur = this.byBalancer.get(balancer);
    if (!cur) return [];
    return [...cur.rows.values()].filter((r) => r.vip === undefined || r.vip === vip);
  }

  /** Entries rebuilt from the copy (third step of failover). */
  restore(balancer: string, ctx: RestoreContext): ConnEntry[] {
    return this.copyRows(balancer, ctx.vip).map((r) => fromCopyRow(r, ctx));
  }

  info(): PushInfo[] {
    return [...this.byBalancer.entries()].map(([balancer, v]) => ({ balancer, generation: v.generation, at: v.at, rows: v.rows.size }));
  }

  size(balancer?: string): number {
    if (balancer) return this.byBalancer.get(balancer)?.rows.size ?? 0;
    let n = 0;
    for (const v of this.byBalancer.values()) n += v.rows.size;
    return n;
  }
}
