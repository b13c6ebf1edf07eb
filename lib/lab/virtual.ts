import { mkdir } from "node:fs/promises";
import type { Topology } from "../topology/schema.ts";
import { ipBatch, run, runInNamespace } from "./command.ts";
import { HUB_RX_CPU_MASK } from "./cpus.ts";
import { mapLimit } from "./limit.ts";
import { planLab } from "./netns-plan.ts";
import { namespaceName, stateDir } from "./prefix.ts";

export type Progress = (step: string, done: number, total: number) => void;

/** How many bring-up commands run at once: enough to overlap fork/exec waits on 2 cores. */
const CONCURRENCY = 16;

/**
 * Builds the network of a topology as namespaces, bridges and veths (no sshd yet).
 * Order matters: namespaces, then the switch (which creates the segment veths straight
 * into the hosts), then point-to-point links, then per-host addresses/routes/sysctls.
 */
export async function buildNetwork(
  topology: Topology,
  prefix: string,
  progress: Progress = () => {},
): Promise<void> {
  const plan = planLab(topology, prefix);
  await mkdir(stateDir(prefix), { recursive: true, mode: 0o700 });

  progress("namespaces", 0, plan.namespaces.length);
  await run(["ip", "-batch", "-"], {
    input: `${plan.namespaces.map((ns) => `netns add ${ns}`).join("\n")}\n`,
  });
  progress("namespaces", plan.namespaces.length, plan.namespaces.length);

  if (plan.switchNamespace) {
    progress("segments", 0, 1);
    await ipBatch(plan.switchNamespace, ["link set lo up", ...plan.switchCommands]);
    // The switch namespace has no IP role: no IPv6 autoconfiguration on its ports.
    await runInNamespace(plan.switchNamespace, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    // Hub ports receive on one CPU (HUB_RX_CPU): a hub delivers frames to every member in one order (see LabPlan.hubPorts).
    if (plan.hubPorts.length > 0)
      await runInNamespace(plan.switchNamespace, [
        "sh",
        "-c",
        `for p in "$@"; do echo ${HUB_RX_CPU_MASK} > "/sys/class/net/$p/queues/rx-0/rps_cpus"; done`,
        "hub-rps",
        ...plan.hubPorts,
      ]);
    progress("segments", 1, 1);
  }

  const hosts = Object.keys(topology.hosts);
  const withLinks = hosts.filter((h) => (plan.linkCommands.get(h) ?? []).length > 0);
  await mapLimit(withLinks, CONCURRENCY, (h) =>
    ipBatch(namespaceName(prefix, h), plan.linkCommands.get(h) ?? []),
  );

  let configured = 0;
  await mapLimit(hosts, CONCURRENCY, async (h) => {
    const ns = namespaceName(prefix, h);
    // Sysctls first: disabling IPv6 before links come up avoids DAD and router solicitations.
    await runInNamespace(ns, ["sysctl", "-qw", ...(plan.sysctls.get(h) ?? [])]);
    await ipBatch(ns, plan.hostCommands.get(h) ?? []);
    progress("hosts", ++configured, hosts.length);
  });
}
