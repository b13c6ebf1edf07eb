import { availableParallelism } from "node:os";

/**
 * The CPU a virtual lab steers every hub port's received frames to (RPS, `rps_cpus`): a hub
 * delivers frames to every member in one order only if one CPU processes them all
 * (LabPlan.hubPorts). That CPU also does the members' forwarding in its softirq.
 */
export const HUB_RX_CPU = 0;

/** HUB_RX_CPU as the hex mask `rps_cpus` takes. */
export const HUB_RX_CPU_MASK = (1 << HUB_RX_CPU).toString(16);

/**
 * The CPUs a role agent's event loop runs on in a virtual lab: every CPU but the hub's, so a
 * real-time control plane never takes the CPU the packets are processed on (issue 11;
 * docs/vrls.md). Undefined on a one-CPU machine (nothing to keep apart). CPUs are numbered
 * 0..count-1: a controller confined to other CPU numbers (taskset) is not handled.
 */
export function controlPlaneCpus(cpuCount = availableParallelism()): number[] | undefined {
  const cpus = Array.from({ length: cpuCount }, (_, i) => i).filter((c) => c !== HUB_RX_CPU);
  return cpus.length > 0 ? cpus : undefined;
}
