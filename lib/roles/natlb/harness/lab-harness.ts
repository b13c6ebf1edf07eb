import type { Lab } from "../../../lab/lab.ts";
import { type AgentClient, launchAgent } from "../../../remote/agent-launcher.ts";
import {
  type ClientLoadOptions,
  type ClientLoadReport,
  emptyClientLoadReport,
} from "../../../traffic/http-load.ts";
import type { NatlbConfig } from "../config.ts";
import type { BalancerView, VipView } from "../controller.ts";
import type { HoldReport } from "../hold.ts";
import type { MoveKind, MoveReport } from "../move.ts";

/**
 * Brings the NAT-LB roles up on a running lab (Fig. 3 / Fig. 13): a web server and a
 * table keeper on every server, a balancer agent on every balancer, the controller on
 * the control server, a client agent on every client host. Used by the lab tests, the
 * bench and `tandem natlb`.
 */
export interface NatlbRig {
  lab: Lab;
  config: NatlbConfig;
  balancers: Map<string, AgentClient>;
  keepers: Map<string, AgentClient>;
  webs: Map<string, AgentClient>;
  clients: Map<string, AgentClient>;
  controller: AgentClient;
  journal: string;
}

export interface ControllerStatus {
  balancers: BalancerView[];
  vips: VipView[];
  moves: MoveReport[];
}

async function launch(lab: Lab, host: string, agent: string, args: unknown): Promise<AgentClient> {
  return launchAgent(lab.host(host).remote, agent, { args, hostLabel: host });
}

/** The control channel's status file of a NAT-LB agent (`tandem natlb show` reads it). */
export function natlbChannelFile(
  runDir: string,
  role: "balancer" | "keeper" | "controller",
  host: string,
): string {
  return `${runDir}/natlb-channel-${role}-${host}.json`;
}

export async function startNatlb(
  lab: Lab,
  config: NatlbConfig,
  options: {
    clientHosts?: string[];
    controllerAuto?: boolean;
    push?: boolean;
    /** Seeded faults of the balancers and keepers (lib/roles/seeded-faults.ts). */
    faults?: string[];
  } = {},
): Promise<NatlbRig> {
  const faults = options.faults?.length ? { faults: options.faults } : {};
  const servers = [...new Set(config.vips.flatMap((v) => v.servers.map((s) => s.host)))];
  // On the controller agent's host (a physical host has no /run/tandem/<prefix> of ours).
  const journal = `${await lab.host(config.controller.host).runDir()}/natlb-moves.jsonl`;
  const webs = new Map<string, AgentClient>();
  const keepers = new Map<string, AgentClient>();
  const balancers = new Map<string, AgentClient>();
  const clients = new Map<string, AgentClient>();
  await Promise.all(
    servers.map(async (host) => {
      const port = config.vips.flatMap((v) => v.servers).find((s) => s.host === host)?.port ?? 8080;
      const web = await launch(lab, host, "natlb-web", {});
      await web.call("start", { port, name: host });
      webs.set(host, web);
      const statusFile = natlbChannelFile(await lab.host(host).runDir(), "keeper", host);
      const keeper = await launch(lab, host, "natlb-keeper", { config, host, statusFile, ...faults });
      await keeper.call("start");
      keepers.set(host, keeper);
    }),
  );
  await Promise.all(
    Object.keys(config.balancers).map(async (name) => {
      const statusFile = natlbChannelFile(await lab.host(name).runDir(), "balancer", name);
      const b = await launch(lab, name, "natlb-balancer", { config, name, statusFile, ...faults });
      await b.call("start", { push: options.push ?? true }, { timeoutMs: 30_000 });
      balancers.set(name, b);
    }),
  );
  const controllerStatus = natlbChannelFile(
    await lab.host(config.controller.host).runDir(),
    "controller",
    config.controller.host,
  );
  const controller = await launch(lab, config.controller.host, "natlb-controller", {
    config,
    journal,
    statusFile: controllerStatus,
  });
  await controller.call("start", { auto: options.controllerAuto ?? false }, { timeoutMs: 30_000 });
  const clientHosts = options.clientHosts ?? lab.hostNames.filter((h) => lab.host(h).spec?.role === "client");
  await Promise.all(clientHosts.map(async (h) => clients.set(h, await launch(lab, h, "natlb-clients", {}))));
  return { lab, config, balancers, keepers, webs, clients, controller, journal };
}

