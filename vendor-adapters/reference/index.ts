import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab } from "../../lib/lab/index.ts";
import { repoRoot } from "../../lib/remote/repo-root.ts";
import type { NatlbConfig } from "../../lib/roles/natlb/config.ts";
import {
  holdReportOf,
  loadReport,
  move,
  type NatlbRig,
  startLoad,
  startNatlb,
  status,
  stopNatlb,
} from "../../lib/roles/natlb/harness/lab-harness.ts";
import type { HoldReport } from "../../lib/roles/natlb/hold.ts";
import type { MoveReport } from "../../lib/roles/natlb/move.ts";
import { loadNatlbSection } from "../../lib/roles/natlb/section.ts";
import { faultsFor, parseFaultOption, type SeededFaultName } from "../../lib/roles/seeded-faults.ts";
import {
  type RunningVirtualRouter,
  type RunningVrrp6Router,
  startVirtualRouter,
  startVrrp6Router,
  virtualRouterConfig,
} from "../../lib/roles/vrls/harness/lab-harness.ts";
import { isLinkLocalIpv6 } from "../../lib/topology/address.ts";
import { loadTopology } from "../../lib/topology/load.ts";
import type {
  AdapterRegistration,
  Capability,
  DeviceConfig,
  DeviceIdentity,
  DeviceState,
  DeviceTarget,
  Fault,
  NatlbControl,
  NatlbModeRow,
  NatlbMoveResult,
  VendorAdapter,
  VrrpInstanceConfig,
} from "../types.ts";
import { vrrpFamily } from "../types.ts";
import { DownedLinks } from "./link-routes.ts";
import { ReferenceVrls, routerFaults } from "./vrls-control.ts";

/**
 * Tandem's own reference roles as a device: the VRLS virtual router of the lab's `vrls:`
 * section (lib/roles/vrls, one router agent per member) started through the role's lab
 * harness. Option `handoffProtection=off` deliberately breaks it: every hand-off runs
 * in timer mode with a zero delay, i.e. without protection, so the new owner forwards
 * while the old one still does (the "broken reference" of the certification docs).
 */
export class ReferenceAdapter implements VendorAdapter {
  readonly name = "reference";
  readonly capabilities: ReadonlySet<Capability>;
  readonly vrls?: ReferenceVrls;
  readonly natlb?: NatlbControl;
  private rig: NatlbRig | undefined;
  /**
   * Links a fault (link-down, failBalancer) took down, with the routes through them (the
   * kernel drops those with the link): link-up, restore and the balancers' stop bring the
   * links up and put the routes back (a physical host outlives the lab run).
   */
  private readonly downedLinks = new DownedLinks((name) => this.lab.host(name));
  /** VRRP mode: the one-member virtual router. */
  private running: RunningVirtualRouter | undefined;
  /** VRRP mode over IPv6 (issue 16): the vrrp6-router agent on the DUT. */
  private running6: RunningVrrp6Router | undefined;
  private embodiment: "dnat" | "fullnat" | undefined;
  private readonly lab: Lab;
  private readonly broken: boolean;
  /** Seeded faults (`--dut-option fault=NAME[,NAME...]`, lib/roles/seeded-faults.ts). */
  private readonly faults: SeededFaultName[];
  private vrrpMode = false;
  private vrrpConfig: DeviceConfig["vrrp"];

