import { linkFault, mustExec, primaryHost, unsupportedFault } from "../common.ts";
import type {
  AdapterHost,
  AdapterRegistration,
  Capability,
  DeviceConfig,
  DeviceIdentity,
  DeviceState,
  DeviceTarget,
  Fault,
  VendorAdapter,
  VrrpInstanceConfig,
  VrrpStateName,
} from "../types.ts";
import { type CliTemplate, loadCliTemplate, renderTemplate, type TemplateVars } from "./template.ts";

/**
 * A generic adapter for routers that are configured by commands over SSH (a physical
 * router's CLI, or a Linux router's shell): every operation is a command template from
 * vendor-adapters/ssh-cli/templates/<template>.yaml, run on the device host over the lab's
 * SSH session. Option `template` picks the family (default frr-vtysh).
 */
export class SshCliAdapter implements VendorAdapter {
  readonly name = "ssh-cli";
  readonly capabilities: ReadonlySet<Capability>;
  readonly template: CliTemplate;
  private readonly host: AdapterHost;
  private config: DeviceConfig | undefined;

  constructor(private readonly target: DeviceTarget) {
    this.host = primaryHost(target.hosts, target.primary);
    this.template = loadCliTemplate(target.options.template ?? "frr-vtysh");
    this.capabilities = new Set(this.template.capabilities);
  }

  private vars(instance?: VrrpInstanceConfig): TemplateVars {
    const base: Record<string, string | number | boolean> = {
      workDir: this.target.workDir,
      host: this.host.name,
    };
    if (instance) {
      const vip = instance.virtualAddresses[0] ?? "";
      Object.assign(base, {
        interface: instance.interface,
        vrid: instance.vrid,
        vmac: `00:00:5e:00:01:${instance.vrid.toString(16).padStart(2, "0")}`,
        priority: instance.priority,
        intervalMs: instance.advertIntervalMs,
        intervalCs: instance.advertIntervalMs / 10,
        intervalS: instance.advertIntervalMs / 1000,
        version: instance.version,
        preempt: instance.preempt,
        vipCidr: vip,
        vip: vip.split("/")[0] ?? "",
      });
    }
    // Template vars may refer to the built-ins and to each other (in file order).
    for (const [k, v] of Object.entries(this.template.vars)) base[k] = renderTemplate(v, base);
    return base;
  }

  private async runAll(
    commands: readonly string[],
    what: string,
    instance?: VrrpInstanceConfig,
  ): Promise<string> {
    let out = "";
    for (const c of commands)
      out += await mustExec(
        this.host,
        ["sh", "-c", renderTemplate(c, this.vars(instance))],
        `${this.template.name} ${what}`,
      );
    return out;
  }

  private async perInstance(commands: readonly string[], what: string): Promise<void> {
    for (const v of this.config?.vrrp ?? []) await this.runAll(commands, what, v);
  }

  async identity(): Promise<DeviceIdentity> {
    const r = await this.host.exec(["sh", "-c", renderTemplate(this.template.identity.command, this.vars())]);
    const m = new RegExp(this.template.identity.versionPattern).exec(r.stdout + r.stderr);
    return { vendor: this.template.vendor, product: this.template.product, version: m?.[1] ?? "unknown" };
  }

  async deploy(config: DeviceConfig): Promise<void> {
    if (!config.vrrp?.length) throw new Error("ssh-cli adapter: the configuration has no vrrp instance");
    this.config = config;
    await this.runAll(this.template.prepare, "prepare");
    await this.perInstance(this.template.deploy, "deploy");
  }

  async start(): Promise<void> {
    await this.perInstance(this.template.start, "start");
  }

  async stop(how: "graceful" | "crash" = "graceful"): Promise<void> {
    if (how === "crash") {
      if (this.template.crash.length === 0)
        throw new Error(`${this.template.name}: the template has no crash commands`);
      await this.runAll(this.template.crash, "crash");
    } else {
      await this.perInstance(this.template.stop, "stop");
    }
  }

  async readState(): Promise<DeviceState> {
    const vrrp: DeviceState["vrrp"] = [];
    let running = true;
    for (const v of this.config?.vrrp ?? []) {
      const r = await this.host.exec(["sh", "-c", renderTemplate(this.template.state.command, this.vars(v))]);
      if (r.code !== 0) running = false;
      let state: VrrpStateName = "unknown";
      for (const [name, pattern] of Object.entries(this.template.state.patterns)) {
        if (new RegExp(pattern).test(r.stdout)) state = name as VrrpStateName;
      }
      vrrp.push({ vrid: v.vrid, state });
    }
    return { running, vrrp, counters: {} };
  }

  async injectFault(fault: Fault): Promise<void> {
    if (await linkFault(this.host, fault)) return;
    if (fault.kind === "crash") return this.stop("crash");
    throw unsupportedFault(this.name, fault);
  }

  async collectLogs(): Promise<string> {
    return (await this.host.exec(["sh", "-c", renderTemplate(this.template.logs, this.vars())])).stdout;
  }

  async collectConfig(): Promise<string> {
    const r = await this.host.exec(["sh", "-c", renderTemplate(this.template.config, this.vars())]);
    return r.code === 0 ? r.stdout : `(config command failed: ${r.stderr.trim()})`;
  }

  async dispose(): Promise<void> {
    if (this.template.crash.length) await this.runAll(this.template.crash, "crash").catch(() => "");
    for (const v of this.config?.vrrp ?? [])
      await this.runAll(this.template.teardown, "teardown", v).catch(() => "");
  }
}

export const sshCliRegistration: AdapterRegistration = {
  name: "ssh-cli",
  description:
    "generic router driven by command templates over SSH (option template=NAME, default frr-vtysh)",
  suites: ["vrrp"],
  create: (target) => new SshCliAdapter(target),
};