export async function stopNatlb(rig: NatlbRig | undefined): Promise<void> {
  if (!rig) return;
  const all = [
    rig.controller,
    ...rig.clients.values(),
    ...rig.balancers.values(),
    ...rig.keepers.values(),
    ...rig.webs.values(),
  ];
  await Promise.all(all.map((a) => a.stop().catch(() => undefined)));
}

/** Restarts the controller agent (same journal): it finishes or undoes a half-done move. */
export async function restartController(
  rig: NatlbRig,
): Promise<{ recovered: MoveReport[]; status: ControllerStatus }> {
  await rig.controller.stop().catch(() => undefined);
  rig.controller = await launch(rig.lab, rig.config.controller.host, "natlb-controller", {
    config: rig.config,
    journal: rig.journal,
    statusFile: natlbChannelFile(
      await rig.lab.host(rig.config.controller.host).runDir(),
      "controller",
      rig.config.controller.host,
    ),
  });
  return rig.controller.call("start", { recover: true }, { timeoutMs: 60_000 });
}

export function move(
  rig: NatlbRig,
  vip: string,
  to: string,
  kind: MoveKind = "planned",
): Promise<MoveReport> {
  return rig.controller.call<MoveReport>("move", { vip, to, kind }, { timeoutMs: 60_000 });
}

export function status(rig: NatlbRig): Promise<ControllerStatus> {
  return rig.controller.call<ControllerStatus>("status");
}

/** Starts `total` connections to `vip`, spread over the client hosts. */
export async function startLoad(
  rig: NatlbRig,
  id: string,
  vip: string,
  total: { connections: number; downloads: number },
  tuning: Partial<ClientLoadOptions> = {},
): Promise<ClientLoadReport[]> {
  const hosts = [...rig.clients.keys()];
  const share = (n: number, i: number) => Math.floor(n / hosts.length) + (i < n % hosts.length ? 1 : 0);
  return Promise.all(
    hosts.map((h, i) =>
      (rig.clients.get(h) as AgentClient).call<ClientLoadReport>(
        "start",
        {
          id,
          target: vip,
          port: rig.config.vips.find((v) => v.address === vip)?.port ?? 80,
          connections: share(total.connections, i),
          downloads: share(total.downloads, i),
          requestIntervalMs: 1000,
          downloadBytes: 50_000_000,
          downloadRate: 50_000,
          rampMs: 1500,
          stallMs: 1000,
          ...tuning,
        },
        { timeoutMs: 60_000 },
      ),
    ),
  );
}

export function sumReports(reports: readonly ClientLoadReport[]): ClientLoadReport {
  const out = emptyClientLoadReport(reports[0]?.target ?? "");
  for (const r of reports) {
    for (const k of [
      "opened",
      "failedConnects",
      "established",
      "resets",
      "otherErrors",
      "requestsOk",
      "corrupt",
      "stalls",
      "downloadBytes",
      "downloadsDone",
      "open",
    ] as const)
      out[k] += r[k];
    out.maxLatencyMs = Math.max(out.maxLatencyMs, r.maxLatencyMs);
    for (const [c, n] of Object.entries(r.errorCodes)) out.errorCodes[c] = (out.errorCodes[c] ?? 0) + n;
  }
  return out;
}

export async function loadReport(rig: NatlbRig, id: string, stop = false): Promise<ClientLoadReport> {
  const reports = await Promise.all(
    [...rig.clients.values()].map((c) => c.call<ClientLoadReport>(stop ? "stop" : "report", { id })),
  );
  return sumReports(reports);
}

/** The new owner's full hold report of a move (the ack carries only the count). */
export async function holdReportOf(
  rig: NatlbRig,
  balancer: string,
  moveId: string,
): Promise<HoldReport | undefined> {
  const reports = await (rig.balancers.get(balancer) as AgentClient).call<
    (HoldReport & { moveId: number })[]
  >("holdReports");
  return reports.find((r) => String(r.moveId) === moveId);
}

/**
 * TCP counters of a host (its namespace's /proc/net/snmp and netstat via nstat): a lost
 * segment shows up as a retransmission, a duplicated one as a D-SACK.
 */
export async function tcpCounters(lab: Lab, host: string): Promise<Record<string, number>> {
  const r = await lab
    .host(host)
    .exec(["nstat", "-asz", "TcpRetransSegs", "TcpExtTCPDSACKRecv", "TcpExtTCPDSACKOldSent", "TcpOutRsts"]);
  const out: Record<string, number> = {};
  for (const line of r.stdout.split("\n")) {
    const m = /^(\S+)\s+(\d+)/.exec(line);
    if (m?.[1] && m[2]) out[m[1]] = Number(m[2]);
  }
  return out;
}
