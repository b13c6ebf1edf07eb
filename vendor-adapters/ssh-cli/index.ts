import { linkFault, primaryHost } from "../common.ts";
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
import {
  type CliTemplate,
  type Located,
  loadCliTemplate,
  renderTemplate,
  type TemplateVars,
} from "./template.ts";

/**
 * A generic adapter for routers configured through their own CLI over SSH: deploy, start,
 * stop, state, config and identity are CLI commands from
 * vendor-adapters/ssh-cli/templates/<template>.yaml, run by the device's CLI program
 * (FRR: vtysh) in one session per operation, never through a shell; only what belongs to
 * the router's operating system (boot, interfaces, crash, log file) runs as shell commands
 * (`host:`). Option `template` picks the family (default frr-vtysh).
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
    this.capabilities = new Set(this.template.capabilities as Capability[]);
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

  /** Renders one template command; an unknown variable names the template's file and line. */
  private render(c: Located, vars: TemplateVars): string {
    try {
      return renderTemplate(c.text, vars);
    } catch (e) {
      throw new Error(`${this.template.file}:${c.line}: ${(e as Error).message}`);
    }
  }

  /**
   * One session of the device's CLI running `commands` in order (vtysh: `vtysh -c A -c B`,
   * which stops at the first refused command). A refused command (an output line matching
   * cli.errorPattern, or a non-zero exit) is an error naming the template file and the
   * line of that command.
   */
  private async cli(
    commands: readonly Located[],
    what: string,
    instance?: VrrpInstanceConfig,
  ): Promise<string> {
    if (commands.length === 0) return "";
    const vars = this.vars(instance);
    const { cli, file } = this.template;
    const argv = cli.argv.map((a) => this.render({ text: a, line: this.template.cliLine }, vars));
    const rendered = commands.map((c) => ({ ...c, command: this.render(c, vars) }));
    const r = await this.host.exec(
      cli.commandFlag ? [...argv, ...rendered.flatMap((c) => [cli.commandFlag!, c.command])] : argv,
      cli.commandFlag
        ? { timeoutMs: 30_000 }
        : { timeoutMs: 30_000, input: `${rendered.map((c) => c.command).join("\n")}\n` },
    );
    const output = `${r.stdout}\n${r.stderr}`;
    const refusal = new RegExp(cli.errorPattern, "m").exec(output);
    if (refusal || r.code !== 0) {
      const errorLine = refusal
        ? (output.slice(refusal.index).split("\n")[0] ?? "").trim()
        : `exit ${r.code}: ${output.trim().split("\n").slice(-1)[0] ?? ""}`;
      // The refused command: the one the CLI names in its error line (vtysh echoes it), else the whole session.
      const culprit = [...rendered].reverse().find((c) => errorLine.includes(c.command));
      const where = culprit
        ? `${file}:${culprit.line}`
        : `${file}:${rendered[0]!.line}-${rendered[rendered.length - 1]!.line}`;
      throw new Error(
        `${where}: ${this.template.name} ${what}: the device's CLI refused ${culprit ? `"${culprit.command}"` : "the commands"}: ${errorLine}`,
      );
    }
    return r.stdout;
  }

  /** Shell commands on the device host (the router's operating system, `host:` in the template). */
  private async shell(
    commands: readonly Located[],
    what: string,
    instance?: VrrpInstanceConfig,
  ): Promise<string> {
    let out = "";
    const vars = this.vars(instance);
    for (const c of commands) {
      const r = await this.host.exec(["sh", "-c", this.render(c, vars)], { timeoutMs: 30_000 });
      if (r.code !== 0)
        throw new Error(
          `${this.template.file}:${c.line}: ${this.template.name} ${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`,
        );
      out += r.stdout;
    }
    return out;
  }

  /** Asked before deploy too: the router is booted first (host.prepare is idempotent), then its CLI answers. */
  async identity(): Promise<DeviceIdentity> {
    await this.shell(this.template.host.prepare, "host.prepare");
    const out = await this.cli([this.template.identity.command], "identity");
    const m = new RegExp(this.template.identity.versionPattern, "m").exec(out);
    return { vendor: this.template.vendor, product: this.template.product, version: m?.[1] ?? "unknown" };
  }

  async deploy(config: DeviceConfig): Promise<void> {
    if (!config.vrrp?.length) throw new Error("ssh-cli adapter: the configuration has no vrrp instance");
    this.config = config;
    await this.shell(this.template.host.prepare, "host.prepare");
    for (const v of config.vrrp) {
      await this.shell(this.template.host.deploy, "host.deploy", v);
      await this.cli(this.template.deploy, "deploy", v);
    }
  }

  async start(): Promise<void> {
    for (const v of this.config?.vrrp ?? []) await this.cli(this.template.start, "start", v);
  }

  async stop(how: "graceful" | "crash" = "graceful"): Promise<void> {
    if (how === "crash") {
      if (this.template.host.crash.length === 0)
        throw new Error(`${this.template.file}: ${this.template.name} has no host.crash commands`);
      await this.shell(this.template.host.crash, "host.crash");
    } else {
      for (const v of this.config?.vrrp ?? []) await this.cli(this.template.stop, "stop", v);
    }
  }

  async readState(): Promise<DeviceState> {
    const vrrp: DeviceState["vrrp"] = [];
    let running = true;
    for (const v of this.config?.vrrp ?? []) {
      let out = "";
      try {
        out = await this.cli([this.template.state.command], "state", v);
      } catch (e) {
        // A refused show command is a template error, not a stopped device.
        if ((e as Error).message.includes("the device's CLI refused \"")) throw e;
        running = false;
      }
      let state: VrrpStateName = "unknown";
      for (const [name, pattern] of Object.entries(this.template.state.patterns)) {
        if (new RegExp(pattern, "m").test(out)) state = name as VrrpStateName;
      }
      vrrp.push({ vrid: v.vrid, state });
    }
    return { running, vrrp, counters: {} };
  }

  async injectFault(fault: Fault): Promise<void> {
    if (await linkFault(this.host, fault)) return;
    if (fault.kind === "crash") await this.stop("crash");
  }

  async collectLogs(): Promise<string> {
    return (await this.host.exec(["sh", "-c", this.render(this.template.host.logs, this.vars())])).stdout;
  }

  async collectConfig(): Promise<string> {
    return this.cli([this.template.config], "config").catch(
      (e: Error) => `(config command failed: ${e.message})`,
    );
  }

  async dispose(): Promise<void> {
    if (this.template.host.crash.length)
      await this.shell(this.template.host.crash, "host.crash").catch(() => "");
    for (const v of this.config?.vrrp ?? [])
      await this.shell(this.template.host.teardown, "host.teardown", v).catch(() => "");
  }
}

export const sshCliRegistration: AdapterRegistration = {
  name: "ssh-cli",
  description:
    "generic router driven by command templates over SSH (option template=NAME, default frr-vtysh)",
  suites: ["vrrp"],
  create: (target) => new SshCliAdapter(target),
};
