import type { LoadPlace } from "../../lib/experiments/sharing-run.ts";
import type { Lab } from "../../lib/lab/index.ts";
import { intToIp, parseCidr } from "../../lib/topology/address.ts";
import type { LoadedTopology } from "../../lib/topology/load.ts";
import type { HostSpecT } from "../../lib/topology/schema.ts";
import type { VrlsControl, VrlsDescription } from "../../vendor-adapters/types.ts";

/**
 * The vrls suite's view of its lab, read from the lab file (lib/topology) and the device's
 * own description of its virtual router (members, priorities, key): the members (the
 * hosts marked `device: true` that the virtual router names), the end systems on the
 * members' LAN segment and behind other routers, the far-side server (the `traffic` host
 * on the segment the members forward to), addresses and the members' far-side MACs (by
 * which forwarded frames are attributed). No host name or address is written in a case.
 */
export interface Point {
  host: string;
  iface: string;
  address: string;
}

export interface Member extends Point {
  priority: number;
  /** The member's interface and MAC on the far segment (the source MAC of what it forwards). */
  farIface: string;
  farMac: string;
}

function firstAddress(loaded: LoadedTopology, host: string, iface: string): string {
  const a = loaded.topology.hosts[host]?.interfaces[iface]?.addresses[0];
  if (!a) throw new Error(`${loaded.file}: hosts.${host}.interfaces.${iface} has no address`);
  return a.split("/")[0]!;
}

function onSegment(spec: HostSpecT, segment: string): string | undefined {
  return Object.entries(spec.interfaces).find(([, i]) => i.segment === segment)?.[0];
}

export class VrlsLab {
  readonly description: VrlsDescription;
  /** By priority, highest first: members[0] is the master the election must give. */
  readonly members: Member[];
  readonly lanSegment: string;
  readonly farSegment: string;
  /** End systems on the members' LAN segment (they answer ICMP information requests). */
  readonly lanEndSystems: Point[];
  /** End systems behind other routers (learned from their traffic only). */
  readonly remoteEndSystems: Point[];
  readonly server: Point;
  /** Extra addresses of the server's subnet for the review scenario's skewed flows. */
  readonly extraServerAddresses: string[];

  constructor(
    readonly lab: Lab,
    readonly loaded: LoadedTopology,
    readonly vrls: VrlsControl,
  ) {
    const file = loaded.file;
    const hosts = loaded.topology.hosts;
    this.description = vrls.describe();
    const d = this.description;
    const first = d.members[0];
    if (!first) throw new Error(`${file}: the virtual router ${d.name} has no members`);
    const lan = hosts[first.host]?.interfaces[d.interface]?.segment;
    if (!lan) throw new Error(`${file}: hosts.${first.host}.interfaces.${d.interface} has no segment`);
    this.lanSegment = lan;
    const servers = Object.entries(hosts).filter(
      ([, h]) =>
        h.role === "traffic" && Object.values(h.interfaces).some((i) => i.segment && i.segment !== lan),
    );
    const [serverHost, serverSpec] = servers[0] ?? [];
    if (!serverHost || !serverSpec)
      throw new Error(`${file}: no far-side server (a host with role: traffic off the LAN segment ${lan})`);
    const serverIface = Object.entries(serverSpec.interfaces).find(([, i]) => i.segment)![0];
    this.farSegment = serverSpec.interfaces[serverIface]!.segment!;
    this.server = {
      host: serverHost,
      iface: serverIface,
      address: firstAddress(loaded, serverHost, serverIface),
    };
    this.members = [...d.members]
      .sort((a, b) => b.priority - a.priority)
      .map((m) => {
        const spec = hosts[m.host];
        if (!spec?.device)
          throw new Error(`${file}: hosts.${m.host} is a member of ${d.name} but not marked device: true`);
        const farIface = onSegment(spec, this.farSegment);
        const farMac = farIface ? spec.interfaces[farIface]?.mac : undefined;
        if (!farIface || !farMac)
          throw new Error(
            `${file}: hosts.${m.host} needs an interface with a fixed mac on the far segment ${this.farSegment} (forwarded frames are attributed by it)`,
          );
        return {
          host: m.host,
          iface: d.interface,
          address: m.address,
          priority: m.priority,
          farIface,
          farMac,
        };
      });
    const endSystems = Object.entries(hosts)
      .filter(([, h]) => h.role === "end-system")
      .map(([host, h]) => {
        const iface = Object.keys(h.interfaces)[0];
        if (!iface) throw new Error(`${file}: hosts.${host} has no interface`);
        return { point: { host, iface, address: firstAddress(loaded, host, iface) }, lan: onSegment(h, lan) };
      });
    this.lanEndSystems = endSystems.filter((e) => e.lan).map((e) => e.point);
    this.remoteEndSystems = endSystems.filter((e) => !e.lan).map((e) => e.point);
    if (this.lanEndSystems.length === 0) throw new Error(`${file}: no end system on the LAN segment ${lan}`);
    const net = parseCidr(serverSpec.interfaces[serverIface]!.addresses[0]!);
    const size = 2 ** (32 - net.prefix);
    if (size < 256)
      throw new Error(`${file}: the far-side subnet must be a /24 or larger (extra server addresses)`);
    this.extraServerAddresses = Array.from({ length: 80 }, (_, i) => intToIp(net.network + 100 + i));
  }

  get endSystems(): Point[] {
    return [...this.lanEndSystems, ...this.remoteEndSystems];
  }
  get master(): Member {
    return this.members[0]!;
  }
  get backups(): Member[] {
    return this.members.slice(1);
  }
  member(host: string): Member {
    const m = this.members.find((x) => x.host === host);
    if (!m) throw new Error(`${host} is not a member`);
    return m;
  }
  /** A member's host from its address (the address itself when not a member). */
  hostOf(address: string): string {
    return this.members.find((m) => m.address === address)?.host ?? address;
  }
  /** A host's first address on `iface`, from the lab file. */
  pointOf(host: string, iface: string): Point {
    return { host, iface, address: firstAddress(this.loaded, host, iface) };
  }
  address(host: string): string {
    const p = this.endSystems.find((e) => e.host === host);
    if (!p) throw new Error(`${host} is not an end system`);
    return p.address;
  }
  /** Chart names of the forwarding MACs. */
  get names(): Record<string, string> {
    return Object.fromEntries(this.members.map((m) => [m.farMac, `member ${m.host}`]));
  }
  /** Where the hub is watched: the last LAN end system's port. */
  get hubWatch(): Point {
    return this.lanEndSystems.at(-1)!;
  }
  get loadPlace(): LoadPlace {
    return {
      lanEndSystems: this.lanEndSystems,
      server: this.server,
      extraServerAddresses: this.extraServerAddresses,
    };
  }
}
