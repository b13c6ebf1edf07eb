/**
 * `tandem vrls up|down LAB` and `tandem natlb up|down LAB`: the reference roles of a
 * running lab's `vrls:` / `natlb:` section, without a suite (issue 17, item 7).
 *
 * Agents live as long as the SSH channel that started them (lib/remote/agent-launcher.ts),
 * so `up` cannot start them and exit. It starts a detached holder process (`tandem vrls
 * hold LAB`, hidden) that starts the roles through the roles' lab harnesses (the same
 * code the suites and the reference adapter use), waits until they are ready, records
 * that in /run/tandem/PREFIX/reference-ROLE.json and then keeps the channels open. `up`
 * waits for that record to say ready (or failed) and prints it; `down` sends the holder
 * SIGTERM, which stops the agents and removes the record. When the lab is torn down
 * underneath, the agents' channels close and the holder exits by itself.
 */
import { spawn } from "node:child_process";
import { existsSync, openSync, readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { attachLab, findLabRecord, type Lab } from "../lab/index.ts";
import { stateDir } from "../lab/prefix.ts";
import type { AgentClient } from "../remote/index.ts";
import { status as natlbStatus, startNatlb, stopNatlb } from "../roles/natlb/harness/lab-harness.ts";
// The roles' lab harnesses: the one import to re-point when they move (issue 12).
import { loadNatlbSection } from "../roles/natlb/section.ts";
import { loadVrlsConfig } from "../roles/vrls/config.ts";
import {
  type RunningVirtualRouter,
  startInfoResponders,
  startVirtualRouter,
  virtualRouterConfig,
} from "../roles/vrls/harness/lab-harness.ts";
import { cidrContains, parseCidr } from "../topology/address.ts";
import { loadTopology } from "../topology/load.ts";

export type ReferenceRole = "vrls" | "natlb";

export interface HolderRecord {
  role: ReferenceRole;
  lab: string;
  prefix: string;
  pid: number;
  state: "starting" | "ready" | "failed";
  startedAt: string;
  readyAt?: string;
  error?: string;
  /** vrls: per virtual router, master and allocation; natlb: VIP -> owner. */
  ready?: unknown;
  log: string;
}

export function holderFile(prefix: string, role: ReferenceRole): string {
  return join(stateDir(prefix), `reference-${role}.json`);
}

function readHolder(prefix: string, role: ReferenceRole): HolderRecord | undefined {
  const file = holderFile(prefix, role);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as HolderRecord;
  } catch {
    return undefined; // being written
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `probe` every 100 ms until it returns a value; throws naming `what` after `timeoutMs`. */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Started {
  agents: AgentClient[];
  ready: unknown;
  stop(): Promise<void>;
}

/**
 * VRLS: every virtual router of the section, info responders on the end systems; ready
 * when each has a single master and has allocated every end system on its directly
 * attached subnets (they answer the ICMP information request; end systems behind another
 * router are learned passively once they send, see docs/reference-on-demand).
 */
async function startVrls(lab: Lab, timeoutMs: number): Promise<Started> {
  const loaded = loadTopology(lab.record.topologyFile);
  const routers = loadVrlsConfig(loaded);
  const endSystems = Object.entries(loaded.topology.hosts).filter(([, h]) => h.role === "end-system");
  const responders = await startInfoResponders(
    lab,
    endSystems.map(([name]) => name),
  );
  const running: RunningVirtualRouter[] = [];
  try {
    for (const vr of routers)
      running.push(await startVirtualRouter(lab, virtualRouterConfig(loaded, vr.name)));
    const ready: Record<string, { master: string; allocation: Record<string, string> }> = {};
    for (const r of running) {
      const direct = r.config.spec.subnets.filter((s) => !s.via).map((s) => parseCidr(s.cidr));
      const conditions = endSystems.filter(([, h]) =>
        Object.values(h.interfaces).some((i) =>
          (i.addresses ?? []).some((a) => direct.some((d) => cidrContains(d, a.split("/")[0] ?? ""))),
        ),
      ).length;
      // With preemption (the default) the settled master is the one highest priority: wait for
      // it, not for whoever became master first while the others were still starting. Equal top
      // priorities: the first master keeps the role (docs/vrls.md), so any single master.
      const master = await r.waitForMaster(
        timeoutMs,
        r.config.spec.preempt ? settledMaster(r.config.members) : undefined,
      );
      ready[r.config.name] = { master, allocation: await r.waitAllocated(conditions, timeoutMs) };
    }
    return {
      agents: [...responders, ...running.flatMap((r) => [...r.agents.values()])],
      ready,
      stop: async () => {
        await Promise.all(running.map((r) => r.stop()));
        await Promise.all(responders.map((a) => a.stop().catch(() => undefined)));
      },
    };
  } catch (e) {
    await Promise.all(running.map((r) => r.stop()));
    await Promise.all(responders.map((a) => a.stop().catch(() => undefined)));
    throw e;
  }
}

/** NAT-LB: web servers, keepers, balancers, controller and client agents; ready when every VIP has an owner. */
async function startNatlbRoles(lab: Lab, timeoutMs: number): Promise<Started> {
  const config = loadNatlbSection(loadTopology(lab.record.topologyFile));
  const rig = await startNatlb(lab, config);
  try {
    let last: { vip: string; owner: string | undefined }[] = [];
    const until = Date.now() + timeoutMs;
    for (;;) {
      last = (await natlbStatus(rig)).vips;
      if (last.length === config.vips.length && last.every((v) => v.owner)) break;
      if (Date.now() > until)
        throw new Error(`VIPs not all owned within ${timeoutMs / 1000} s: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      agents: [
        rig.controller,
        ...rig.balancers.values(),
        ...rig.keepers.values(),
        ...rig.webs.values(),
        ...rig.clients.values(),
      ],
      ready: Object.fromEntries(last.map((v) => [v.vip, v.owner])),
      stop: () => stopNatlb(rig),
    };
  } catch (e) {
    await stopNatlb(rig);
    throw e;
  }
}

/** The hidden `hold` command: runs in the detached process until SIGTERM/SIGINT or an agent ends. */
export async function holdReference(role: ReferenceRole, labName: string, timeoutMs: number): Promise<void> {
  const lab = await attachLab(labName);
  const file = holderFile(lab.prefix, role);
  const record: HolderRecord = {
    role,
    lab: lab.name,
    prefix: lab.prefix,
    pid: process.pid,
    state: "starting",
    startedAt: new Date().toISOString(),
    log: join(stateDir(lab.prefix), `reference-${role}.log`),
  };
  const save = () => writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  await save();
  let started: Started;
  try {
    started = role === "vrls" ? await startVrls(lab, timeoutMs) : await startNatlbRoles(lab, timeoutMs);
  } catch (e) {
    record.state = "failed";
    record.error = (e as Error).message;
    await save();
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  }
  record.state = "ready";
  record.readyAt = new Date().toISOString();
  record.ready = started.ready;
  await save();
  let stopping = false;
  const finish = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${new Date().toISOString()} stopping: ${why}\n`);
    await started.stop().catch(() => undefined);
    await rm(file, { force: true });
    for (const h of lab.hostNames) lab.host(h).close();
    process.exit(code);
  };
  process.on("SIGTERM", () => void finish("SIGTERM", 0));
  process.on("SIGINT", () => void finish("SIGINT", 0));
  for (const a of started.agents)
    a.on("exit", (exit) => void finish(`an agent ended (${JSON.stringify(exit)}): lab down?`, 1));
  // The agents' SSH channels keep the event loop alive.
}

/** `tandem ROLE up LAB`: starts the holder and waits until it reports ready or failed. */
export async function referenceUp(
  role: ReferenceRole,
  labName: string,
  timeoutMs: number,
): Promise<HolderRecord> {
  const record = await findLabRecord(labName);
  const existing = readHolder(record.prefix, role);
  if (existing && alive(existing.pid))
    throw new Error(
      `the ${role} reference is already up on ${record.name} (pid ${existing.pid}); tandem ${role} down ${record.name}`,
    );
  const log = join(stateDir(record.prefix), `reference-${role}.log`);
  const fd = openSync(log, "w");
  const child = spawn(
    process.execPath,
    [process.argv[1] ?? "", role, "hold", record.name, "--timeout", String(timeoutMs / 1000)],
    { detached: true, stdio: ["ignore", fd, fd] },
  );
  child.unref();
  const pid = child.pid ?? 0;
  const done = await waitFor(
    `the ${role} reference on ${record.name} getting ready`,
    timeoutMs + 30_000,
    () => {
      const h = readHolder(record.prefix, role);
      if (h && h.pid === pid && h.state !== "starting") return h;
      if (!alive(pid)) {
        const tail = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").slice(-5).join("\n") : "";
        throw new Error(`the ${role} holder (pid ${pid}) ended before it was ready; ${log}:\n${tail}`);
      }
      return undefined;
    },
  ).catch((e: Error) => {
    if (alive(pid)) process.kill(pid, "SIGTERM");
    throw e;
  });
  if (done.state === "failed")
    throw new Error(`the ${role} reference did not get ready: ${done.error} (log ${log})`);
  return done;
}

/** `tandem ROLE down LAB`: SIGTERM to the holder; returns once it has stopped the agents and exited. */
export async function referenceDown(role: ReferenceRole, labName: string): Promise<number> {
  const record = await findLabRecord(labName);
  const h = readHolder(record.prefix, role);
  if (!h || !alive(h.pid)) {
    await rm(holderFile(record.prefix, role), { force: true });
    throw new Error(`the ${role} reference is not up on ${record.name}`);
  }
  process.kill(h.pid, "SIGTERM");
  await waitFor(`the ${role} holder (pid ${h.pid}) stopping`, 30_000, () =>
    alive(h.pid) ? undefined : true,
  );
  return h.pid;
}

export function formatReady(h: HolderRecord): string {
  const secs = ((Date.parse(h.readyAt ?? h.startedAt) - Date.parse(h.startedAt)) / 1000).toFixed(1);
  const lines = [`${h.role} reference up on ${h.lab} (${h.prefix}), holder pid ${h.pid}, ready in ${secs} s`];
  if (h.role === "vrls") {
    for (const [vr, r] of Object.entries(h.ready as Record<string, { master: string; allocation: object }>))
      lines.push(`  ${vr}: master ${r.master}, ${Object.keys(r.allocation).length} end systems allocated`);
  } else {
    for (const [vip, owner] of Object.entries(h.ready as Record<string, string>))
      lines.push(`  VIP ${vip} owned by ${owner}`);
  }
  lines.push(`  tandem ${h.role} show ${h.lab}   /   tandem ${h.role} down ${h.lab}   (log ${h.log})`);
  return lines.join("\n");
}

/** The member a preempting virtual router settles on: the one with the highest priority, if one is. */
export function settledMaster(members: readonly { host: string; priority: number }[]): string | undefined {
  const top = Math.max(...members.map((m) => m.priority));
  const best = members.filter((m) => m.priority === top);
  return best.length === 1 ? best[0]?.host : undefined;
}
