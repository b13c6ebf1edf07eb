import type { CtCreate, CtFlow, CtKey } from "tandem-netlink";

/**
 * The access correspondence table (seed 002, Figs. 5, 6, 9, 10 and 12) as Tandem keeps it:
 * the kernel's conntrack table is the table; this module is its typed view in the seed's
 * columns: from and to the kernel's entries as ctnetlink carries them (tandem-netlink,
 * what the balancer uses), and from `conntrack -L -o extended` text (what `tandem natlb
 * show` reads over SSH), plus the equivalent `conntrack -I` line of an entry (for errors
 * and for people).
 *
 * Column mapping (seed reference numerals):
 *   901 clientAddr, 902 clientPort   the original source (the client, Fig. 4A 800/801)
 *   903 vip                          the external address of the balancer (the unit of a move)
 *   904 serverAddr, 905 serverPort   the server the access was translated to (Fig. 4B 807/808)
 *   906-908 TCP flow-control info    what the kernel exposes of it: tcpState (906), seqDelta (907,
 *                                    always 0: the kernel's NAT never changes payload lengths,
 *                                    Modification 1 sets it to zero too), timeoutS + flags (908)
 *   913 internalAddr, 914 internalPort  full NAT only (Fig. 12): the balancer-side source the
 *                                    server sees; it belongs to the VIP and moves with it.
 */

export type Embodiment = "dnat" | "fullnat";
export type L4Protocol = "tcp" | "udp";

export const TCP_STATES = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
  "SYN_SENT2",
] as const;
export type TcpState = (typeof TCP_STATES)[number];

export interface ConnEntry {
  protocol: L4Protocol;
  /** 901 */
  clientAddr: string;
  /** 902 */
  clientPort: number;
  /** 903 */
  vip: string;
  /** Destination port at the VIP (Fig. 4A 803). */
  vipPort: number;
  /** 904 */
  serverAddr: string;
  /** 905 */
  serverPort: number;
  /** 906 (TCP only; undefined for UDP). */
  tcpState?: TcpState;
  /** 907: sequence delta; the kernel's NAT never needs one. */
  seqDelta: 0;
  /** 908: seconds left before the kernel forgets the entry. */
  timeoutS: number;
  /** 908: the peer has answered (no [UNREPLIED]). */
  seenReply: boolean;
  /** 908: [ASSURED]: the kernel will not evict it early. */
  assured: boolean;
  /** 913 (full NAT only) */
  internalAddr?: string;
  /** 914 (full NAT only) */
  internalPort?: number;
  /** conntrack mark (carried across a move). */
  mark: number;
}

/** The original-direction 5-tuple: the key of an entry on every balancer. */
export function entryKey(
  e: Pick<ConnEntry, "protocol" | "clientAddr" | "clientPort" | "vip" | "vipPort">,
): string {
  return `${e.protocol} ${e.clientAddr}:${e.clientPort} > ${e.vip}:${e.vipPort}`;
}

export interface ParseProblem {
  line: number;
  text: string;
  reason: string;
}

