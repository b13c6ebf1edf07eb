/**
 * The substitution server's side on the controller (seed Fig. 14; the agent is
 * vrls-coordinator.agent.ts): its arguments, resolved from the lab's `vrls:` section
 * (`coordinator: {host}`), and starting it on its host.
 */
import type { Lab } from "../../../lab/index.ts";
import { type AgentClient, launchAgent } from "../../../remote/index.ts";
import type { CoordinatorAgentArgs } from "../agent-args.ts";
import { bucketConditions, conditionKey } from "../conditions.ts";
import type { VirtualRouterConfig } from "../config.ts";
import { reviewOptionsOf } from "../review-config.ts";

export function coordinatorAgentArgs(vr: VirtualRouterConfig): CoordinatorAgentArgs {
  const s = vr.spec;
  if (!vr.coordinatorAddress || !s.coordinator)
    throw new Error(`virtual router ${vr.name} has no coordinator (substitution server) configured`);
  const c = s.conditions;
  const fixed =
    c.kind === "bucket"
      ? bucketConditions(c.over, c.count, c.seed).map(conditionKey)
      : c.kind === "prefix"
        ? c.prefixes.map((p) => {
            const [network, len] = p.split("/");
            return conditionKey({ kind: "prefix", network: network ?? "0.0.0.0", length: Number(len) });
          })
        : [];
  return {
    vrid: s.vrid,
    interface: s.interface,
    self: vr.coordinatorAddress,
    key: s.key,
    virtualAddress: vr.virtualAddress,
    advertIntervalCs: s.advertIntervalMs / 10,
    routers: vr.members
      .filter((m) => m.implementation === "reference")
      .map((m) => ({ id: m.address, priority: m.priority })),
    mode: s.mode,
    retryMs: s.retryMs,
    maxRetries: s.maxRetries,
    responseTimeoutMs: s.responseTimeoutMs ?? 4 * s.advertIntervalMs + 50,
    discoveryMs: s.discoveryMs,
    infoRequestIntervalMs: s.infoRequestIntervalMs > 0 ? s.infoRequestIntervalMs : 10_000,
    keepaliveMs: s.coordinator.keepaliveMs,
    subnets: s.subnets.map((x) => ({ cidr: x.cidr, via: x.via ?? null })),
    conditions: c,
    fixedConditions: fixed,
    bucketSeed: c.kind === "bucket" ? c.seed : 0,
    ...(s.review ? { review: reviewOptionsOf(s.review).review } : {}),
  };
}

export async function startCoordinator(lab: Lab, vr: VirtualRouterConfig): Promise<AgentClient> {
  const host = vr.spec.coordinator?.host;
  if (!host) throw new Error(`virtual router ${vr.name} has no coordinator configured`);
  return launchAgent(lab.host(host).remote, "vrls-coordinator", { args: coordinatorAgentArgs(vr) });
}
