import { waitUntil } from "../../lib/remote/wait.ts";
import {
  linkFault,
  mustExec,
  primaryHost,
  readPid,
  readRemoteFile,
  signalPid,
  unsupportedFault,
  waitPidGone,
  writeRemoteFile,
} from "../common.ts";
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
import { vrrpFamily } from "../types.ts";

const FRR_BIN = "/usr/lib/frr";

/**
 * FRR (Debian's 8.4) as a VRRP router: zebra + vrrpd started in the device host's
 * namespace with their own config files, pid files, zserv socket and vty socket
 * directory (all under the work dir), so they never meet the machine's own FRR.
 * FRR does not create the macvlan with the virtual MAC itself (FRR docs, "System
 * Configuration"): the adapter creates it in bridge mode, as the docs describe, and vrrpd
 * toggles its protodown flag. State and counters come from `show vrrp json` over vtysh.
 */
export class FrrAdapter implements VendorAdapter {
  readonly name = "frr";
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>([
    "vrrp-v3",
    "vrrp-v2",
    "vrrp-preempt-off",
    "vrrp-graceful-stop",
    "vrrp-state-readback",
    // VRRPv3 over IPv6 (issue 16: test/vrrp-ipv6-capture.test.ts, the vrrp suite's --family ipv6).
    "vrrp-ipv6",
    "fault-crash",
    "fault-link",
    "logs",
    "config-readback",
  ]);
  protected readonly host: AdapterHost;
  protected readonly dir: string;
  protected config: DeviceConfig | undefined;

  constructor(protected readonly target: DeviceTarget) {
    this.host = primaryHost(target.hosts, target.primary);
    this.dir = `${target.workDir}/frr`;
  }

  protected path(name: string): string {
    return `${this.dir}/${name}`;
  }

  /** vtysh bound to this instance's vty sockets. */
  vtysh(...commands: string[]): Promise<string> {
    return mustExec(
      this.host,
      ["vtysh", "--vty_socket", this.dir, ...commands.flatMap((c) => ["-c", c])],
      `vtysh ${commands.join(" / ")}`,
    );
  }

  async identity(): Promise<DeviceIdentity> {
    const r = await this.host.exec([`${FRR_BIN}/vrrpd`, "--version"], { timeoutMs: 10_000 });
    const m = /version\s+(\S+)/.exec(r.stdout + r.stderr);
    return { vendor: "FRRouting", product: "FRR vrrpd", version: m?.[1] ?? "unknown" };
  }

  async deploy(config: DeviceConfig): Promise<void> {
    if (!config.vrrp?.length) throw new Error("frr adapter: the configuration has no vrrp instance");
    this.config = config;
    await mustExec(this.host, ["mkdir", "-p", this.dir], "mkdir");
    await this.host.exec(["rm", "-f", this.path("vrrpd.log"), this.path("zebra.log")]);
    await writeRemoteFile(this.host, this.path("zebra.conf"), "! zebra: nothing to configure\n");
    await writeRemoteFile(this.host, this.path("vrrpd.conf"), renderFrrVrrpConf(config.vrrp));
  }

  async start(): Promise<void> {
    if (!this.config?.vrrp) throw new Error("frr adapter: deploy() before start()");
    for (const v of this.config.vrrp) await this.createMacvlan(v);
    // The daemons drop privileges to FRR's own user (as packaged); that user owns the dir.
    await mustExec(this.host, ["chown", "-R", "frr:frr", this.dir], "chown the FRR dir");
    const common = (daemon: string) => [
      "-d",
      "-f",
      this.path(`${daemon}.conf`),
      "-i",
      this.path(`${daemon}.pid`),
      "-z",
      this.path("zserv.api"),
      "--vty_socket",
      this.dir,
      "--log",
      `file:${this.path(`${daemon}.log`)}`,
      "--log-level",
      "debug",
    ];
    await mustExec(this.host, [`${FRR_BIN}/zebra`, ...common("zebra")], "start zebra");
    await this.waitFor(this.path("zserv.api"), "zebra's zserv socket");
    await mustExec(this.host, [`${FRR_BIN}/vrrpd`, ...common("vrrpd")], "start vrrpd");
    await this.waitFor(this.path("vrrpd.vty"), "vrrpd's vty socket");
  }

  private async waitFor(path: string, what: string): Promise<void> {
    await waitUntil(async () => (await this.host.exec(["test", "-e", path])).code === 0, {
      timeoutMs: 10_000,
      what: `${what} (${path}) on ${this.host.name}`,
      everyMs: 100,
    });
  }

  private async createMacvlan(v: VrrpInstanceConfig): Promise<void> {
    const name = macvlanName(v);
    await this.host.exec(["ip", "link", "del", name]);
    const v6 = vrrpFamily(v) === 6;
    const mac = `00:00:5e:00:0${v6 ? 2 : 1}:${v.vrid.toString(16).padStart(2, "0")}`;
    // FRR's docs add `addrgenmode random` for IPv6 (the macvlan needs a link-local address of
    // its own to send from); IPv4 VRRP does not need it, and namespaces without IPv6 refuse it.
    const add = ["ip", "link", "add", name, "link", v.interface, "type", "macvlan", "mode", "bridge"];
    await mustExec(this.host, add, "create macvlan");
    if (v6)
      await mustExec(this.host, ["ip", "link", "set", "dev", name, "addrgenmode", "random"], "addrgenmode");
    await mustExec(this.host, ["ip", "link", "set", "dev", name, "address", mac], "set vmac");
    for (const a of v.virtualAddresses)
      await mustExec(this.host, ["ip", "addr", "add", a, "dev", name, ...(v6 ? ["nodad"] : [])], "add VIP");
    await mustExec(this.host, ["ip", "link", "set", "dev", name, "up"], "macvlan up");
  }

