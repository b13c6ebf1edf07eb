import { ROLE_QUEUES } from "../../dataplane/conventions.ts";
import type { NatlbConfig, VipConfig } from "./config.ts";

/** The mark nftables puts on packets of a VIP in transition; one iptables rule queues them. */
export const HOLD_MARK: number = ROLE_QUEUES.natlb.mark;
export const TABLE = "natlb";

/** Named counter of a VIP (bytes/packets both directions, read by the controller for load). */
export function vipCounterName(index: number): string {
  return `vip_${index}`;
}

function dnatTarget(v: VipConfig): string {
  const [only, ...rest] = v.servers;
  if (only && rest.length === 0) return `dnat ip to ${only.address}:${only.port}`;
  // Several servers behind one VIP: round robin for new accesses (the seed leaves the
  // choice of server to the balancer; conntrack pins each access to its server).
  const map = v.servers.map((s, i) => `${i} : ${s.address} . ${s.port}`).join(", ");
  return `dnat ip to numgen inc mod ${v.servers.length} map { ${map} }`;
}

/**
 * The whole nftables table of a balancer, applied in one `nft -f` transaction.
 * Every balancer gets the same translation rules for every VIP: what decides who
 * translates a VIP is who holds its address (and its conntrack entries), so a move
 * never rewrites the ruleset.
 *
 * - hold_mark (prerouting, before iptables' raw table at -300 and conntrack at -200):
 *   packets of a VIP in transition get HOLD_MARK; `iptables -t raw -A PREROUTING -m mark
 *   --mark HOLD_MARK -j NFQUEUE` hands them to the HoldQueue *before conntrack sees them*,
 *   so when they are released after step 3 conntrack finds the moved entry.
 *   Both directions are held: client -> VIP, and server -> balancer (embodiment 1: from
 *   the VIP's servers on the internal interface; embodiment 2: to the VIP's internal address).
 * - nat_pre / nat_post: embodiment 1 DNAT; embodiment 2 DNAT + SNAT to the VIP's
 *   internal address (Fig. 11B).
 * - mode_vips: the VIPs of this balancer's mode table; packets for a VIP in neither mode
 *   are not translated and are refused (TCP RST / ICMP administratively prohibited).
 * - filter: strict conntrack (sysctl nf_conntrack_tcp_loose=0 makes a mid-stream TCP
 *   packet without an entry INVALID); INVALID TCP is answered with a TCP RST, the seed's
 *   prior-art "error message". Per-VIP counters on both directions.
 */
