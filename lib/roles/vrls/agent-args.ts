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
   * "off" (default, VRLS_REALTIME unset or 0); "handoff" while a hand-off is in flight on it
   * (VRLS_REALTIME=handoff); "always" (VRLS_REALTIME=1). Always real-time cuts forwarding capacity on a
   * 2-core lab host: the agents preempt the kernel's deferred packet processing (ksoftirqd)
   * (test/vrls-sharing.test.ts: two members 1.41x one instead of >= 1.8x).
   */
  realtime?: "handoff" | "always" | "off";
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

export function routerAgentArgs(vr: VirtualRouterConfig, host: string, statusFile?: string): RouterAgentArgs {
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
    realtime: realtimeFromEnv(process.env.VRLS_REALTIME),
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
 * VRLS_REALTIME: unset or "0" "off", "handoff" real-time during hand-offs, "1" "always";
 * anything else is an error naming the value. Off by default: with real-time agents the
 * exactly-once race came back (bench handoff: 4 of 720,000 lost; a CI run lost one TCP
 * segment), docs/decisions.md.
 */
export function realtimeFromEnv(value: string | undefined): "handoff" | "always" | "off" {
  if (value === undefined || value === "" || value === "0") return "off";
  if (value === "handoff") return "handoff";
  if (value === "1") return "always";
  throw new Error(
    `VRLS_REALTIME must be 1 (always real-time), handoff (during hand-offs), 0 or unset (never), got "${value}"`,
  );
}