  constructor(private readonly target: DeviceTarget) {
    if (!target.lab) throw new Error("reference adapter: needs the lab (DeviceTarget.lab)");
    this.lab = target.lab;
    this.broken = target.options.handoffProtection === "off";
    this.faults = parseFaultOption(target.options.fault);
    const caps: Capability[] = ["fault-crash", "fault-link", "logs", "config-readback"];
    const loaded = this.topology();
    if (!loaded.topology.vrls && !loaded.topology.natlb) {
      // No reference section at all (labs/vrrp-dut-v6.yaml): the reference as a plain VRRPv3
      // router configured wholly by deploy(); IPv6 only (the IPv4 router reads the lab's vrls:).
      caps.push("vrrp-v3", "vrrp-ipv6", "vrrp-preempt-off", "vrrp-graceful-stop", "vrrp-accept-mode");
      this.vrrpMode = true;
    } else if (loaded.topology.vrls) {
      const vr = virtualRouterConfig(loaded);
      if (vr.members.length === 1 && vr.members[0]?.host === target.primary) {
        // A one-member virtual router on the DUT: the reference as a plain VRRPv3 router.
        caps.push("vrrp-v3", "vrrp-ipv6", "vrrp-preempt-off", "vrrp-graceful-stop", "vrrp-accept-mode");
        this.vrrpMode = true;
      } else {
        // The reference has a substitution server (vrls-coordinator agent); the control
        // surface has it where the lab file configures its host (`coordinator:`).
        caps.push(
          "vrls",
          "vrls-timer",
          "vrls-exactly-once",
          "vrls-sequence-number",
          "vrls-review",
          "vrls-substitution",
        );
        this.vrls = new ReferenceVrls(this.lab, () => this.topology(), this.broken, this.faults);
      }
    }
    if (loaded.topology.natlb) {
      caps.push("natlb", "natlb-full-nat", "natlb-copy-keeping", "natlb-failover-entries-first");
      this.natlb = this.natlbControl();
    }
    this.capabilities = new Set(caps);
  }

  private topology() {
    return loadTopology(this.lab.record.topologyFile);
  }

  async identity(): Promise<DeviceIdentity> {
    const pkg = JSON.parse(readFileSync(join(repoRoot(), "package.json"), "utf8")) as { version: string };
    return {
      vendor: "Tandem",
      product: "reference roles",
      version: `${pkg.version}${this.broken ? " (hand-off protection OFF)" : ""}${
        this.faults.length > 0 ? ` (seeded faults: ${this.faults.join(", ")})` : ""
      }`,
    };
  }

  /** VRRP mode: priority, interval, preemption and Accept_Mode of the first instance; VRLS settings; the NAT-LB embodiment. */
  async deploy(config: DeviceConfig): Promise<void> {
    this.vrrpConfig = config.vrrp;
    if (config.vrls) this.vrls?.deploy(config.vrls);
    if (config.natlb) this.embodiment = config.natlb.embodiment;
  }

  async start(): Promise<void> {
    if (!this.vrrpMode) return this.vrls?.start({});
    const v = this.vrrpConfig?.[0];
    if (!v) throw new Error("reference adapter: deploy a vrrp instance first");
    if (v.version !== 3) throw new Error("reference adapter: VRRPv3 only");
    await this.stopRouter();
    // Issue 16: VRRPv3 over IPv6 runs in its own agent (lib/roles/vrls/vrrp6-router.agent.ts).
    if (vrrpFamily(v) === 6) return this.startIpv6(v);
    const loaded = this.topology();
    if (!loaded.topology.vrls)
      throw new Error(
        `reference adapter: VRRP over IPv4 needs the lab's vrls: section (a one-member virtual router on ${this.target.primary}); ${this.lab.record.topologyFile} has none`,
      );
    const base = virtualRouterConfig(loaded);
    const vr = virtualRouterConfig(loaded, base.name, {
      advertIntervalMs: v.advertIntervalMs,
      preempt: v.preempt,
    });
    this.running = await startVirtualRouter(this.lab, {
      ...vr,
      members: vr.members.map((m) => ({ ...m, priority: v.priority })),
      // RFC 9568 Accept_Mode; absent: the reference's default, True (as VRLS members).
      ...(v.acceptMode !== undefined ? { acceptMode: v.acceptMode } : {}),
      ...routerFaults(this.faults),
    });
  }

  /**
   * The IPv6 router on the DUT: the instance's addresses, priority, interval, preemption and
   * Accept_Mode; advertisements leave from the interface's link-local address in the lab
   * file (else the agent takes the interface's first one).
   */
  private async startIpv6(v: VrrpInstanceConfig): Promise<void> {
    const host = this.target.primary;
    const spec = this.topology().topology.hosts[host]?.interfaces[v.interface];
    const source = spec?.addresses
      .map((a) => a.split("/")[0] as string)
      .find((a) => a.includes(":") && isLinkLocalIpv6(a));
    this.running6 = await startVrrp6Router(this.lab, host, {
      interface: v.interface,
      vrid: v.vrid,
      priority: v.priority,
      advertIntervalCs: Math.round(v.advertIntervalMs / 10),
      preempt: v.preempt,
      virtualAddresses: v.virtualAddresses,
      ...(source ? { source } : {}),
      ...(v.acceptMode !== undefined ? { acceptMode: v.acceptMode } : {}),
      ...(this.faults.length > 0 ? { faults: [...this.faults] } : {}),
    });
  }

