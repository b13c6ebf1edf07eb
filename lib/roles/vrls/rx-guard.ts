/**
 * Issue 15: what a VRLS member receives from the LAN before its agent spends CPU on it.
 *
 * 1. In the kernel (`rxGuardTable`): an nftables table `ip vrls<VRID>_rx` in the member's
 *    namespace, prerouting hook at priority -300 (before conntrack and before the routing
 *    decision, which would drop a spoofed local source silently as a martian), sees every
 *    IP protocol-112 packet before the raw socket does. It drops, each with its own counter:
 *      own_source  a source address that is one of the member's own (spoofed);
 *      bad_ttl     TTL not 255 (RFC 5798 7.1: such a packet MUST be discarded);
 *      ip_options  an IP header with options (no VRRP sender adds any);
 *      too_short   shorter than IP header + the 8-byte VRRP header;
 *      bad_version VRRP version not 3 (VRLS rides on VRRPv3 only);
 *      other_vrid  another virtual router's VRID;
 *      bad_type    VRRP type 0 or above 10 (VRLS types are 1..10);
 *      peer_rate   a configured peer (member or coordinator address) above `peerPps`;
 *      source_rate any other source above `sourcePps` (per source address, a bounded
 *                  dynamic set: once full, new sources meet only the global limit);
 *      global_rate all other sources together above `globalPps`.
 *    Peers that pass are counted in `passed_peer` and accepted before the global limit: the
 *    master's advertisements and the members' own control messages have their own path,
 *    which junk from other addresses cannot exhaust. The socket's queue then holds at most
 *    `globalPps` non-peer packets a second, which the agent drops cheaply (validation, then
 *    HMAC), so the receive buffer never overflows with junk and peer messages are not lost
 *    behind it. What stays open: a sender that spoofs a peer's source address shares that
 *    peer's budget (`peerPps`, far above any real peer's rate); only the HMAC tells them apart.
 *    Why nftables and not a classic BPF filter on the raw socket: a socket filter cannot
 *    count what it drops, and the issue asks for every shed packet counted per reason; the
 *    table is made through the agent's persistent libnftables context with `flags owner`,
 *    so it disappears with the agent.
 * 2. In user space (`RxLimiter`): token buckets per sender address and one global, checked
 *    after the cheap structural validation and before the HMAC; each refusal counted.
 */

export interface RxGuardOptions {
  vrid: number;
  /**
   * The LAN interface the agent's raw socket is bound to. Only packets arriving on it are
   * judged and counted; copies the kernel also delivers through other interfaces (the
   * macvlan vr<VRID> on the same LAN) reach no socket of the agent and are left alone,
   * so each frame on the LAN is counted once.
   */
  lanInterface: string;
  /** Source addresses of genuine control messages: the other members and the coordinator. */
  peers: readonly string[];
  /** Packets a second one peer may send (burst: the same number). Default 20,000. */
  peerPps?: number;
  /** Packets a second any other single source may send. Default 200 (burst 200). */
  sourcePps?: number;
  /** Packets a second all other sources together may send. Default 2,000 (burst 1,000). */
  globalPps?: number;
  /** Source addresses tracked for the per-source limit. Default 4,096. */
  sourceSlots?: number;
  /**
   * Checks left out of the kernel guard, so such packets reach the agent: only for the
   * seeded faults that accept what RFC 5798 7.1 discards (vrrp-rx-accept-ttl,
   * -version, -other-vrid; lib/roles/seeded-faults.ts). Without this the guard discards
   * them before the faulty agent could accept them, and the fault breaks nothing.
   */
  letThrough?: readonly ("bad_ttl" | "bad_version" | "other_vrid")[];
}

/** The counters of the kernel guard, in the order the rules test them. */
export const RX_GUARD_COUNTERS = [
  "own_source",
  "bad_ttl",
  "ip_options",
  "too_short",
  "bad_version",
  "other_vrid",
  "bad_type",
  "peer_rate",
  "source_rate",
  "global_rate",
  "passed_peer",
  "passed_other",
] as const;
export type RxGuardCounter = (typeof RX_GUARD_COUNTERS)[number];

export const RX_GUARD_DEFAULTS = { peerPps: 20_000, sourcePps: 200, globalPps: 2_000, sourceSlots: 4096 };

export function rxGuardTableName(vrid: number): string {
  return `vrls${vrid}_rx`;
}

function checkRate(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1 || v > 10_000_000) {
    throw new Error(`rx guard: ${name} must be an integer 1..10000000, got ${v}`);
  }
  return v;
}

