/**
 * VRRPv3 over IPv6 (RFC 9568) for the reference router: the pure parts of the
 * vrrp6-router agent (lib/roles/vrls/vrrp6-router.agent.ts). Frames, address order, the
 * nftables tables and the agent's arguments; nothing here touches a socket.
 *
 * Why a separate agent and not the VRLS router agent with an IPv6 switch: the VRLS
 * extension (types 2-10, seed Figs. 10A-10F), its data plane (hold queue, condition sets)
 * and its discovery (ICMP information requests) are IPv4 by construction; the plain
 * VRRPv3 part is the state machine (vrrp-state.ts, shared, family-neutral) plus the
 * wire codecs (lib/wire, IPv6 already there). The IPv6 agent reuses both and has its own
 * small data plane, so the IPv4 path is not touched.
 */
import { ETHERTYPE, encodeEthernet } from "../../wire/ethernet.ts";
import { unsolicitedNaFrame } from "../../wire/icmpv6.ts";
import {
  encodeIpv6,
  IPV6_NEXT_HEADER,
  ipv6MulticastMac,
  isLinkLocalV6,
  VRRP_MULTICAST_V6,
} from "../../wire/ipv6.ts";
import { encodeVrrp, virtualMac } from "../../wire/vrrp.ts";

/** What the controller passes to a vrrp6-router agent. */
export interface Vrrp6AgentArgs {
  /** The LAN interface (advertisements, Neighbor Discovery). */
  interface: string;
  vrid: number;
  priority: number;
  advertIntervalCs: number;
  preempt: boolean;
  /** The virtual addresses, with or without /len; at least one link-local (fe80::/10). */
  virtualAddresses: string[];
  /**
   * The link-local address advertisements leave from (RFC 9568 5.1.2.1), also this
   * router's address in the master election; absent: the interface's first link-local one.
   */
  source?: string;
  /** RFC 9568 Accept_Mode; absent: true (as the IPv4 reference). */
  acceptMode?: boolean;
  /** Seeded faults (lib/roles/seeded-faults.ts): the state machine's apply (vrrp-state.ts). */
  faults?: string[];
}

/** The IPv6 virtual router MAC 00:00:5e:00:02:VRID (RFC 9568 7.3). */
export function vrrp6Mac(vrid: number): string {
  return virtualMac(vrid, 6);
}

/** The macvlan that carries the virtual MAC and, while master, the virtual addresses. */
export function vrrp6Macvlan(vrid: number): string {
  return `vrrp6r-${vrid}`;
}

/**
 * The virtual addresses without prefix length, link-local ones first (RFC 9568 5.2.9: the
 * first address is the virtual router's link-local address). Throws if none is link-local
 * or one is not IPv6.
 */
export function orderVirtualAddresses6(addresses: readonly string[]): string[] {
  const bare = addresses.map((a) => a.split("/")[0] ?? a);
  const bad = bare.filter((a) => !a.includes(":"));
  if (bad.length > 0) throw new Error(`VRRP over IPv6: not IPv6 virtual address(es) ${bad.join(", ")}`);
  const ll = bare.filter(isLinkLocalV6);
  if (ll.length === 0)
    throw new Error(
      `VRRP over IPv6 needs a link-local virtual address (RFC 9568 5.2.9), got ${bare.join(", ")}`,
    );
  return [...ll, ...bare.filter((a) => !isLinkLocalV6(a))];
}

/**
 * A VRRPv3 advertisement over IPv6 as a whole Ethernet frame: from the virtual MAC to
 * 33:33:00:00:00:12, IPv6 from `src` (link-local) to ff02::12, hop limit 255, traffic
 * class 0xc0 (network control, as the IPv4 reference's TOS), checksum over the IPv6
 * pseudo-header (RFC 9568 5.2.8).
 */
export function vrrp6AdvertisementFrame(options: {
  vrid: number;
  priority: number;
  advertIntervalCs: number;
  src: string;
  addresses: readonly string[];
  srcMac?: string;
}): Uint8Array {
  const vrrp = encodeVrrp(
    {
      version: 3,
      type: 1,
      vrid: options.vrid,
      priority: options.priority,
      maxAdverIntCs: options.advertIntervalCs,
      addresses: [...options.addresses],
      family: 6,
      extension: new Uint8Array(0),
    },
    { src: options.src, dst: VRRP_MULTICAST_V6 },
  );
  const ip = encodeIpv6({
    src: options.src,
    dst: VRRP_MULTICAST_V6,
    nextHeader: IPV6_NEXT_HEADER.vrrp,
    hopLimit: 255,
    trafficClass: 0xc0,
    payload: vrrp,
  });
  return encodeEthernet({
    dst: ipv6MulticastMac(VRRP_MULTICAST_V6),
    src: options.srcMac ?? vrrp6Mac(options.vrid),
    etherType: ETHERTYPE.ipv6,
    payload: ip,
  });
}

/**
 * The advertisement with the IPv4 agent's seeded sender faults applied
 * (lib/roles/seeded-faults.ts): wrong priority (+1) or interval (x2), the physical MAC,
 * hop limit 254, version 2 (checksum adjusted, RFC 1624: only the version is wrong), a bad
 * checksum. Without faults: vrrp6AdvertisementFrame.
 */
