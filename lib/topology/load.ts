import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { cidrContains, parseCidr } from "./address.ts";
import { ConfigError, type ConfigIssue, SourceDocument } from "./errors.ts";
import { type Topology, TopologySpec } from "./schema.ts";

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
  const plan = Object.values(t.addressPlan).map(parseCidr);
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
        const address = cidr.split("/")[0] as string;
        const owner = seenAddresses.get(address);
        if (owner) issues.push(source.issue([...at, "addresses", k], `address already used by ${owner}`));
        seenAddresses.set(address, `${hostName}.${ifName}`);
        if (plan.length > 0 && !plan.some((p) => cidrContains(p, address))) {
          issues.push(
            source.issue(
              [...at, "addresses", k],
              `address is outside the lab's address plan (${Object.values(t.addressPlan).join(", ")})`,
            ),
          );
        }
      });
    }
    host.routes.forEach((route, k) => {
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
