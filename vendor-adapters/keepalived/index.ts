import { heldWithin } from "../../lib/remote/wait.ts";
import { readVrrpv3Mib, type Vrrpv3MibSnapshot } from "../../lib/snmp/vrrpv3-mib.ts";
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

/**
 * keepalived (Debian's 2.2.7) as a VRRP router: one keepalived per device host, run in
 * the foreground inside the host's namespace with its own config, pid and log files
 * (`keepalived -n -l -D -P -f CONF -p PID -r VRRP_PID`), so several run side by side.
 * The configuration is the plain RFC one: state BACKUP, use_vmac (the RFC's virtual MAC),
 * VRRPv3 unless asked otherwise. Nothing is tuned to pass a case.
 *
 * Option `snmp=on`: the device is also observed over SNMP, as a physical router would be.
 * start() first runs an snmpd of its own in the host's namespace (AgentX master; config,
 * AgentX socket, pid, log and persistent files under the run's directory; SNMPv2c on the
 * VRRP interface's primary address only), then keepalived with `-x` and
 * `enable_snmp_rfcv3` on that socket, so readVrrpMib() returns keepalived's VRRPv3 MIB.
 */
export class KeepalivedAdapter implements VendorAdapter {
  readonly name = "keepalived";
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>([
    "vrrp-v3",
    "vrrp-v2",
    "vrrp-preempt-off",
    "vrrp-graceful-stop",
    "vrrp-state-readback",
    "vrrp-accept-mode",
    // VRRPv3 over IPv6 (issue 16: test/vrrp-ipv6-capture.test.ts, the vrrp suite's --family ipv6).
    "vrrp-ipv6",
    "fault-crash",
    "fault-link",
    "logs",
    "config-readback",
  ]);
  private readonly host: AdapterHost;
  private readonly dir: string;
  private config: DeviceConfig | undefined;
  private readonly snmp: boolean;
  private snmpAddress: string | undefined;
  static readonly SNMP_COMMUNITY = "tandem";

  constructor(target: DeviceTarget) {
    this.host = primaryHost(target.hosts, target.primary);
    this.dir = `${target.workDir}/keepalived`;
    const snmp = target.options.snmp ?? "off";
    if (snmp !== "on" && snmp !== "off")
      throw new Error(`keepalived adapter: option snmp must be on or off, got ${JSON.stringify(snmp)}`);
    this.snmp = snmp === "on";
  }

  private get agentxSocket(): string {
    return `${this.dir}/agentx.sock`;
  }
  private get snmpdPidPath(): string {
    return `${this.dir}/snmpd.pid`;
  }

  private get confPath(): string {
    return `${this.dir}/keepalived.conf`;
  }
  private get pidPath(): string {
    return `${this.dir}/keepalived.pid`;
  }
  private get vrrpPidPath(): string {
    return `${this.dir}/vrrp.pid`;
  }
  private get logPath(): string {
    return `${this.dir}/keepalived.log`;
  }

  async identity(): Promise<DeviceIdentity> {
    const r = await this.host.exec(["keepalived", "--version"], { timeoutMs: 10_000 });
    const line = `${r.stdout}${r.stderr}`.split("\n").find((l) => l.startsWith("Keepalived")) ?? "Keepalived";
    return {
      vendor: "keepalived.org",
      product: "keepalived",
      version: line.replace(/^Keepalived\s+/, "").trim(),
    };
  }

  async deploy(config: DeviceConfig): Promise<void> {
    if (!config.vrrp?.length) throw new Error("keepalived adapter: the configuration has no vrrp instance");
    this.config = config;
    await this.host.exec(["rm", "-f", this.logPath]);
    await writeRemoteFile(
      this.host,
      this.confPath,
      renderKeepalivedConf(this.host.name, config.vrrp, this.snmp ? this.agentxSocket : undefined),
    );
  }

