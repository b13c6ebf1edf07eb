import { familyOf } from "../topology/address.ts";
import { hostUsesIpv6 } from "../topology/load.ts";
import type { Topology } from "../topology/schema.ts";
import { namespaceName } from "./prefix.ts";

/**
 * Turns a topology into the `ip` commands that build it. Pure: the virtual backend
 * feeds these to `ip -batch` (one process per namespace instead of one per command).
 *
 * Segments are bridges inside the lab's switch namespace `<prefix>-sw`; each host
 * interface on a segment is a veth whose host end is created directly in the host's
 * namespace, so nothing of the lab ever exists in the machine's own namespace.
 */
export interface LabPlan {
  /** All namespaces to create, the switch namespace first when present. */
  namespaces: string[];
  switchNamespace: string | undefined;
  /** Commands for `ip -n <switch> -batch -`: bridges, veth pairs, ports. */
  switchCommands: string[];
  /**
   * Switch-side ports of hub segments. Their receive path is steered to one CPU (RPS), so
   * every frame a host sends is flooded to the hub's ports in the order it was sent: a
   * shared wire shows all members the same sequence. Without it, a sender that moves
   * between the two cores can have two consecutive frames flooded concurrently, and two
   * members may see them in opposite orders (seen as rare losses in exactly-once hand-offs,
   * whose markers name "the last packet forwarded").
   */
  hubPorts: string[];
  /** Commands for `ip -n <host ns> -batch -`, per host: p2p links, addresses, MACs, routes. */
  linkCommands: Map<string, string[]>;
  hostCommands: Map<string, string[]>;
  /** `sysctl -w` arguments per host namespace. */
  sysctls: Map<string, string[]>;
}

export function switchNamespaceName(prefix: string): string {
  return namespaceName(prefix, "sw");
}

export function bridgeName(segment: string): string {
  return `br-${segment}`.slice(0, 15);
}

export function planLab(topology: Topology, prefix: string): LabPlan {
  const hostNames = Object.keys(topology.hosts);
  const segmentNames = Object.keys(topology.segments);
  const switchNamespace = segmentNames.length > 0 ? switchNamespaceName(prefix) : undefined;
  const namespaces = [
    ...(switchNamespace ? [switchNamespace] : []),
    ...hostNames.map((h) => namespaceName(prefix, h)),
  ];

  const switchCommands: string[] = [];
  for (const [name, seg] of Object.entries(topology.segments)) {
    const br = bridgeName(name);
    // A hub never learns (ageing_time 0) and floods multicast (no snooping): every port sees every frame.
    const opts = seg.hub ? "ageing_time 0 mcast_snooping 0" : "mcast_snooping 0";
    switchCommands.push(
      `link add ${br} type bridge stp_state 0 forward_delay 0 ${opts}`,
      `link set ${br} up`,
    );
  }

  const linkCommands = new Map<string, string[]>();
  const hostCommands = new Map<string, string[]>();
  const sysctls = new Map<string, string[]>();
  let port = 0;
  const hubPorts: string[] = [];
  for (const [hostName, host] of Object.entries(topology.hosts)) {
    const ns = namespaceName(prefix, hostName);
    const cmds: string[] = ["link set lo up"];
    for (const [ifName, iface] of Object.entries(host.interfaces)) {
      if (iface.segment && switchNamespace) {
        const p = `p${port++}`;
        switchCommands.push(
          `link add ${p} type veth peer name ${ifName} netns ${ns}`,
          `link set ${p} master ${bridgeName(iface.segment)}`,
          `link set ${p} up`,
        );
        if (topology.segments[iface.segment]?.hub) hubPorts.push(p);
      }
      if (iface.mac) cmds.push(`link set ${ifName} address ${iface.mac}`);
      if (iface.mtu) cmds.push(`link set ${ifName} mtu ${iface.mtu}`);
      cmds.push(`link set ${ifName} up`);
      // nodad: a lab address is usable at once (no tentative second); uniqueness is checked at load.
      for (const addr of iface.addresses)
        cmds.push(`address add ${addr} dev ${ifName}${familyOf(addr) === 6 ? " nodad" : ""}`);
    }
    for (const route of host.routes) {
      const to = route.to === "default6" ? "::/0" : route.to;
      cmds.push(
        `route add ${to}${route.via ? ` via ${route.via}` : ""}${route.dev ? ` dev ${route.dev}` : ""}`,
      );
    }
    hostCommands.set(hostName, cmds);
    linkCommands.set(hostName, []);
    // IPv6 off unless the host asks for it: the seeds are IPv4, and router solicitations /
    // MLD would pollute captures. On, it is quiet and deterministic: no DAD (addresses are
    // usable at once and checked unique at load), no router solicitations, no RA/autoconf.
    const ipv6 = hostUsesIpv6(host);
    const values: Record<string, string | number> = ipv6
      ? {
          "net.ipv6.conf.all.disable_ipv6": 0,
          "net.ipv6.conf.default.disable_ipv6": 0,
          ...Object.fromEntries(
            ["all", "default", ...Object.keys(host.interfaces)].flatMap((i) => [
              [`net.ipv6.conf.${i}.accept_dad`, 0],
              [`net.ipv6.conf.${i}.router_solicitations`, 0],
              [`net.ipv6.conf.${i}.accept_ra`, 0],
              [`net.ipv6.conf.${i}.autoconf`, 0],
            ]),
          ),
          "net.ipv6.conf.all.forwarding": host.forwarding ? 1 : 0,
        }
      : { "net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1 };
    Object.assign(values, { "net.ipv4.ip_forward": host.forwarding ? 1 : 0 }, host.sysctls);
    sysctls.set(
      hostName,
      Object.entries(values).map(([k, v]) => `${k}=${v}`),
    );
  }
  for (const link of topology.links) {
    const [aHost, aIf] = link.a.split(".") as [string, string];
    const [bHost, bIf] = link.b.split(".") as [string, string];
    linkCommands
      .get(aHost)
      ?.push(`link add ${aIf} type veth peer name ${bIf} netns ${namespaceName(prefix, bHost)}`);
  }
  return { namespaces, switchNamespace, switchCommands, hubPorts, linkCommands, hostCommands, sysctls };
}
