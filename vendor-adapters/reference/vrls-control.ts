import type { Lab } from "../../lib/lab/index.ts";
import type { AgentClient } from "../../lib/remote/index.ts";
import { faultsFor, type SeededFaultName } from "../../lib/roles/seeded-faults.ts";
import { coreOptionsFor, type VirtualRouterConfig } from "../../lib/roles/vrls/config.ts";
import { startCoordinator } from "../../lib/roles/vrls/harness/coordinator.ts";
import {
  type RunningVirtualRouter,
  startInfoResponders,
  startVirtualRouter,
  virtualRouterConfig,
} from "../../lib/roles/vrls/harness/lab-harness.ts";
import { ReviewSpec } from "../../lib/roles/vrls/review-config.ts";
import type { LoadedTopology } from "../../lib/topology/load.ts";
import type {
  VrlsControl,
  VrlsDescription,
  VrlsEndSystem,
  VrlsMemberState,
  VrlsSettings,
  VrlsSubstitutionControl,
} from "../types.ts";

/** The router agents' seeded faults, for their configuration. */
export function routerFaults(faults: readonly SeededFaultName[]): { faults?: string[] } {
  const f = faultsFor("vrls-router", faults);
  return f.length > 0 ? { faults: f } : {};
}

/**
 * The reference VRLS virtual router (lib/roles/vrls) behind the adapter's VRLS control
 * surface: the virtual router of the lab's `vrls:` section, one router agent per member,
 * started through the role's harness with the settings a case deploys.
 */
export class ReferenceVrls implements VrlsControl {
  running: RunningVirtualRouter | undefined;
  private responders: AgentClient[] = [];
  private deployed: VrlsSettings = {};
  private current: VirtualRouterConfig;
  private inForce = "";
  private server: AgentClient | undefined;
  readonly substitution?: VrlsSubstitutionControl;

  constructor(
    private readonly lab: Lab,
    private readonly loaded: () => LoadedTopology,
    /** Option handoffProtection=off: every hand-off in timer mode with a zero delay. */
    private readonly broken: boolean,
    /** Seeded faults (option fault=NAME[,NAME...], lib/roles/seeded-faults.ts). */
    private readonly faults: readonly SeededFaultName[] = [],
  ) {
    this.current = this.configFor({});
    this.inForce = this.current.spec.mode;
    if (this.current.spec.coordinator) this.substitution = this.substitutionControl();
  }

  get mode(): string {
    return this.inForce;
  }

  /** Settings deployed with `deploy({vrls})`; start() options override them per start. */
  deploy(settings: VrlsSettings): void {
    this.deployed = { ...settings };
  }

  private configFor(settings: VrlsSettings): VirtualRouterConfig {
    const s = { ...this.deployed, ...settings };
    const overrides = {
      ...(s.mode ? { mode: s.mode } : {}),
      ...(s.timerDelayMs !== undefined ? { timerDelayMs: s.timerDelayMs } : {}),
      ...(s.advertIntervalMs !== undefined ? { advertIntervalMs: s.advertIntervalMs } : {}),
      ...(s.discoveryMs !== undefined ? { discoveryMs: s.discoveryMs } : {}),
      ...(s.conditions ? { conditions: s.conditions } : {}),
      ...(s.review ? { review: ReviewSpec.parse(s.review) } : {}),
      ...(this.broken ? { mode: "timer" as const, timerDelayMs: 0 } : {}),
    };
    const vr = virtualRouterConfig(this.loaded(), undefined, overrides);
    return {
      ...vr,
      // Negative control: the agents' kernel rules outlive them (a zombie data plane).
      ...(this.faults.includes("zombie-dataplane") ? { fateSharing: false } : {}),
      ...routerFaults(this.faults),
    };
  }

  describe(): VrlsDescription {
    const vr = this.current;
    const first = vr.members[0];
    return {
      name: vr.name,
      vrid: vr.spec.vrid,
      interface: vr.spec.interface,
      virtualAddress: vr.virtualAddress,
      key: vr.spec.key,
      advertIntervalMs: vr.spec.advertIntervalMs,
      responseTimeoutMs: first ? coreOptionsFor(vr, first.host).responseTimeoutMs : 0,
      members: vr.members.map((m) => ({ host: m.host, address: m.address, priority: m.priority })),
      ...(vr.spec.coordinator ? { substitutionServer: vr.spec.coordinator.host } : {}),
    };
  }

  private need(): RunningVirtualRouter {
    if (!this.running) throw new Error("the virtual router is not started");
    return this.running;
  }

  async start(options: VrlsSettings & { infoResponders?: string[] }): Promise<void> {
    await this.stop();
    const { infoResponders, ...settings } = options;
    this.current = this.configFor(settings);
    this.inForce = this.broken ? "timer (delay 0: hand-off protection off)" : this.current.spec.mode;
    this.responders = infoResponders ? await startInfoResponders(this.lab, infoResponders) : [];
    this.running = await startVirtualRouter(this.lab, this.current);
  }

