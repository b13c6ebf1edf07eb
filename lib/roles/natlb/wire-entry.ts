import type { ConnEntry as WireEntry } from "../../wire/natlb.ts";
import type { ConnEntry } from "./conn-table.ts";

/** conntrack status bits (linux/netfilter/nf_conntrack_common.h). */
const IPS_SEEN_REPLY = 1 << 1;
const IPS_ASSURED = 1 << 2;

/** A table entry as the NAT-LB control messages carry it (lib/wire/natlb.ts, 52 bytes). */
export function toWireEntry(e: ConnEntry, removed = false): WireEntry {
  const w: WireEntry = {
    protocol: e.protocol === "tcp" ? 6 : 17,
    tcpState: e.tcpState ?? "NONE",
    status: (e.seenReply ? IPS_SEEN_REPLY : 0) | (e.assured ? IPS_ASSURED : 0),
    client: { address: e.clientAddr, port: e.clientPort },
    vip: { address: e.vip, port: e.vipPort },
    server: { address: e.serverAddr, port: e.serverPort },
    timeoutSeconds: e.timeoutS,
    mark: e.mark >>> 0,
    // The kernel keeps TCP windows itself and ctnetlink cannot set them; the moved entry
    // re-learns them from the next packets (nf_conntrack_tcp_be_liberal, ruleset.ts).
    flowControl: { origSeq: 0, replySeq: 0, origWindow: 0, replyWindow: 0, origWscale: 0, replyWscale: 0 },
    removed,
  };
  if (e.internalAddr !== undefined) w.internal = { address: e.internalAddr, port: e.internalPort ?? 0 };
  return w;
}

export function fromWireEntry(w: WireEntry): ConnEntry | undefined {
  if (w.protocol !== 6 && w.protocol !== 17) return undefined;
  const e: ConnEntry = {
    protocol: w.protocol === 6 ? "tcp" : "udp",
    clientAddr: w.client.address,
    clientPort: w.client.port,
    vip: w.vip.address,
    vipPort: w.vip.port,
    serverAddr: w.server.address,
    serverPort: w.server.port,
    seqDelta: 0,
    timeoutS: w.timeoutSeconds,
    seenReply: (w.status & IPS_SEEN_REPLY) !== 0,
    assured: (w.status & IPS_ASSURED) !== 0,
    mark: w.mark,
  };
  if (w.protocol === 6) e.tcpState = w.tcpState;
  if (w.internal) {
    e.internalAddr = w.internal.address;
    e.internalPort = w.internal.port;
  }
  return e;
}