  async stop(how: "graceful" | "crash" = "graceful"): Promise<void> {
    const pids = [
      await readPid(this.host, this.path("vrrpd.pid")),
      await readPid(this.host, this.path("zebra.pid")),
    ];
    for (const pid of pids) if (pid) await signalPid(this.host, pid, how === "crash" ? "KILL" : "TERM");
    for (const pid of pids) if (pid) await waitPidGone(this.host, pid, 10_000);
    await this.host.exec(["rm", "-f", this.path("vrrpd.pid"), this.path("zebra.pid")]);
  }

  async readState(): Promise<DeviceState> {
    const pid = await readPid(this.host, this.path("vrrpd.pid"));
    const running = pid !== undefined && (await this.host.exec(["kill", "-0", String(pid)])).code === 0;
    if (!running) return { running, vrrp: [], counters: {} };
    const json = JSON.parse(await this.vtysh("show vrrp json")) as FrrVrrpJson[];
    const counters: Record<string, number> = {};
    const vrrp = json.map((e) => {
      const configured = this.config?.vrrp?.find((v) => v.vrid === e.vrid);
      const router = (configured && vrrpFamily(configured) === 6 ? e.v6 : e.v4) ?? {};
      for (const [k, val] of Object.entries(router.stats ?? {}))
        if (typeof val === "number") counters[`vrid${e.vrid}.${k}`] = val;
      return { vrid: e.vrid, state: frrState(router.status) };
    });
    return { running, vrrp, counters };
  }

  async injectFault(fault: Fault): Promise<void> {
    if (await linkFault(this.host, fault)) return;
    if (fault.kind === "crash") return this.stop("crash");
    throw unsupportedFault(this.name, fault);
  }

  async collectLogs(): Promise<string> {
    const zebra = await readRemoteFile(this.host, this.path("zebra.log"));
    const vrrpd = await readRemoteFile(this.host, this.path("vrrpd.log"));
    return `==== vrrpd.log ====\n${vrrpd}\n==== zebra.log ====\n${zebra}`;
  }

  async collectConfig(): Promise<string> {
    const pid = await readPid(this.host, this.path("vrrpd.pid"));
    if (pid !== undefined) {
      const running = await this.host.exec(["vtysh", "--vty_socket", this.dir, "-c", "show running-config"]);
      if (running.code === 0) return running.stdout;
    }
    return readRemoteFile(this.host, this.path("vrrpd.conf"));
  }

  async dispose(): Promise<void> {
    await this.stop("crash").catch(() => {});
    for (const v of this.config?.vrrp ?? [])
      await this.host.exec(["ip", "link", "del", macvlanName(v)]).catch(() => {});
  }
}

interface FrrVrrpJson {
  vrid: number;
  v4?: { status?: string; stats?: Record<string, unknown> };
  v6?: { status?: string; stats?: Record<string, unknown> };
}

function frrState(status: string | undefined): VrrpStateName {
  switch (status?.toLowerCase()) {
    case "master":
      return "master";
    case "backup":
      return "backup";
    case "initialize":
      return "initialize";
    default:
      return "unknown";
  }
}

/** FRR's own naming convention for VRRP macvlans (FRR docs: vrrp4-<ifindex>-<n>, vrrp6-...). */
export function macvlanName(v: VrrpInstanceConfig): string {
  return `vrrp${vrrpFamily(v)}-${v.vrid}`;
}

export function renderFrrVrrpConf(instances: readonly VrrpInstanceConfig[]): string {
  const lines = ["! Written by Tandem's frr adapter", "log timestamp precision 6"];
  const byInterface = new Map<string, VrrpInstanceConfig[]>();
  for (const v of instances) byInterface.set(v.interface, [...(byInterface.get(v.interface) ?? []), v]);
  for (const [ifname, list] of byInterface) {
    lines.push(`interface ${ifname}`);
    for (const v of list) {
      lines.push(` vrrp ${v.vrid} version ${v.version}`);
      lines.push(` vrrp ${v.vrid} priority ${v.priority}`);
      lines.push(` vrrp ${v.vrid} advertisement-interval ${v.advertIntervalMs}`);
      lines.push(v.preempt ? ` vrrp ${v.vrid} preempt` : ` no vrrp ${v.vrid} preempt`);
      // IPv6: every virtual address in order, the link-local one first (RFC 9568 5.2.9; FRR
      // docs: `vrrp (1-255) ipv6 X:X::X:X`, the address already on the macvlan).
      const v6 = vrrpFamily(v) === 6;
      for (const a of v.virtualAddresses)
        lines.push(` vrrp ${v.vrid} ${v6 ? "ipv6" : "ip"} ${a.split("/")[0]}`);
    }
    lines.push("exit");
  }
  return `${lines.join("\n")}\n`;
}

export const frrRegistration: AdapterRegistration = {
  name: "frr",
  description: "FRR 8.x vrrpd + zebra (Debian) in a lab host",
  suites: ["vrrp"],
  create: (target) => new FrrAdapter(target),
  knownDeviations: {
    "vrrp.fwd-backup-silent":
      "FRR puts its macvlan in protodown while Backup (zebra log: 'Setting protodown on - interface vrrp4-7'), " +
      "but frames addressed to the virtual MAC still enter the kernel and are routed: the far-side capture shows " +
      "them leaving the DUT's eth1 while vrrpd was Backup. On a learning switch a backup seldom receives such " +
      "frames; on a hub, or when a switch floods, it forwards them (RFC 5798 6.4.2 says it MUST NOT).",
  },
};
