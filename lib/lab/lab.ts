import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  type AgentClient,
  type CommandHost,
  type ExecOptions,
  type ExecResult,
  type LaunchAgentOptions,
  launchAgent,
  RemoteHost,
  startSshd,
  writeLabKeys,
} from "../remote/index.ts";
import { type LoadedTopology, loadTopology } from "../topology/load.ts";
import type { HostSpecT, Topology } from "../topology/schema.ts";
import { controlPlaneCpus } from "./cpus.ts";
import { probeHostFeatures } from "./host-features.ts";
import { mapLimit } from "./limit.ts";
import {
  type HostProblem,
  LabHostsError,
  measureClockOffset,
  problemOf,
  significantOffsetMs,
} from "./physical.ts";
import { namespaceName, newRunPrefix, PREFIX_PATTERN, stateDir } from "./prefix.ts";
import { buildManifest, prepareHost } from "./prepare.ts";
import { registerLiveLab, unregisterLiveLab } from "./signals.ts";
import { type ClockOffset, findLabRecord, type LabRecord, readLabRecords, writeLabRecord } from "./state.ts";
import { teardownPrefix } from "./teardown.ts";
import { buildNetwork, type Progress } from "./virtual.ts";

/** One host of a running lab, reached over SSH (a CommandHost like every other command target). */
export class LabHost implements CommandHost {
  private remoteHost: RemoteHost | undefined;

  constructor(
    readonly name: string,
    readonly spec: HostSpecT | undefined,
    private readonly record: LabRecord,
  ) {}

  /** The host's network namespace (virtual labs only). */
  get namespace(): string | undefined {
    return this.record.hosts[this.name]?.namespace;
  }

  /** The host's SSH session (one reused connection, opened on first use). */
  get remote(): RemoteHost {
    if (!this.remoteHost) {
      const h = this.record.hosts[this.name];
      if (!h) throw new Error(`lab ${this.record.name}: no host named "${this.name}"`);
      const privateKey = readFileSync(h.keyPath);
      const hostPublicKey = h.hostKeyPath ? readFileSync(`${h.hostKeyPath}.pub`, "utf8") : undefined;
      this.remoteHost = new RemoteHost({
        name: this.name,
        target: h.namespace
          ? { kind: "namespace", namespace: h.namespace, port: h.port }
          : { kind: "tcp", host: h.address ?? "127.0.0.1", port: h.port },
        username: h.user,
        privateKey,
        ...(hostPublicKey ? { hostPublicKey } : {}),
        ...(h.hostKeyFingerprint ? { hostKeyFingerprint: h.hostKeyFingerprint } : {}),
        ...(h.preparedDir ? { preparedDir: h.preparedDir } : {}),
      });
    }
    return this.remoteHost;
  }

  /**
   * A directory for this run's files on the host (journals, status files, configs),
   * created if missing. Virtual hosts share the run's state dir; a physical host has its
   * own `/tmp/tandem-<prefix>` (the controller's /run/tandem is not there).
   */
  async runDir(): Promise<string> {
    if (this.record.backend !== "physical") return stateDir(this.record.prefix);
    const dir = `/tmp/tandem-${this.record.prefix}`;
    await this.remote.execOrThrow(["mkdir", "-p", dir], { timeoutMs: 20_000 });
    return dir;
  }

  /** Runs a command on the host over SSH. */
  exec(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return this.remote.exec(command, options);
  }

  /** Like exec, but a non-zero exit throws (RemoteCommandError, a CommandError). */
  execOrThrow(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return this.remote.execOrThrow(command, options);
  }

  /**
   * Starts an agent (dist/agents/NAME.mjs) on this host over SSH. On a physical host
   * the bundle is uploaded first; a virtual host runs it from the shared checkout.
   */
  launchAgent(
    agentName: string,
    args?: unknown,
    options: Omit<LaunchAgentOptions, "args"> = {},
  ): Promise<AgentClient> {
    const upload = this.record.backend === "physical";
    const prepared = this.record.hosts[this.name]?.preparedDir;
    return launchAgent(this.remote, agentName, {
      upload,
      // A prepared physical host runs the bundle installed by `tandem lab prepare`, whose addons sit beside it.
      ...(prepared ? { remoteBundlePath: `${prepared}/agents/${agentName}.mjs` } : {}),
      ...options,
      ...(args === undefined ? {} : { args }),
    });
  }

  close(): void {
    this.remoteHost?.close();
    this.remoteHost = undefined;
  }
}

export interface UpOptions {
  /** A name to find the lab by from other commands (`tandem lab exec NAME ...`); default: the prefix. */
  name?: string;
  /** Force a backend; default: physical when the topology has an inventory, else virtual. */
  backend?: "virtual" | "physical";
  progress?: Progress;
  /** Keep the lab registered for teardown on SIGINT/SIGTERM in this process (default true). */
  teardownOnSignal?: boolean;
  /**
   * The run prefix (td + 5 characters); default: a new random one. `tandem certify` picks
   * it before the suite's worker brings the lab up, so it can tear the lab down itself.
   */
  prefix?: string;
}