export function buildRuleset(
  config: NatlbConfig,
  balancer: string,
  /** unknownVip "drop": the seeded fault natlb-unknown-vip-silent (no error returned). */
  options: { owner?: boolean; unknownVip?: "reject" | "drop" } = {},
): string {
  const b = config.balancers[balancer];
  if (!b) throw new Error(`no balancer named "${balancer}" in the natlb section`);
  const vips = config.vips;
  const lines: string[] = [];
  lines.push(`table ip ${TABLE} {`);
  // Owned by the agent's netlink socket: the kernel removes it when the agent dies.
  if (options.owner) lines.push("  flags owner;");
  for (let i = 0; i < vips.length; i++) lines.push(`  counter ${vipCounterName(i)} {`, "  }");
  lines.push(
    "  counter invalid_rejected {",
    "  }",
    "  counter invalid_dropped {",
    "  }",
    "  counter unknown_vip {",
    "  }",
  );
  lines.push(
    "  set vips {",
    "    type ipv4_addr",
    `    elements = { ${vips.map((v) => v.address).join(", ")} }`,
    "  }",
  );
  // The VIPs in this balancer's transfer processing mode table (normal or transition).
  lines.push("  set mode_vips {", "    type ipv4_addr", "  }");
  lines.push("  set transition_dst {", "    type ipv4_addr", "  }");
  lines.push("  set transition_src {", "    type ipv4_addr", "  }");
  lines.push("  chain hold_mark {", "    type filter hook prerouting priority -350; policy accept;");
  lines.push(`    ip daddr @transition_dst meta mark set ${hex(HOLD_MARK)}`);
  // Only what the server sends through the balancer (not to it: the control server may be
  // one of a VIP's servers, and its control messages must not wait behind the move).
  lines.push(
    `    iifname "${b.internal}" ip saddr @transition_src fib daddr type != local meta mark set ${hex(HOLD_MARK)}`,
  );
  lines.push("  }");
  lines.push("  chain nat_pre {", "    type nat hook prerouting priority dstnat; policy accept;");
  // A VIP in neither mode is not translated (and is refused in filter_fwd).
  lines.push("    ip daddr != @mode_vips return");
  for (const v of vips)
    lines.push(`    ip daddr ${v.address} ${v.protocol} dport ${v.port} ${dnatTarget(v)}`);
  lines.push("  }");
  if (config.embodiment === "fullnat") {
    lines.push("  chain nat_post {", "    type nat hook postrouting priority srcnat; policy accept;");
    for (const v of vips)
      lines.push(`    ct original ip daddr ${v.address} ct direction original snat ip to ${v.internal}`);
    lines.push("  }");
  }
  lines.push("  chain filter_fwd {", "    type filter hook forward priority filter; policy accept;");
  // Seed: a packet for an address in neither mode is discarded and an error message returned
  // (a client whose ARP cache still points here after a move).
  lines.push(
    '    ip daddr @vips ip daddr != @mode_vips meta l4proto tcp counter name "unknown_vip" reject with tcp reset',
  );
  lines.push(
    '    ip daddr @vips ip daddr != @mode_vips counter name "unknown_vip" reject with icmp type admin-prohibited',
  );
  if (options.unknownVip === "drop")
    lines.splice(-2, 2, '    ip daddr @vips ip daddr != @mode_vips counter name "unknown_vip" drop');
  vips.forEach((v, i) => {
    lines.push(`    ct original ip daddr ${v.address} counter name "${vipCounterName(i)}"`);
  });
  lines.push('    ct state invalid meta l4proto tcp counter name "invalid_rejected" reject with tcp reset');
  lines.push('    ct state invalid counter name "invalid_dropped" drop');
  lines.push("  }");
  lines.push("  chain filter_in {", "    type filter hook input priority filter; policy accept;");
  lines.push(
    '    ip daddr @vips ct state invalid meta l4proto tcp counter name "invalid_rejected" reject with tcp reset',
  );
  lines.push('    ip daddr @vips ct state invalid counter name "invalid_dropped" drop');
  lines.push("  }");
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

/** Set elements that make a VIP's packets held (both directions) on this balancer. */
export function transitionElements(config: NatlbConfig, v: VipConfig): { dst: string[]; src: string[] } {
  if (config.embodiment === "fullnat") return { dst: [v.address, v.internal], src: [] };
  return { dst: [v.address], src: v.servers.map((s) => s.address) };
}

/** Kernel settings every balancer needs (per network namespace). */
export const BALANCER_SYSCTLS: Record<string, string> = {
  "net.ipv4.ip_forward": "1",
  // Strict: a non-SYN TCP packet with no entry is INVALID (not picked up mid-stream).
  "net.netfilter.nf_conntrack_tcp_loose": "0",
  // Entries recreated by a move carry no window history (ctnetlink cannot set it); the
  // first packets re-learn the windows. Liberal window checks keep those packets from
  // being flagged INVALID; a packet with no entry at all is still INVALID (loose=0).
  "net.netfilter.nf_conntrack_tcp_be_liberal": "1",
  // Every entry carries the event extension, also one created before the agent subscribed
  // (the default, 2, adds it only while someone listens): a move's delta and the copy
  // pushes follow the entries' changes through conntrack events.
  "net.netfilter.nf_conntrack_events": "1",
  "net.ipv4.conf.all.rp_filter": "0",
  "net.ipv4.conf.default.rp_filter": "0",
};

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}
