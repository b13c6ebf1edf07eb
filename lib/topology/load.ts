import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import {
  canonicalIpv6,
  cidr6Contains,
  cidrContains,
  familyOf,
  isLinkLocalIpv6,
  parseCidr,
  parseCidr6,
} from "./address.ts";
import { ConfigError, type ConfigIssue, SourceDocument } from "./errors.ts";
import { type HostSpecT, type Topology, TopologySpec } from "./schema.ts";

/** True when the host's namespace gets IPv6: `ipv6: true`, or unset and an IPv6 address or route given. */
export function hostUsesIpv6(host: HostSpecT): boolean {
  if (host.ipv6 !== undefined) return host.ipv6;
  return (
    Object.values(host.interfaces).some((i) => i.addresses.some((a) => familyOf(a) === 6)) ||
    host.routes.some((r) => r.to === "default6" || familyOf(r.to) === 6)
  );
}

export interface LoadedTopology {
  file: string;
  source: SourceDocument;
  topology: Topology;
}

/** Reads, parses and validates a topology file; every problem names file, path, line and value. */
export function loadTopology(file: string): LoadedTopology {
  const source = SourceDocument.read(file);
  return { file, source, topology: validateTopology(source) };
}

export function parseTopologyText(text: string, file = "<inline>"): LoadedTopology {
  const source = new SourceDocument(file, text);
  return { file, source, topology: validateTopology(source) };
}

function validateTopology(source: SourceDocument): Topology {
  const topology = source.parse(TopologySpec, source.toJS());
  const issues = crossCheck(topology, source);
  if (issues.length > 0) throw new ConfigError(source.file, issues);
  if (topology.inventory) {
    const base = dirname(resolve(source.file));
    for (const entry of Object.values(topology.inventory)) {
      if (!isAbsolute(entry.key) && !entry.key.startsWith("~")) entry.key = resolve(base, entry.key);
    }
  }
  return topology;
}

/** Checks that need the whole document: references, duplicates, the address plan. */
function crossCheck(t: Topology, source: SourceDocument): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const planText = Object.values(t.addressPlan);
  const plan4 = planText.filter((c) => familyOf(c) === 4).map(parseCidr);
  const plan6 = planText.filter((c) => familyOf(c) === 6).map(parseCidr6);
  const seenAddresses = new Map<string, string>();
  const linkEnds = new Set<string>();

  t.links.forEach((link, i) => {
    for (const side of ["a", "b"] as const) {
      const [host, ifname] = link[side].split(".") as [string, string];
      const hostSpec = t.hosts[host];
      if (!hostSpec) issues.push(source.issue(["links", i, side], `no host named "${host}"`));
      else if (!hostSpec.interfaces[ifname])
        issues.push(source.issue(["links", i, side], `host "${host}" has no interface "${ifname}"`));
      else if (hostSpec.interfaces[ifname]?.segment)
        issues.push(
          source.issue(
            ["links", i, side],
            `interface is already on segment "${hostSpec.interfaces[ifname]?.segment}"`,
          ),
        );
      if (linkEnds.has(link[side]))
        issues.push(source.issue(["links", i, side], "interface used by two links"));
      linkEnds.add(link[side]);
    }
  });

  for (const [hostName, host] of Object.entries(t.hosts)) {
    for (const [ifName, iface] of Object.entries(host.interfaces)) {
      const at = ["hosts", hostName, "interfaces", ifName];
      if (iface.segment && !t.segments[iface.segment]) {
        issues.push(
          source.issue(
            [...at, "segment"],
            `no segment named "${iface.segment}" (known: ${Object.keys(t.segments).join(", ") || "none"})`,
          ),
        );
      }
      if (!iface.segment && !linkEnds.has(`${hostName}.${ifName}`)) {
        issues.push(source.issue(at, "interface is on no segment and in no link"));
      }
      iface.addresses.forEach((cidr, k) => {
        const family = familyOf(cidr);
        const text = cidr.split("/")[0] as string;
        // Link-local addresses are unique per link only; 2001:db8:: ones lab-wide, like IPv4.
        const address = family === 6 ? canonicalIpv6(text) : text;
        const key =
          family === 6 && isLinkLocalIpv6(address) ? `${address}%${iface.segment ?? ifName}` : address;
        const owner = seenAddresses.get(key);
        if (owner) issues.push(source.issue([...at, "addresses", k], `address already used by ${owner}`));
        seenAddresses.set(key, `${hostName}.${ifName}`);
        if (family === 6 && host.ipv6 === false)
          issues.push(source.issue([...at, "addresses", k], "IPv6 address on a host with `ipv6: false`"));
        const outside =
          family === 4
            ? plan4.length > 0 && !plan4.some((p) => cidrContains(p, address))
            : plan6.length > 0 && !isLinkLocalIpv6(address) && !plan6.some((p) => cidr6Contains(p, address));
        if (outside) {
          issues.push(
            source.issue(
              [...at, "addresses", k],
              `address is outside the lab's address plan (${planText.filter((c) => familyOf(c) === family).join(", ")})`,
            ),
          );
        }
      });
    }
    host.routes.forEach((route, k) => {
      const toFamily = route.to === "default" ? 4 : route.to === "default6" ? 6 : familyOf(route.to);
      if (route.via && familyOf(route.via) !== toFamily)
        issues.push(
          source.issue(
            ["hosts", hostName, "routes", k, "via"],
            `gateway is IPv${familyOf(route.via)} but the route's destination is IPv${toFamily}`,
          ),
        );
      if (toFamily === 6 && host.ipv6 === false)
        issues.push(
          source.issue(["hosts", hostName, "routes", k, "to"], "IPv6 route on a host with `ipv6: false`"),
        );
      if (route.dev && !host.interfaces[route.dev])
        issues.push(
          source.issue(["hosts", hostName, "routes", k, "dev"], `host has no interface "${route.dev}"`),
        );
    });
  }
  if (t.inventory) {
    const base = dirname(resolve(source.file));
    const endpoints = new Map<string, string>();
    for (const [name, entry] of Object.entries(t.inventory)) {
      if (!t.hosts[name])
        issues.push(source.issue(["inventory", name], `inventory names a host that is not in hosts`));
      const endpoint = `${entry.address}:${entry.port}`;
      const other = endpoints.get(endpoint);
      if (other)
        issues.push(source.issue(["inventory", name, "address"], `${endpoint} is also host ${other}`));
      endpoints.set(endpoint, name);
      const key = entry.key.startsWith("~/")
        ? join(process.env.HOME ?? "/root", entry.key.slice(2))
        : resolve(base, entry.key);
      if (!existsSync(key))
        issues.push(source.issue(["inventory", name, "key"], `private key file ${key} not found`));
    }
  }
  return issues;
}