  /** snmpd as the AgentX master, private to this run, listening on `address` only. */
  private async startSnmpd(address: string): Promise<void> {
    await this.host.exec(["rm", "-f", this.snmpdPidPath, this.agentxSocket]);
    await writeRemoteFile(
      this.host,
      `${this.dir}/snmpd.conf`,
      [
        "# Written by Tandem's keepalived adapter: keepalived's AgentX master for this run only",
        `agentaddress udp:${address}:161`,
        "master agentx",
        `agentXSocket unix:${this.agentxSocket}`,
        "agentXPerms 0600 0700",
        `rocommunity ${KeepalivedAdapter.SNMP_COMMUNITY}`,
        "",
      ].join("\n"),
    );
    await this.host.exec(["mkdir", "-p", `${this.dir}/snmp-persist`]);
    const cmd =
      `SNMP_PERSISTENT_DIR=${this.dir}/snmp-persist setsid snmpd -f -C -c ${this.dir}/snmpd.conf ` +
      `-p ${this.snmpdPidPath} -Lf ${this.dir}/snmpd.log < /dev/null > /dev/null 2>&1 &`;
    await mustExec(this.host, ["sh", "-c", cmd], "start snmpd");
    const up = await heldWithin(
      async () =>
        (await readPid(this.host, this.snmpdPidPath)) !== undefined &&
        (await this.host.exec(["test", "-S", this.agentxSocket])).code === 0,
      { timeoutMs: 10_000, what: "snmpd's pid file and AgentX socket", everyMs: 100 },
    );
    if (!up)
      throw new Error(
        `snmpd did not start within 10 s: ${(await readRemoteFile(this.host, `${this.dir}/snmpd.log`)).slice(-2000)}`,
      );
    this.snmpAddress = address;
  }

  private async stopSnmpd(): Promise<void> {
    const pid = await readPid(this.host, this.snmpdPidPath);
    if (pid) {
      await signalPid(this.host, pid, "TERM");
      await waitPidGone(this.host, pid, 10_000);
    }
    await this.host.exec(["rm", "-f", this.snmpdPidPath, this.agentxSocket]);
  }

  /** keepalived's VRRPv3 MIB over SNMP (option snmp=on), read from the device host's namespace. */
  async readVrrpMib(): Promise<Vrrpv3MibSnapshot> {
    if (!this.snmp) throw new Error("keepalived adapter: readVrrpMib needs option snmp=on");
    if (!this.snmpAddress) throw new Error("keepalived adapter: readVrrpMib before start()");
    return readVrrpv3Mib({
      address: this.snmpAddress,
      community: KeepalivedAdapter.SNMP_COMMUNITY,
      via: this.host,
      timeoutMs: 3000,
    });
  }

  async start(): Promise<void> {
    if (!this.config) throw new Error("keepalived adapter: deploy() before start()");
    await this.host.exec(["rm", "-f", this.pidPath, this.vrrpPidPath]);
    if (this.snmp) {
      const iface = this.config.vrrp?.[0]?.interface ?? "eth0";
      const r = await mustExec(
        this.host,
        ["ip", "-4", "-o", "addr", "show", "dev", iface],
        "read the address",
      );
      const address = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r)?.[1];
      if (!address)
        throw new Error(`keepalived adapter: ${iface} on ${this.host.name} has no IPv4 address for snmpd`);
      await this.startSnmpd(address);
    }
    // Foreground (-n) under setsid so the SSH channel can close; output appended to the log file.
    const cmd =
      `setsid keepalived -n -l -D -P ${this.snmp ? "-x " : ""}-f ${this.confPath} -p ${this.pidPath} -r ${this.vrrpPidPath} ` +
      `>> ${this.logPath} 2>&1 < /dev/null &`;
    await mustExec(this.host, ["sh", "-c", cmd], "start keepalived");
    const started = await heldWithin(async () => (await readPid(this.host, this.vrrpPidPath)) !== undefined, {
      timeoutMs: 10_000,
      what: "keepalived's VRRP pid file",
      everyMs: 100,
    });
    if (!started)
      throw new Error(`keepalived did not start within 10 s: ${(await this.collectLogs()).slice(-2000)}`);
  }

  async stop(how: "graceful" | "crash" = "graceful"): Promise<void> {
    const parent = await readPid(this.host, this.pidPath);
    const child = await readPid(this.host, this.vrrpPidPath);
    if (how === "crash") {
      // Parent first, or it would restart the VRRP child.
      if (parent) await signalPid(this.host, parent, "KILL");
      if (child) await signalPid(this.host, child, "KILL");
    } else if (parent) {
      await signalPid(this.host, parent, "TERM");
    }
    for (const pid of [parent, child]) if (pid) await waitPidGone(this.host, pid, 10_000);
    await this.host.exec(["rm", "-f", this.pidPath, this.vrrpPidPath]);
    if (this.snmp) await this.stopSnmpd();
  }

  async readState(): Promise<DeviceState> {
    const child = await readPid(this.host, this.vrrpPidPath);
    const running = child !== undefined && (await this.host.exec(["kill", "-0", String(child)])).code === 0;
    const log = await this.collectLogs();
    const vrrp = (this.config?.vrrp ?? []).map((v) => ({
      vrid: v.vrid,
      state: lastState(log, instanceName(v)),
    }));
    return { running, vrrp, counters: {} };
  }

  async injectFault(fault: Fault): Promise<void> {
    if (await linkFault(this.host, fault)) return;
    if (fault.kind === "crash") return this.stop("crash");
    throw unsupportedFault(this.name, fault);
  }

  collectLogs(): Promise<string> {
    return readRemoteFile(this.host, this.logPath);
  }

  collectConfig(): Promise<string> {
    return readRemoteFile(this.host, this.confPath);
  }

  async dispose(): Promise<void> {
    await this.stop("crash").catch(() => {});
    // use_vmac interfaces outlive a killed keepalived; remove them so the next case starts clean.
    for (const v of this.config?.vrrp ?? []) {
      await this.host.exec(["ip", "link", "del", vmacName(v)]).catch(() => {});
    }
  }
}

