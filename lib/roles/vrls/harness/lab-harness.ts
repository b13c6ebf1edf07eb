/**
 * Starts a virtual router of a lab's `vrls:` section on its member hosts (one router
 * agent per reference member, keepalived for keepalived members) and the ICMP
 * information responder on end systems; used by the tests, the benches and the CLI.
 */
import type { Lab } from "../../../lab/index.ts";
import { stateDir } from "../../../lab/prefix.ts";
import { type AgentClient, launchAgent, WaitTimeoutError, waitUntil } from "../../../remote/index.ts";
import type { LoadedTopology } from "../../../topology/load.ts";
import { routerAgentArgs } from "../agent-args.ts";
import { loadVrlsConfig, type VirtualRouterConfig, type VirtualRouterSpecT } from "../config.ts";
import type { CoreSnapshot } from "../router-core.ts";
import type { Vrrp6AgentArgs } from "../vrrp6.ts";

export interface RunningVirtualRouter {
  config: VirtualRouterConfig;
  agents: Map<string, AgentClient>;
  /** Member host -> its role events ({role, at}) as notified. */
  roleEvents: { host: string; role: string; at: number }[];
  status(host: string): Promise<CoreSnapshot & Record<string, unknown>>;
  /** The host whose agent reports master (undefined when none or several). */
  master(): Promise<string | undefined>;
  /** Waits for a single master (`expected`, when given: e.g. after preemption settles). */
  waitForMaster(timeoutMs?: number, expected?: string): Promise<string>;
  /** Waits until the master has allocated `conditions` end systems and nothing is in flight. */
  waitAllocated(conditions: number, timeoutMs?: number): Promise<Record<string, string>>;
  /** Each agent's status (or error) and last log lines, for failure messages. */
  diagnostics(): Promise<string>;
  stop(): Promise<void>;
}

export function virtualRouterConfig(
  loaded: LoadedTopology,
  name?: string,
  overrides: Partial<VirtualRouterSpecT> = {},
): VirtualRouterConfig {
  const all = loadVrlsConfig(loaded);
  const vr = name ? all.find((v) => v.name === name) : all[0];
  if (!vr) throw new Error(`${loaded.file}: no virtual router ${name ?? ""} in its vrls: section`);
  const spec = { ...vr.spec, ...overrides };
  const members = overrides.members
    ? overrides.members.map((m) => {
        const known = vr.members.find((x) => x.host === m.host);
        if (!known) throw new Error(`${loaded.file}: ${m.host} is not a member of ${vr.name}`);
        return { ...known, priority: m.priority, implementation: m.implementation };
      })
    : vr.members;
  return { ...vr, spec, members };
}

/** Where a member's agent keeps its live sharing table (read by `tandem vrls show`). */
export function vrlsStatusFile(prefix: string, vrName: string, host: string): string {
  return `${stateDir(prefix)}/vrls-${vrName}-${host}.json`;
}

export async function startInfoResponders(
  lab: Lab,
  hosts: readonly string[],
  iface = "eth0",
): Promise<AgentClient[]> {
  return Promise.all(
    hosts.map((h) => launchAgent(lab.host(h).remote, "vrls-info-responder", { args: { interface: iface } })),
  );
}

export async function startVirtualRouter(
  lab: Lab,
  vr: VirtualRouterConfig,
  only?: readonly string[],
): Promise<RunningVirtualRouter> {
  const agents = new Map<string, AgentClient>();
  const roleEvents: { host: string; role: string; at: number }[] = [];
  const members = vr.members.filter(
    (m) => m.implementation === "reference" && (!only || only.includes(m.host)),
  );
  try {
    await Promise.all(
      members.map(async (m) => {
        const agent = await launchAgent(lab.host(m.host).remote, "vrls-router", {
          args: routerAgentArgs(
            vr,
            m.host,
            vrlsStatusFile(lab.prefix, vr.name, m.host),
            lab.controlPlaneCpus(),
          ),
        });
        agent.on("notification", (method: string, params: unknown) => {
          if (method === "role")
            roleEvents.push({ host: m.host, ...(params as { role: string; at: number }) });
        });
        agents.set(m.host, agent);
      }),
    );
  } catch (e) {
    await Promise.all([...agents.values()].map((a) => a.stop().catch(() => undefined)));
    throw e;
  }
  const running: RunningVirtualRouter = {
    config: vr,
    agents,
    roleEvents,
    status: async (host) => {
      const a = agents.get(host);
      if (!a) throw new Error(`no router agent on ${host}`);
      return a.call("status");
    },
    master: async () => {
      const roles = await Promise.all(
        [...agents].map(
          async ([h, a]) =>
            [h, (await a.call<{ role: string }>("status").catch(() => ({ role: "dead" }))).role] as const,
        ),
      );
      const masters = roles.filter(([, r]) => r === "master");
      return masters.length === 1 ? masters[0]?.[0] : undefined;
    },
    waitForMaster: (timeoutMs = 15_000, expected?: string) =>
      waitUntil(
        async () => {
          const m = await running.master();
          return m && (expected === undefined || m === expected) ? m : undefined;
        },
        {
          timeoutMs,
          what: expected ? `${expected} as the single master` : "a single master",
          everyMs: 50,
        },
      ),
    waitAllocated: async (conditions, timeoutMs = 20_000) => {
      let last: unknown;
      try {
        return await waitUntil(
          async () => {
            const m = await running.master();
            if (!m) return undefined;
            const s = await running.status(m);
            last = s.master;
            const alloc = s.master?.allocation ?? {};
            return Object.keys(alloc).length >= conditions && s.master?.inFlight === null ? alloc : undefined;
          },
          {
            timeoutMs,
            what: `the allocation of ${conditions} conditions`,
            everyMs: 50,
            last: () => `last master state ${JSON.stringify(last)}`,
          },
        );
      } catch (e) {
        if (!(e instanceof WaitTimeoutError)) throw e;
        throw new Error(`${e.message}\n${await running.diagnostics()}`);
      }
    },
    diagnostics: async () => {
      const parts: string[] = [];
      for (const [h, a] of agents) {
        const st = await a
          .call("status", undefined, { timeoutMs: 2000 })
          .catch((e: Error) => `status failed: ${e.message}`);
        parts.push(`== ${h}: ${JSON.stringify(st)}\n${a.logText().split("\n").slice(-40).join("\n")}`);
      }
      return parts.join("\n");
    },
    stop: async () => {
      await Promise.all([...agents.values()].map((a) => a.stop().catch(() => undefined)));
    },
  };
  return running;
}

/** A vrrp6-router agent (VRRPv3 over IPv6, lib/roles/vrls/vrrp6-router.agent.ts) on one host. */
export interface RunningVrrp6Router {
  host: string;
  args: Vrrp6AgentArgs;
  agent: AgentClient;
  /** Role events ({role, at}) as notified. */
  roleEvents: { role: string; at: number }[];
  role(): Promise<string>;
  stop(): Promise<void>;
}

export async function startVrrp6Router(
  lab: Lab,
  host: string,
  args: Vrrp6AgentArgs,
): Promise<RunningVrrp6Router> {
  const agent = await launchAgent(lab.host(host).remote, "vrrp6-router", { args });
  const roleEvents: { role: string; at: number }[] = [];
  agent.on("notification", (method: string, params: unknown) => {
    if (method === "role") roleEvents.push(params as { role: string; at: number });
  });
  return {
    host,
    args,
    agent,
    roleEvents,
    role: async () => (await agent.call<{ role: string }>("status").catch(() => ({ role: "dead" }))).role,
    stop: async () => {
      await agent.stop().catch(() => undefined);
    },
  };
}