/** A running lab: its hosts, reached over SSH, and its teardown. */
export class Lab {
  private readonly hostHandles = new Map<string, LabHost>();
  private downed: Promise<void> | undefined;

  constructor(
    readonly record: LabRecord,
    readonly topology: Topology | undefined,
  ) {
    for (const name of Object.keys(record.hosts)) {
      this.hostHandles.set(name, new LabHost(name, topology?.hosts[name], record));
    }
  }

  get name(): string {
    return this.record.name;
  }
  get prefix(): string {
    return this.record.prefix;
  }
  get backend(): "virtual" | "physical" {
    return this.record.backend;
  }
  get hostNames(): string[] {
    return [...this.hostHandles.keys()];
  }

  host(name: string): LabHost {
    const h = this.hostHandles.get(name);
    if (!h)
      throw new Error(`lab ${this.name}: no host named "${name}" (hosts: ${this.hostNames.join(", ")})`);
    return h;
  }

  /**
   * A host's clock minus the controller's, in ms, as measured at lab start (physical labs);
   * 0 where every host runs on the controller's clock (virtual labs).
   */
  clockOffsetMs(host: string): number {
    return significantOffsetMs(this.record.clocks?.[host]);
  }

  /**
   * Where role agents' event loops run: on a virtual lab every CPU but the one the hub's frames
   * are steered to (lib/lab/cpus.ts); undefined on a physical lab (each host is its own machine).
   */
  controlPlaneCpus(): number[] | undefined {
    return this.backend === "virtual" ? controlPlaneCpus() : undefined;
  }

  /** The network namespace of a host (virtual labs); throws on a physical lab. */
  namespace(host: string): string {
    const ns = this.host(host).namespace;
    if (!ns) throw new Error(`lab ${this.name} is ${this.backend}: host "${host}" has no namespace`);
    return ns;
  }

  /** Closes SSH sessions and, for a virtual lab, removes every object of the run. Idempotent. */
  down(): Promise<void> {
    this.downed ??= (async () => {
      for (const h of this.hostHandles.values()) h.close();
      unregisterLiveLab(this.prefix);
      // Virtual: processes, namespaces and state. Physical: only the state dir (the hosts are not ours).
      await teardownPrefix(this.prefix);
    })();
    return this.downed;
  }
}

function load(source: string | LoadedTopology): LoadedTopology {
  return typeof source === "string" ? loadTopology(source) : source;
}

/** Brings a lab up (virtual: namespaces + sshd per host; physical: the inventory) and returns it. */
export async function upLab(source: string | LoadedTopology, options: UpOptions = {}): Promise<Lab> {
  const loaded = load(source);
  const backend = options.backend ?? (loaded.topology.inventory ? "physical" : "virtual");
  const name = options.name ?? loaded.topology.lab;
  if (options.name) {
    const clash = (await readLabRecords()).find((r) => r.name === options.name);
    if (clash)
      throw new Error(
        `a lab named "${options.name}" is already running (${clash.prefix}); take it down first`,
      );
  }
  if (options.prefix !== undefined && !PREFIX_PATTERN.test(options.prefix))
    throw new Error(`lab prefix "${options.prefix}" is not td + 5 lowercase letters or digits`);
  return backend === "physical" ? upPhysical(loaded, name, options) : upVirtual(loaded, name, options);
}

async function upVirtual(loaded: LoadedTopology, name: string, options: UpOptions): Promise<Lab> {
  const prefix = options.prefix ?? newRunPrefix();
  const progress = options.progress ?? (() => {});
  const dir = stateDir(prefix);
  const hosts = Object.keys(loaded.topology.hosts);
  // Registered before anything exists, so an interrupt during bring-up still cleans up.
  if (options.teardownOnSignal !== false) registerLiveLab(prefix, () => teardownPrefix(prefix));
  try {
    await buildNetwork(loaded.topology, prefix, progress);
    const keys = await writeLabKeys(join(dir, "keys"), `tandem-${prefix}`);
    const record: LabRecord = {
      name: options.name ?? name,
      prefix,
      backend: "virtual",
      topologyFile: resolve(loaded.file),
      createdAt: new Date().toISOString(),
      pid: process.pid,
      hosts: Object.fromEntries(
        hosts.map((h) => [
          h,
          {
            namespace: namespaceName(prefix, h),
            port: 22,
            user: "root",
            keyPath: keys.clientKeyPath,
            hostKeyPath: keys.hostKeyPath,
          },
        ]),
      ),
    };
    await writeLabRecord(record);
    let started = 0;
    await mapLimit(hosts, 16, async (h) => {
      await startSshd({
        dir: join(dir, "hosts", h),
        namespace: namespaceName(prefix, h),
        listenAddress: "0.0.0.0",
        port: 22,
        hostKeyPath: keys.hostKeyPath,
        authorizedKeysPath: keys.authorizedKeysPath,
      });
      progress("sshd", ++started, hosts.length);
    });
    const lab = new Lab(record, loaded.topology);
    if (options.teardownOnSignal !== false) registerLiveLab(prefix, () => lab.down());
    return lab;
  } catch (error) {
    unregisterLiveLab(prefix);
    await teardownPrefix(prefix);
    throw error;
  }
}