/** The body of table `ip vrls<VRID>_rx` (for replaceTable). */
export function rxGuardTable(o: RxGuardOptions): string {
  if (!Number.isInteger(o.vrid) || o.vrid < 1 || o.vrid > 255)
    throw new Error(`rx guard: vrid must be 1..255, got ${o.vrid}`);
  const peerPps = checkRate("peerPps", o.peerPps ?? RX_GUARD_DEFAULTS.peerPps);
  const sourcePps = checkRate("sourcePps", o.sourcePps ?? RX_GUARD_DEFAULTS.sourcePps);
  const globalPps = checkRate("globalPps", o.globalPps ?? RX_GUARD_DEFAULTS.globalPps);
  const slots = checkRate("sourceSlots", o.sourceSlots ?? RX_GUARD_DEFAULTS.sourceSlots);
  for (const p of o.peers) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(p)) throw new Error(`rx guard: peer "${p}" is not an IPv4 address`);
  }
  if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(o.lanInterface))
    throw new Error(`rx guard: lanInterface "${o.lanInterface}" is not an interface name`);
  const peers = [...new Set(o.peers)];
  const globalBurst = Math.max(1, Math.floor(globalPps / 2));
  const through = new Set(o.letThrough ?? []);
  return [
    "flags owner;",
    ...RX_GUARD_COUNTERS.map((c) => `counter ${c} { }`),
    `set peers { type ipv4_addr;${peers.length ? ` elements = { ${peers.join(", ")} };` : ""} }`,
    `set peer_rate { type ipv4_addr; size ${Math.max(1, peers.length)}; flags dynamic,timeout; timeout 10s; }`,
    `set source_rate { type ipv4_addr; size ${slots}; flags dynamic,timeout; timeout 10s; }`,
    "chain rx {",
    "  type filter hook prerouting priority -300; policy accept;",
    "  ip protocol != 112 accept",
    `  iifname != "${o.lanInterface}" accept`,
    '  fib saddr type local counter name "own_source" drop',
    ...(through.has("bad_ttl") ? [] : ['  ip ttl != 255 counter name "bad_ttl" drop']),
    '  ip hdrlength != 5 counter name "ip_options" drop',
    '  ip length < 28 counter name "too_short" drop',
    ...(through.has("bad_version") ? [] : ['  @th,0,4 != 3 counter name "bad_version" drop']),
    ...(through.has("other_vrid") ? [] : [`  @th,8,8 != ${o.vrid} counter name "other_vrid" drop`]),
    '  @th,4,4 == 0 counter name "bad_type" drop',
    '  @th,4,4 > 10 counter name "bad_type" drop',
    `  ip saddr @peers update @peer_rate { ip saddr limit rate over ${peerPps}/second burst ${peerPps} packets } counter name "peer_rate" drop`,
    '  ip saddr @peers counter name "passed_peer" accept',
    `  update @source_rate { ip saddr limit rate over ${sourcePps}/second burst ${sourcePps} packets } counter name "source_rate" drop`,
    `  limit rate over ${globalPps}/second burst ${globalBurst} packets counter name "global_rate" drop`,
    '  counter name "passed_other" accept',
    "}",
  ].join("\n");
}

/**
 * Issue 15, address conflicts: a gratuitous ARP (or any ARP) on the LAN whose sender IP is
 * one of the virtual router's addresses and whose sender MAC is not the virtual MAC is
 * another host claiming the VIP. Table `arp vrls<VRID>_arp`, input hook, counts such ARP
 * packets arriving on the LAN interface in counter `arp_conflict` (the master polls it and
 * re-asserts the VIP with its own gratuitous ARP; docs/decisions.md 2026-12-03). The
 * packet is accepted: the kernel's own ARP handling is left as it was.
 */
export function arpConflictTableName(vrid: number): string {
  return `vrls${vrid}_arp`;
}

export function arpConflictTable(o: {
  lanInterface: string;
  addresses: readonly string[];
  vmac: string;
}): string {
  if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(o.lanInterface))
    throw new Error(`arp guard: lanInterface "${o.lanInterface}" is not an interface name`);
  for (const a of o.addresses)
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(a)) throw new Error(`arp guard: "${a}" is not an IPv4 address`);
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(o.vmac)) throw new Error(`arp guard: "${o.vmac}" is not a MAC`);
  return [
    "flags owner;",
    "counter arp_conflict { }",
    "chain in {",
    "  type filter hook input priority 0; policy accept;",
    `  iifname "${o.lanInterface}" arp saddr ip { ${o.addresses.join(", ")} } arp saddr ether != ${o.vmac.toLowerCase()} counter name "arp_conflict"`,
    "}",
  ].join("\n");
}

// The user-space limits are shared with the NAT-LB control channel: lib/wire/rate-limit.ts.
export { LogLimiter, RxLimiter, type RxLimiterOptions, type RxLimitVerdict } from "../../wire/rate-limit.ts";