  /** graceful: the agent's own shutdown (it resigns with priority 0); crash: SIGKILL. */
  async stop(how: "graceful" | "crash" = "graceful"): Promise<void> {
    if (!this.vrrpMode) return this.vrls?.stop();
    const r6 = this.running6;
    const r = this.running;
    if (!r && !r6) return;
    if (how === "crash") {
      const agents = [...(r?.agents ?? []), ...(r6 ? ([[r6.host, r6.agent]] as const) : [])];
      for (const [host, agent] of agents)
        if (agent.pid) await this.lab.host(host).exec(["kill", "-KILL", String(agent.pid)]);
    }
    await this.stopRouter();
  }

  private async stopRouter(): Promise<void> {
    const r = this.running;
    const r6 = this.running6;
    this.running = undefined;
    this.running6 = undefined;
    await r?.stop();
    await r6?.stop();
  }

  async readState(): Promise<DeviceState> {
    if (this.running6) {
      const role = await this.running6.role();
      const state = role === "master" || role === "backup" || role === "initialize" ? role : "unknown";
      return {
        running: true,
        vrrp: [{ vrid: this.running6.args.vrid, state }],
        counters: role === "master" ? { [`master:${this.running6.host}`]: 1 } : {},
      };
    }
    const master = await this.running?.master();
    return { running: Boolean(this.running), vrrp: [], counters: master ? { [`master:${master}`]: 1 } : {} };
  }

  /** Faults act on the primary host (a VRLS member: crash, power-off, restore its links). */
  async injectFault(fault: Fault): Promise<void> {
    const host = this.target.primary;
    if (fault.kind === "crash" || fault.kind === "power-off") {
      if (this.vrls?.running) await this.vrls.failMember(host, fault.kind);
      else await this.stop("crash");
    } else if (fault.kind === "restore") {
      // The links this adapter took down come back with their routes; any other link up.
      await this.downedLinks.upAll(host);
      const links = Object.keys(this.lab.host(host).spec?.interfaces ?? {}).map((l) => `ip link set ${l} up`);
      if (links.length > 0) await this.lab.host(host).exec(links.join("; "));
    } else if (fault.kind === "link-down") await this.downedLinks.down(host, fault.interface);
    else await this.downedLinks.up(host, fault.interface);
  }

  async collectLogs(): Promise<string> {
    if (this.rig) return this.natlb?.diagnostics() ?? "";
    if (this.vrls?.running) return this.vrls.logs();
    if (this.running6) return `==== ${this.running6.host} (vrrp6) ====\n${this.running6.agent.logText()}`;
    if (!this.running) return "(no reference agent running)";
    return [...this.running.agents].map(([h, a]) => `==== ${h} ====\n${a.logText()}`).join("\n");
  }

  async collectConfig(): Promise<string> {
    const vr = this.running?.config;
    if (this.running6) return JSON.stringify({ vrrp6: this.running6.args }, null, 2);
    return (
      this.vrls?.configText() ??
      (vr
        ? JSON.stringify({ name: vr.name, spec: vr.spec, members: vr.members }, null, 2)
        : readFileSync(this.lab.record.topologyFile, "utf8"))
    );
  }

  async dispose(): Promise<void> {
    await this.stopRouter();
    await this.vrls?.stop();
    await this.natlb?.stop();
  }