  async stop(): Promise<void> {
    const r = this.running;
    this.running = undefined;
    await this.substitution?.stop();
    await r?.stop();
    await Promise.all(this.responders.map((a) => a.stop().catch(() => undefined)));
    this.responders = [];
  }

  master(): Promise<string | undefined> {
    return this.need().master();
  }
  waitForMaster(timeoutMs?: number, expected?: string): Promise<string> {
    return this.need().waitForMaster(timeoutMs, expected);
  }
  waitAllocated(conditions: number, timeoutMs?: number): Promise<Record<string, string>> {
    return this.need().waitAllocated(conditions, timeoutMs);
  }

  async endSystems(): Promise<VrlsEndSystem[]> {
    const r = this.need();
    const s = await r.status(await r.waitForMaster());
    return s.endSystems.map((e) => ({ address: e.address, learnedBy: e.learnedBy }));
  }

  async members(): Promise<{ id: string; condition: string }[]> {
    const r = this.need();
    const s = await r.status(await r.waitForMaster());
    return (s.master?.members ?? []).map((x) => ({ id: x.id, condition: x.condition }));
  }

  async status(host: string): Promise<VrlsMemberState> {
    const s = await this.need().status(host);
    return {
      role: s.role,
      owners: s.member.owners,
      epoch: s.member.epoch,
      counters: s.counters,
      master: s.master as VrlsMemberState["master"],
      review: s.review ?? null,
    };
  }

  async reallocate(moves: Record<string, string>): Promise<void> {
    const r = this.need();
    const agent = r.agents.get(await r.waitForMaster())!;
    await agent.call("reallocate", { moves });
    const idle = await agent.call<{ idle: boolean }>("waitIdle", { timeoutMs: 5000 });
    if (!idle.idle) throw new Error(`reallocation did not complete within 5 s\n${await r.diagnostics()}`);
  }

  /** The member's data links (its lab interfaces; the lab reaches its sshd another way). */
  private memberLinks(host: string): string[] {
    return Object.keys(this.lab.host(host).spec?.interfaces ?? {});
  }

  async failMember(host: string, how: "crash" | "power-off"): Promise<void> {
    const r = this.need();
    const agent = r.agents.get(host);
    if (!agent) throw new Error(`no reference member on ${host}`);
    // SIGKILL: no resignation (priority 0), no cleanup. Its owner table dies with it and
    // the guard table stops the rest (lib/roles/vrls/dataplane.ts). power-off: every link
    // of the member goes down in the same command.
    const links = how === "power-off" ? this.memberLinks(host).map((l) => `ip link set ${l} down; `) : [];
    await this.lab.host(host).exec(`${links.join("")}kill -KILL ${agent.pid ?? ""}`);
    await agent.stop({ graceMs: 100 }).catch(() => undefined);
    r.agents.delete(host);
  }

  async restoreMember(host: string): Promise<void> {
    const links = this.memberLinks(host).map((l) => `ip link set ${l} up`);
    if (links.length > 0) await this.lab.host(host).exec(links.join("; "));
  }

  diagnostics(): Promise<string> {
    return this.need().diagnostics();
  }

  async logs(): Promise<string> {
    const parts = [...(this.running?.agents ?? [])].map(([h, a]) => `==== ${h} ====\n${a.logText()}`);
    if (this.server) parts.push(`==== substitution server ====\n${this.server.logText()}`);
    return parts.join("\n");
  }

  /** Config in force, as evidence. */
  configText(): string | undefined {
    const vr = this.running?.config;
    return vr ? JSON.stringify({ name: vr.name, spec: vr.spec, members: vr.members }, null, 2) : undefined;
  }

  private substitutionControl(): VrlsSubstitutionControl {
    const self = this;
    const host = () => self.current.spec.coordinator?.host ?? "";
    return {
      async start() {
        await this.stop();
        self.server = await startCoordinator(self.lab, self.current);
      },
      async stop() {
        const s = self.server;
        self.server = undefined;
        await s?.stop().catch(() => undefined);
        // A crashed server's link comes back for the next start.
        if (host()) await self.lab.host(host()).exec(`ip link set ${self.current.spec.interface} up`);
      },
      async crash() {
        const s = self.server;
        if (!s) throw new Error("the substitution server is not started");
        await self.lab
          .host(host())
          .exec(`ip link set ${self.current.spec.interface} down; kill -9 ${s.pid ?? ""}`);
      },
      async status() {
        if (!self.server) throw new Error("the substitution server is not started");
        return self.server.call("status");
      },
      async logs() {
        return self.server?.logText() ?? "(substitution server not started)";
      },
    };
  }
}