function instanceName(v: VrrpInstanceConfig): string {
  return `VR_${v.vrid}`;
}

function vmacName(v: VrrpInstanceConfig): string {
  return `vrrp.${v.vrid}`;
}

/** The state from keepalived's last "(VR_n) Entering X STATE" log line. */
export function lastState(log: string, instance: string): VrrpStateName {
  const re = new RegExp(`\\(${instance}\\) Entering (MASTER|BACKUP|FAULT) STATE`, "g");
  let state: VrrpStateName = "initialize";
  for (const m of log.matchAll(re))
    state = m[1] === "MASTER" ? "master" : m[1] === "BACKUP" ? "backup" : "unknown";
  return state;
}

export function renderKeepalivedConf(
  hostName: string,
  instances: readonly VrrpInstanceConfig[],
  agentxSocket?: string,
): string {
  const version = instances[0]?.version ?? 3;
  const blocks = instances.map((v) => {
    if (v.version === 2 && v.advertIntervalMs % 1000 !== 0)
      throw new Error(`VRRPv2 advertisement interval must be whole seconds, got ${v.advertIntervalMs} ms`);
    return [
      `vrrp_instance ${instanceName(v)} {`,
      "  state BACKUP",
      `  interface ${v.interface}`,
      `  use_vmac ${vmacName(v)}`,
      `  virtual_router_id ${v.vrid}`,
      `  priority ${v.priority}`,
      `  advert_int ${v.advertIntervalMs / 1000}`,
      ...(v.preempt ? [] : ["  nopreempt"]),
      // RFC 9568 Accept_Mode (keepalived.conf(5): accept / no_accept; without either,
      // keepalived accepts unless vrrp_strict).
      ...(v.acceptMode === undefined ? [] : [v.acceptMode ? "  accept" : "  no_accept"]),
      "  virtual_ipaddress {",
      ...v.virtualAddresses.map((a) => `    ${a}`),
      "  }",
      "}",
    ].join("\n");
  });
  return [
    "# Written by Tandem's keepalived adapter",
    "global_defs {",
    `  router_id tandem_${hostName}`,
    `  vrrp_version ${version}`,
    ...(agentxSocket ? ["  enable_snmp_rfcv3", `  snmp_socket unix:${agentxSocket}`] : []),
    "}",
    ...blocks,
    "",
  ].join("\n");
}

export const keepalivedRegistration: AdapterRegistration = {
  name: "keepalived",
  description: "keepalived 2.2.x (Debian) VRRP daemon in a lab host",
  suites: ["vrrp"],
  create: (target) => new KeepalivedAdapter(target),
  knownDeviations: {
    "vrrp.fwd-backup-silent":
      "keepalived keeps its use_vmac interface (vrrp.7, carrying the virtual MAC) up in BACKUP state and only " +
      "removes the virtual address, so the kernel still accepts frames sent to the virtual MAC and routes them: " +
      "the far-side capture shows them leaving the DUT's eth1 while keepalived logged BACKUP. On a learning " +
      "switch a backup seldom receives such frames; on a hub, or when a switch floods, it forwards them " +
      "(RFC 5798 6.4.2 says it MUST NOT).",
  },
};