  private natlbControl(): NatlbControl {
    const self = this;
    const need = () => {
      if (!self.rig) throw new Error("the balancers are not started");
      return self.rig;
    };
    return {
      async start(options) {
        await this.stop();
        const embodiment = options.embodiment ?? self.embodiment ?? "dnat";
        const config: NatlbConfig = { ...loadNatlbSection(self.topology()), embodiment };
        const faults = faultsFor("natlb", self.faults);
        self.rig = await startNatlb(self.lab, config, faults.length > 0 ? { faults } : {});
      },
      async stop() {
        const r = self.rig;
        self.rig = undefined;
        await stopNatlb(r);
        // A link set down loses its routes (the lab's default route among them) and setting it
        // up brings back only the connected ones: put the rest back. On a physical lab the
        // next run reuses this host, whose balancer would otherwise forward to nowhere.
        await self.downedLinks.upAll();
        // The VIP addresses the balancers claimed stay on a physical host after its agent: remove them.
        if (r && self.lab.backend === "physical") {
          for (const [name, spec] of Object.entries(r.config.balancers)) {
            const script = r.config.vips
              .map(
                (v) =>
                  `ip addr del ${v.address}/32 dev ${spec.external} 2>/dev/null; ip addr del ${v.internal}/32 dev ${spec.internal} 2>/dev/null`,
              )
              .join("; ");
            await self.lab.host(name).exec(["sh", "-c", `${script}; true`]);
          }
        }
      },
      async owner(vip) {
        return (await status(need())).vips.find((v) => v.vip === vip)?.owner ?? undefined;
      },
      async move(vip, to, options = {}) {
        const r = need();
        let m: MoveReport;
        let inTransitionCalled = false;
        const inTransition = options.inTransition;
        if (!inTransition) m = await move(r, vip, to, "planned");
        else {
          // The controller stops the move after step 2 (route) until told to resume: the new
          // owner is in transition mode and holds the VIP's addresses while the caller acts.
          await r.controller.call("holdAfter", { step: "route" });
          const moving = move(r, vip, to, "planned");
          try {
            // A move that ends (rolled back) before step 2 never stops: it wins the race.
            const held = await Promise.race([
              r.controller.call<boolean>("whenHeld", undefined, { timeoutMs: 60_000 }),
              moving.then(
                () => false,
                () => false,
              ),
            ]);
            if (held) {
              inTransitionCalled = true;
              await inTransition();
            }
          } finally {
            await r.controller.call("resume");
          }
          m = await moving;
        }
        const hold = await holdReportOf(r, to, m.id);
        return {
          ...moveResultOf(m),
          ...(hold ? { hold: holdOf(hold) } : {}),
          ...(inTransition ? { inTransitionCalled } : {}),
          raw: { move: m, hold },
        };
      },
      async startLoad(id, vip, connections, downloads) {
        const started = await startLoad(need(), id, vip, { connections, downloads });
        return started.reduce((a, s) => a + s.established, 0);
      },
      async loadReport(id, stop = false) {
        const l = await loadReport(need(), id, stop);
        return {
          established: l.established,
          resets: l.resets,
          stalls: l.stalls,
          corrupt: l.corrupt,
          failedConnects: l.failedConnects,
          open: l.open,
          raw: l,
        };
      },
      async entries(balancer, vip) {
        return need().balancers.get(balancer)!.call<Record<string, unknown>[]>("exportEntries", { vip });
      },
      async copies(server, balancer, vip) {
        return need().keepers.get(server)!.call<Record<string, unknown>[]>("copyRows", { balancer, vip });
      },
      async failBalancer(name) {
        const r = need();
        const agent = r.balancers.get(name);
        const spec = r.config.balancers[name];
        const links = [spec?.external, spec?.internal].filter((l): l is string => Boolean(l));
        // Routes first (put back at stop), then the kill and the links down in one command: a
        // killed balancer's nft table goes with its process while the VIP stays on the link,
        // so every round trip between the two let the host itself answer clients with a RST.
        await self.downedLinks.record(name, links);
        const script = [
          ...(agent?.pid ? [`kill -KILL ${agent.pid}`] : []),
          ...links.map((l) => `ip link set dev ${l} down`),
        ].join("; ");
        const down = await self.lab.host(name).exec(["sh", "-c", script]);
        if (down.code !== 0) throw new Error(`${name}: ${script}: ${down.stderr.trim()}`);
        await agent?.stop({ graceMs: 100 }).catch(() => undefined);
        r.balancers.delete(name);
      },
      async rebalance() {
        const r = need();
        const status = await r.controller.call<{ vips: { vip: string; bytesPerS: number }[] }>("status");
        const result = await r.controller.call<{ moves: MoveReport[]; imbalance: number; loads: unknown }>(
          "rebalance",
          undefined,
          { timeoutMs: 60_000 },
        );
        return {
          moves: result.moves.map((m) => ({ ...moveResultOf(m), raw: m })),
          vipLoads: Object.fromEntries(status.vips.map((v) => [v.vip, v.bytesPerS])),
          raw: { imbalance: result.imbalance, balancerLoads: result.loads },
        };
      },
      async vipLoads() {
        return Object.fromEntries((await status(need())).vips.map((v) => [v.vip, v.bytesPerS]));
      },
      async handleFailures(options = {}) {
        const r = need();
        const check = () =>
          r.controller.call<MoveReport[]>(
            "checkFailures",
            { entriesFirst: options.entriesFirst ?? false },
            { timeoutMs: 60_000 },
          );
        let moves: MoveReport[];
        let afterRouteCalled = false;
        const afterRoute = options.afterRoute;
        if (!afterRoute) moves = await check();
        else {
          // As in move(): the controller stops the next move after its route step until told
          // to resume; no failure noticed (no move) lifts the gate unused.
          await r.controller.call("holdAfter", { step: "route", maxMs: 30_000 });
          const checking = check();
          try {
            const held = await Promise.race([
              r.controller.call<boolean>("whenHeld", undefined, { timeoutMs: 60_000 }),
              checking.then(
                () => false,
                () => false,
              ),
            ]);
            if (held) {
              afterRouteCalled = true;
              await afterRoute();
            }
          } finally {
            await r.controller.call("resume");
          }
          moves = await checking;
        }
        return Promise.all(
          moves.map(async (m, i) => {
            const hold = await holdReportOf(r, m.to, m.id).catch(() => undefined);
            return {
              ...moveResultOf(m),
              ...(hold ? { hold: holdOf(hold) } : {}),
              ...(afterRoute && i === 0 ? { afterRouteCalled } : {}),
              raw: m,
            };
          }),
        );
      },
      async modeTable(balancer) {
        const agent = need().balancers.get(balancer);
        if (!agent) throw new Error(`balancer ${balancer} is not running (failed or unknown)`);
        return agent.call<NatlbModeRow[]>("modeTable");
      },
      async diagnostics() {
        const r = self.rig;
        if (!r) return "(balancers not started)";
        return [...r.balancers]
          .map(([n, a]) => `==== ${n} ====\n${a.logText().split("\n").slice(-80).join("\n")}`)
          .join("\n");
      },
    };
  }
}