export function vrrp6AdvertisementWithFaults(
  options: Parameters<typeof vrrp6AdvertisementFrame>[0] & { physicalMac: string },
  faults: ReadonlySet<string>,
): Uint8Array {
  const frame = vrrp6AdvertisementFrame({
    ...options,
    priority:
      faults.has("vrrp-adv-wrong-priority") && options.priority > 0
        ? Math.min(255, options.priority + 1)
        : options.priority,
    advertIntervalCs: faults.has("vrrp-adv-wrong-interval")
      ? options.advertIntervalCs * 2
      : options.advertIntervalCs,
    srcMac: faults.has("vrrp-adv-physical-mac") ? options.physicalMac : vrrp6Mac(options.vrid),
  });
  // Ethernet 14 + IPv6 40: the VRRP message starts at 54, its checksum at 60; hop limit at 21.
  if (faults.has("vrrp-adv-ttl-254")) frame[21] = 254;
  if (faults.has("vrrp-adv-version-2")) {
    const before = ((frame[54] ?? 0) << 8) | (frame[55] ?? 0);
    frame[54] = 0x21;
    const after = ((frame[54] ?? 0) << 8) | (frame[55] ?? 0);
    let sum = (~(((frame[60] ?? 0) << 8) | (frame[61] ?? 0)) & 0xffff) + (~before & 0xffff) + after;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
    const checksum = ~sum & 0xffff;
    frame[60] = checksum >> 8;
    frame[61] = checksum & 0xff;
  }
  if (faults.has("vrrp-adv-bad-checksum")) frame[61] = (frame[61] ?? 0) ^ 0x5a;
  return frame;
}

/**
 * The unsolicited Neighbor Advertisements of a new master (RFC 9568 6.4.1/6.4.2: one per
 * virtual address, Router and Override set, target link-layer = the virtual MAC), sent from
 * the link-local virtual address (an address of the master's, RFC 4861 7.2.6).
 */
export function vrrp6TakeoverNas(vrid: number, addresses: readonly string[]): Uint8Array[] {
  const ordered = orderVirtualAddresses6(addresses);
  const src = ordered[0] as string;
  return ordered.map((target) => unsolicitedNaFrame({ mac: vrrp6Mac(vrid), src, target, router: true }));
}

/** Mark bit the owned table sets on what a master forwards; the guard drops the rest from the macvlan. */
export const VRRP6_ADMITTED = 0x20000;

/**
 * The agent's own table (`flags owner`: it dies with the agent): chain `gate` (forward hook
 * -200) holds what arrives on the macvlan, vrrp6GateRules; with Accept_Mode False (not the
 * address owner) an input chain drops what is addressed to a virtual address, except
 * Neighbor Discovery (the master still answers NS for them, RFC 9568 6.4.3). Made once;
 * role changes rewrite the gate chain only (an owned table cannot be re-declared: the
 * kernel refuses a change of its owner flag, EOPNOTSUPP).
 */
export function vrrp6OwnerTable(options: {
  macvlan: string;
  role: "master" | "backup" | "initialize";
  addresses: readonly string[];
  acceptMode: boolean;
  owned?: boolean;
}): string {
  const vips = options.addresses.map((a) => a.split("/")[0]).join(", ");
  return [
    ...(options.owned === false ? [] : ["flags owner;"]),
    "counter forwarded { }",
    "counter backup_drops { }",
    "chain gate {",
    "  type filter hook forward priority -200; policy accept;",
    ...vrrp6GateRules(options.macvlan, options.role).map((r) => `  ${r}`),
    "}",
    // Local delivery from the macvlan (NS for the virtual addresses, traffic to them) is
    // admitted while the agent lives; the guard drops it once the agent (and this table) is gone.
    "chain admit_in {",
    "  type filter hook input priority -250; policy accept;",
    `  iifname "${options.macvlan}" meta mark set mark or 0x${VRRP6_ADMITTED.toString(16)}`,
    "}",
    ...(options.acceptMode
      ? []
      : [
          "counter accept_mode_drops { }",
          "chain accept_mode {",
          "  type filter hook input priority -200; policy accept;",
          `  ip6 daddr { ${vips} } icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept`,
          `  ip6 daddr { ${vips} } counter name "accept_mode_drops" drop`,
          "}",
        ]),
  ].join("\n");
}

/** The gate chain's rules: from the macvlan, a master marks admitted and forwards, anyone else drops. */
export function vrrp6GateRules(macvlan: string, role: "master" | "backup" | "initialize"): string[] {
  return [
    `iifname != "${macvlan}" accept`,
    role === "master"
      ? `counter name "forwarded" meta mark set mark or 0x${VRRP6_ADMITTED.toString(16)} accept`
      : 'counter name "backup_drops" drop',
  ];
}

/** The nft script that switches the gate of `table` to `role` (one transaction). */
export function vrrp6GateScript(
  table: string,
  macvlan: string,
  role: "master" | "backup" | "initialize",
): string {
  return [
    `flush chain ip6 ${table} gate`,
    ...vrrp6GateRules(macvlan, role).map((r) => `add rule ip6 ${table} gate ${r}`),
    "",
  ].join("\n");
}

/**
 * The guard (not owned: it outlives the agent): from the macvlan, only what the owner
 * table admitted is forwarded or delivered locally, so a killed master forwards nothing
 * for the virtual router and no longer answers Neighbor Solicitations for the virtual
 * addresses it still holds (nor accepts traffic to them).
 */
export function vrrp6GuardTable(macvlan: string): string {
  const unadmitted = `iifname "${macvlan}" meta mark and 0x${VRRP6_ADMITTED.toString(16)} == 0 counter drop`;
  return [
    "chain guard {",
    "  type filter hook forward priority -150; policy accept;",
    `  ${unadmitted}`,
    "}",
    "chain guard_in {",
    "  type filter hook input priority -150; policy accept;",
    `  ${unadmitted}`,
    "}",
  ].join("\n");
}
