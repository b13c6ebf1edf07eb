/** What the controller passes to a VRLS router agent (resolved from the lab's `vrls:` section). */
import type { VirtualRouterConfig } from "./config.ts";
import { coreOptionsFor } from "./config.ts";
import type { SubnetSpec } from "./discovery.ts";
import type { HandoffMode } from "./messages.ts";
import { type MonitorOptions, reviewOptionsOf } from "./review-config.ts";
import type { ReviewOptions } from "./reviewer.ts";
import type { ConditionScheme, RouterCoreOptions } from "./router-core.ts";

export interface RouterAgentArgs {
  name: string;
  interface: string;
  virtualAddress: string;
  key: string;
  bucketSeed: number;
  core: RouterCoreOptions;
  /** Log every data plane change, stop and release (diagnostics). */
  trace?: boolean;
  /**
   * When the agent's event loop thread runs under SCHED_FIFO (lib/roles/vrls/realtime-boost.ts):
   * "handoff" while a hand-off is in flight on it; "always"; "off". VRLS_REALTIME (0, handoff,
   * 1) chooses; unset: "always" where the agent has `cpus` (the virtual lab keeps it off the
   * hub's CPU), "off" elsewhere. Real-time on the CPU that processes the packets starves that
   * processing: always real-time on a 2-core host gave two members 1.41x one member's goodput
   * instead of >= 1.8x (test/vrls-sharing.test.ts), and "handoff" lost 87 datagrams at once
   * outside any hand-off, both before the agents were kept off the hub's CPU.
   */
  realtime?: "handoff" | "always" | "off";
  /** The CPUs the event loop thread runs on (Lab.controlPlaneCpus); absent: wherever the kernel puts it. */
  cpus?: number[];
  /** Where the agent keeps its live sharing table (JSON, rewritten twice a second) for `tandem vrls show`. */
  statusFile?: string;
  /** Allocation review and the flow monitor (issue 6); absent: no reviews. */
  review?: ReviewOptions;
  monitor?: MonitorOptions;
  /** false: kernel rules outlive the agent (negative control `fault=zombie-dataplane`). */
  fateSharing?: boolean;
  /** RFC 9568 Accept_Mode (VirtualRouterConfig.acceptMode); absent: true. */
  acceptMode?: boolean;
}

export function routerAgentArgs(
  vr: VirtualRouterConfig,
  host: string,
  statusFile?: string,
  cpus?: number[],
): RouterAgentArgs {
  const core = coreOptionsFor(vr, host);
  return {
    name: vr.name,
    interface: vr.spec.interface,
    virtualAddress: vr.virtualAddress,
    key: vr.spec.key,
    bucketSeed: vr.spec.conditions.kind === "bucket" ? vr.spec.conditions.seed : 0,
    core,
    ...(vr.fateSharing === false ? { fateSharing: false } : {}),
    ...(vr.acceptMode === false ? { acceptMode: false } : {}),
    trace: process.env.VRLS_TRACE === "1",
    realtime: realtimeFromEnv(process.env.VRLS_REALTIME, cpus !== undefined),
    ...(cpus ? { cpus } : {}),
    ...(statusFile ? { statusFile } : {}),
    ...(vr.spec.review ? reviewOptionsOf(vr.spec.review) : {}),
  };
}

/** The substitution server agent's arguments (vrls-coordinator.agent.ts; resolved by harness/coordinator.ts). */
export interface CoordinatorAgentArgs {
  vrid: number;
  interface: string;
  self: string;
  key: string;
  virtualAddress: string;
  advertIntervalCs: number;
  routers: { id: string; priority: number }[];
  mode: HandoffMode;
  retryMs: number;
  maxRetries: number;
  responseTimeoutMs: number;
  discoveryMs: number;
  infoRequestIntervalMs: number;
  keepaliveMs: number;
  subnets: SubnetSpec[];
  conditions: ConditionScheme;
  /** Prefix or bucket conditions (fixed); address conditions are discovered (P21-P22). */
  fixedConditions: string[];
  bucketSeed: number;
  review?: ReviewOptions;
}

/**
 * VRLS_REALTIME: "0" "off", "handoff" real-time during hand-offs, "1" "always"; anything else
 * is an error naming the value. Unset: "always" for an agent kept off the hub's CPU
 * (`offTheHubCpu`, the virtual lab), else "off" (docs/decisions.md). Real-time once made the
 * exactly-once race show (4 of 720,000 lost); the type 4 extension closed that race.
 */
export function realtimeFromEnv(
  value: string | undefined,
  offTheHubCpu = false,
): "handoff" | "always" | "off" {
  if (value === undefined || value === "") return offTheHubCpu ? "always" : "off";
  if (value === "0") return "off";
  if (value === "handoff") return "handoff";
  if (value === "1") return "always";
  throw new Error(
    `VRLS_REALTIME must be 1 (always real-time), handoff (during hand-offs), 0 (never), or unset (always where the agent is kept off the hub's CPU, else never), got "${value}"`,
  );
}