export interface ParsedTable {
  entries: ConnEntry[];
  /** Lines that are conntrack entries but not VIP translations (e.g. the balancer's own traffic). */
  skipped: number;
  malformed: ParseProblem[];
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function isIpv4(s: string | undefined): s is string {
  const m = s ? IPV4.exec(s) : null;
  return !!m && m.slice(1).every((o) => Number(o) <= 255);
}

function port(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

export interface RawFlow {
  protocol: L4Protocol;
  timeoutS: number;
  state: TcpState | undefined;
  orig: { src: string; dst: string; sport: number; dport: number };
  reply: { src: string; dst: string; sport: number; dport: number };
  unreplied: boolean;
  assured: boolean;
  mark: number;
}

/**
 * Parses one line of `conntrack -L [-o extended]`. Never throws: returns a reason instead.
 * Example: `ipv4 2 tcp 6 431999 ESTABLISHED src=198.18.0.10 dst=198.18.0.100 sport=46612
 * dport=80 src=198.19.0.10 dst=198.18.0.10 sport=8080 dport=46612 [ASSURED] mark=0 use=1`
 */
export function parseConntrackLine(
  line: string,
): { ok: true; flow: RawFlow } | { ok: false; reason: string } {
  const tokens = line.trim().split(/\s+/);
  let i = 0;
  if (tokens[0] === "ipv4") i = 2;
  else if (tokens[0] === "ipv6") return { ok: false, reason: "IPv6 entry" };
  const proto = tokens[i];
  if (proto !== "tcp" && proto !== "udp")
    return { ok: false, reason: `unsupported protocol ${proto ?? "<none>"}` };
  i += 2;
  const timeoutS = Number(tokens[i]);
  if (!Number.isInteger(timeoutS) || timeoutS < 0) return { ok: false, reason: `bad timeout ${tokens[i]}` };
  i++;
  let state: TcpState | undefined;
  if (proto === "tcp") {
    const s = tokens[i];
    if (!s || !(TCP_STATES as readonly string[]).includes(s))
      return { ok: false, reason: `bad TCP state ${s}` };
    state = s as TcpState;
    i++;
  }
  const tuples: Record<string, string>[] = [{}, {}];
  let which = 0;
  let unreplied = false;
  let assured = false;
  let mark = 0;
  for (; i < tokens.length; i++) {
    const t = tokens[i] as string;
    if (t === "[UNREPLIED]") unreplied = true;
    else if (t === "[ASSURED]") assured = true;
    else if (t.startsWith("[")) continue;
    else {
      const eq = t.indexOf("=");
      if (eq < 0) return { ok: false, reason: `unexpected token ${t}` };
      const k = t.slice(0, eq);
      const v = t.slice(eq + 1);
      if (k === "mark") {
        mark = Number(v);
        if (!Number.isInteger(mark)) return { ok: false, reason: `bad mark ${v}` };
      } else if (k === "src" || k === "dst" || k === "sport" || k === "dport") {
        const tuple = tuples[which] as Record<string, string>;
        if (tuple[k] !== undefined) {
          which++;
          if (which > 1) return { ok: false, reason: `third ${k}= in one line` };
        }
        (tuples[which] as Record<string, string>)[k] = v;
      }
    }
  }
  const [o, r] = tuples as [Record<string, string>, Record<string, string>];
  const op = { sport: port(o.sport), dport: port(o.dport) };
  const rp = { sport: port(r.sport), dport: port(r.dport) };
  if (!isIpv4(o.src) || !isIpv4(o.dst) || !isIpv4(r.src) || !isIpv4(r.dst))
    return { ok: false, reason: "missing or bad address" };
  if (op.sport === undefined || op.dport === undefined || rp.sport === undefined || rp.dport === undefined) {
    return { ok: false, reason: "missing or bad port" };
  }
  return {
    ok: true,
    flow: {
      protocol: proto,
      timeoutS,
      state,
      orig: { src: o.src, dst: o.dst, sport: op.sport, dport: op.dport },
      reply: { src: r.src, dst: r.dst, sport: rp.sport, dport: rp.dport },
      unreplied,
      assured,
      mark,
    },
  };
}

/** Turns a kernel flow into a seed-column entry when its original destination is one of `vips`. */
export function flowToEntry(flow: RawFlow, vips: ReadonlySet<string>): ConnEntry | undefined {
  if (!vips.has(flow.orig.dst)) return undefined;
  const fullNat = flow.reply.dst !== flow.orig.src || flow.reply.dport !== flow.orig.sport;
  const entry: ConnEntry = {
    protocol: flow.protocol,
    clientAddr: flow.orig.src,
    clientPort: flow.orig.sport,
    vip: flow.orig.dst,
    vipPort: flow.orig.dport,
    serverAddr: flow.reply.src,
    serverPort: flow.reply.sport,
    seqDelta: 0,
    timeoutS: flow.timeoutS,
    seenReply: !flow.unreplied,
    assured: flow.assured,
    mark: flow.mark,
  };
  if (flow.state) entry.tcpState = flow.state;
  if (fullNat) {
    entry.internalAddr = flow.reply.dst;
    entry.internalPort = flow.reply.dport;
  }
  return entry;
}

const IPS_SEEN_REPLY = 1 << 1;
const IPS_ASSURED = 1 << 2;

/** A kernel entry (ctnetlink, tandem-netlink) as a RawFlow. TCP_CONNTRACK_* numbers are TCP_STATES' indexes. */
export function rawFlowOf(f: CtFlow): RawFlow {
  return {
    protocol: f.protocol,
    timeoutS: f.timeoutS,
    state: f.tcpState === undefined ? undefined : TCP_STATES[f.tcpState],
    orig: f.orig,
    reply: f.reply,
    unreplied: (f.status & IPS_SEEN_REPLY) === 0,
    assured: (f.status & IPS_ASSURED) !== 0,
    mark: f.mark,
  };
}

/** The kernel key of an entry: its original-direction tuple. */
export function entryCtKey(
  e: Pick<ConnEntry, "protocol" | "clientAddr" | "clientPort" | "vip" | "vipPort">,
): CtKey {
  return { protocol: e.protocol, src: e.clientAddr, dst: e.vip, sport: e.clientPort, dport: e.vipPort };
}

/**
 * What recreates `entry` on another balancer with the same NAT bindings (the ctnetlink
 * equivalent of {@link entryToInsertLine}): the DNAT binding to the server (IPS_DST_NAT),
 * full NAT adds the SNAT binding to the internal address (IPS_SRC_NAT). An entry given
 * without them would forward untranslated packets (tried: connection reset).
 */
export function entryToCreate(entry: ConnEntry): CtCreate {
  const c: CtCreate = {
    ...entryCtKey(entry),
    dnat: { address: entry.serverAddr, port: entry.serverPort },
    status: (entry.assured ? IPS_ASSURED : 0) | (entry.seenReply ? IPS_SEEN_REPLY : 0),
    // A zero timeout would make the kernel drop the entry at once; keep it alive for the move.
    timeoutS: Math.max(entry.timeoutS, 1),
  };
  if (entry.internalAddr !== undefined)
    c.snat = { address: entry.internalAddr, port: entry.internalPort ?? entry.clientPort };
  if (entry.protocol === "tcp") c.tcpState = TCP_STATES.indexOf(entry.tcpState ?? "ESTABLISHED");
  if (entry.mark !== 0) c.mark = entry.mark;
  return c;
}

/** Parses a whole `conntrack -L -o extended` listing, keeping the entries whose VIP is in `vips`. */
export function parseConntrackListing(text: string, vips: ReadonlySet<string>): ParsedTable {
  const out: ParsedTable = { entries: [], skipped: 0, malformed: [] };
  text.split("\n").forEach((raw, idx) => {
    const line = raw.trim();
    if (!line || line.startsWith("conntrack v")) return;
    const parsed = parseConntrackLine(line);
    if (!parsed.ok) {
      if (parsed.reason.startsWith("unsupported protocol") || parsed.reason === "IPv6 entry") out.skipped++;
      else out.malformed.push({ line: idx + 1, text: line, reason: parsed.reason });
      return;
    }
    const entry = flowToEntry(parsed.flow, vips);
    if (entry) out.entries.push(entry);
    else out.skipped++;
  });
  return out;
}

/**
 * The `conntrack -I` arguments that recreate `entry` on another balancer with the same
 * NAT bindings (what {@link entryToCreate} does over ctnetlink; shown in import errors):
 * `--dst-nat server:port` makes the kernel translate the VIP to the server (and set
 * IPS_DST_NAT); full NAT adds `--src-nat internal:port` (IPS_SRC_NAT). Giving only the
 * reply tuple (-r/-q) creates the entry but NOT the NAT binding: the kernel then forwards
 * untranslated packets (tried: connection reset).
 */
export function entryToInsertLine(entry: ConnEntry): string {
  const args = [
    "-I",
    "-p",
    entry.protocol,
    "-s",
    entry.clientAddr,
    "-d",
    entry.vip,
    "--sport",
    String(entry.clientPort),
    "--dport",
    String(entry.vipPort),
    "--dst-nat",
    `${entry.serverAddr}:${entry.serverPort}`,
  ];
  if (entry.internalAddr !== undefined) {
    args.push("--src-nat", `${entry.internalAddr}:${entry.internalPort ?? entry.clientPort}`);
  }
  if (entry.protocol === "tcp") args.push("--state", entry.tcpState ?? "ESTABLISHED");
  const status = [entry.assured ? "ASSURED" : "", entry.seenReply ? "SEEN_REPLY" : ""].filter(Boolean);
  args.push("-u", status.length > 0 ? status.join(",") : "UNSET");
  // A zero timeout would make the kernel drop the entry at once; keep it alive for the move.
  args.push("-t", String(Math.max(entry.timeoutS, 1)));
  if (entry.mark !== 0) args.push("-m", String(entry.mark));
  return args.join(" ");
}

/** Rows for printing (`tandem natlb show`): the seed's columns with their numerals. */
export function entryRow(e: ConnEntry): Record<string, string> {
  return {
    "client 901/902": `${e.clientAddr}:${e.clientPort}`,
    "VIP 903": `${e.vip}:${e.vipPort}`,
    "server 904/905": `${e.serverAddr}:${e.serverPort}`,
    "internal 913/914": e.internalAddr !== undefined ? `${e.internalAddr}:${e.internalPort}` : "-",
    "state 906": e.tcpState ?? e.protocol,
    "delta 907": String(e.seqDelta),
    "timeout 908": `${e.timeoutS}s${e.assured ? " assured" : ""}${e.seenReply ? "" : " unreplied"}`,
  };
}