async function upPhysical(loaded: LoadedTopology, name: string, options: UpOptions): Promise<Lab> {
  const inventory = loaded.topology.inventory ?? {};
  const missing = Object.keys(loaded.topology.hosts).filter((h) => !inventory[h]);
  if (missing.length > 0) {
    throw new Error(
      `${loaded.file}: inventory: a physical lab needs an inventory entry for every host; missing: ${missing.join(", ")}`,
    );
  }
  const prefix = options.prefix ?? newRunPrefix();
  const home = process.env.HOME ?? "/root";
  const progress = options.progress ?? (() => {});
  const manifest = buildManifest();
  const record: LabRecord = {
    name,
    prefix,
    backend: "physical",
    topologyFile: resolve(loaded.file),
    createdAt: new Date().toISOString(),
    pid: process.pid,
    hosts: Object.fromEntries(
      Object.entries(inventory).map(([h, e]) => [
        h,
        {
          address: e.address,
          port: e.port,
          user: e.user,
          keyPath: e.key.replace(/^~(?=\/)/, home),
          ...(e.hostKey ? { hostKeyFingerprint: e.hostKey } : {}),
        },
      ]),
    ),
  };
  // Every host is reached, its clock compared and its prepared directory checked (and
  // completed) before anything runs; one unusable host stops the lab from starting.
  const probe = new Lab(record, loaded.topology);
  const problems: HostProblem[] = [];
  const clocks: Record<string, ClockOffset> = {};
  let checked = 0;
  await mapLimit(probe.hostNames, 16, async (h) => {
    const e = inventory[h]!;
    const where = `${e.user}@${e.address}:${e.port}`;
    try {
      const report = await prepareHost(probe.host(h).remote, manifest);
      if (report.problems.length > 0)
        problems.push({
          host: h,
          message: report.problems.join("; "),
          advice: "fix what is named on the host, then `tandem lab prepare FILE` (or start the lab again)",
        });
      else record.hosts[h]!.preparedDir = report.dir;
      // The kernel features the roles use (and the programs that reach them): a host
      // without one ends the start here, not in an obscure failure of a later case.
      const missing = (await probeHostFeatures(probe.host(h).remote)).filter((f) => !f.ok);
      if (missing.length > 0)
        problems.push({
          host: h,
          message: missing.map((f) => `${f.name}: ${f.detail}`).join("; "),
          advice: `${[...new Set(missing.map((f) => f.fix))].join("; ")} on the host (\`tandem doctor --lab FILE\` checks every host)`,
        });
    } catch (error) {
      problems.push(problemOf(h, error, where));
    }
    progress("hosts (ssh, prepare)", ++checked, probe.hostNames.length);
  });
  // Clocks one host at a time: concurrent probes would queue behind each other and widen
  // every round trip (the offset's uncertainty).
  for (const h of probe.hostNames) {
    const e = inventory[h]!;
    if (!problems.some((p) => p.host === h)) {
      try {
        clocks[h] = await measureClockOffset(probe.host(h).remote);
      } catch (error) {
        problems.push(problemOf(h, error, `${e.user}@${e.address}:${e.port}`));
      }
    }
    probe.host(h).close();
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.host.localeCompare(b.host));
    throw new LabHostsError(name, problems);
  }
  record.clocks = Object.fromEntries(Object.keys(inventory).map((h) => [h, clocks[h]!]));
  await writeLabRecord(record);
  // `tandem certify` asks for the offsets beside its report (lib/certify/run.ts).
  const clocksFile = process.env.TANDEM_LAB_CLOCKS;
  if (clocksFile) await writeFile(clocksFile, `${JSON.stringify(record.clocks, null, 2)}\n`);
  const lab = new Lab(record, loaded.topology);
  if (options.teardownOnSignal !== false) registerLiveLab(prefix, () => lab.down());
  return lab;
}

/** Attaches to a lab brought up by another process (`tandem lab up`), by name or prefix. */
export async function attachLab(nameOrPrefix: string): Promise<Lab> {
  const record = await findLabRecord(nameOrPrefix);
  let topology: Topology | undefined;
  try {
    topology = loadTopology(record.topologyFile).topology;
  } catch {
    topology = undefined; // the file moved or changed; the record still reaches the hosts
  }
  return new Lab(record, topology);
}

/** Brings a lab up, runs `fn`, and always tears the lab down (also on throw and on SIGINT). */
export async function withLab<T>(
  source: string | LoadedTopology,
  fn: (lab: Lab) => Promise<T>,
  options: UpOptions = {},
): Promise<T> {
  const lab = await upLab(source, options);
  try {
    return await fn(lab);
  } finally {
    await lab.down();
  }
}