/** The adapter-interface view of a balancer's hold report. */
function holdOf(hold: HoldReport): NonNullable<NatlbMoveResult["hold"]> {
  return {
    held: hold.held,
    released: hold.released,
    dropped: (hold.overflowDropped ?? 0) + (hold.timeoutDropped ?? 0) + (hold.discarded ?? 0),
    inOrder: hold.inOrder,
    holdMs: hold.holdMs,
  };
}

/** The adapter-interface view of the controller's move report (without hold and raw). */
function moveResultOf(
  m: MoveReport,
): Pick<
  NatlbMoveResult,
  "id" | "outcome" | "steps" | "startedAt" | "stepTimes" | "entriesMoved" | "totalMs"
> {
  return {
    id: m.id,
    outcome: m.outcome,
    steps: m.steps.map((x) => x.step),
    startedAt: m.startedAt,
    stepTimes: m.steps.map((x) => ({ step: x.step, atMs: x.at })),
    entriesMoved: m.entriesMoved,
    totalMs: m.totalMs,
  };
}

export const referenceRegistration: AdapterRegistration = {
  name: "reference",
  description:
    "Tandem's reference roles (VRLS router agents; option handoffProtection=off breaks the hand-off; fault=NAME[,NAME] switches on seeded faults, lib/roles/seeded-faults.ts)",
  suites: ["vrrp", "vrls", "natlb"],
  create: (target) => new ReferenceAdapter(target),
};
