import { ConfigError } from "../../topology/errors.ts";
import type { LoadedTopology } from "../../topology/load.ts";
import { type NatlbConfig, NatlbSection } from "./config.ts";

/**
 * The `natlb:` section of a loaded topology, validated with file/path/line errors, and
 * checked against the topology: named hosts exist, balancer interfaces exist.
 */
export function loadNatlbSection(loaded: LoadedTopology): NatlbConfig {
  const { source, topology } = loaded;
  if (topology.natlb === undefined) {
    throw new ConfigError(source.file, [source.issue(["natlb"], "the lab has no natlb: section")]);
  }
  const config = source.parse(NatlbSection, topology.natlb, ["natlb"]);
  const issues = [];
  for (const [name, b] of Object.entries(config.balancers)) {
    const host = topology.hosts[name];
    if (!host) issues.push(source.issue(["natlb", "balancers", name], `no host named "${name}"`));
    else
      for (const f of ["external", "internal"] as const) {
        if (!host.interfaces[b[f]])
          issues.push(
            source.issue(["natlb", "balancers", name, f], `host "${name}" has no interface "${b[f]}"`),
          );
      }
  }
  config.vips.forEach((v, i) => {
    v.servers.forEach((s, k) => {
      if (!topology.hosts[s.host])
        issues.push(source.issue(["natlb", "vips", i, "servers", k, "host"], `no host named "${s.host}"`));
    });
  });
  if (!topology.hosts[config.controller.host]) {
    issues.push(source.issue(["natlb", "controller", "host"], `no host named "${config.controller.host}"`));
  }
  if (issues.length > 0) throw new ConfigError(source.file, issues);
  return config;
}
