import { readdir, rm } from "node:fs/promises";
import { heldWithin } from "../remote/wait.ts";
import { run } from "./command.ts";
import { NAMESPACE_PATTERN, stateDir } from "./prefix.ts";

/** Lists the machine's network namespaces. */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run(["ip", "netns", "list"], { allowFailure: true });
  return stdout
    .split("\n")
    .map((l) => l.split(" ")[0]?.trim() ?? "")
    .filter(Boolean);
}

export async function namespacesOf(prefix: string): Promise<string[]> {
  return (await listNamespaces()).filter((ns) => ns.startsWith(`${prefix}-`));
}

async function namespacePids(namespaces: readonly string[]): Promise<Set<number>> {
  const pids = new Set<number>();
  await Promise.all(
    namespaces.map(async (ns) => {
      const { stdout } = await run(["ip", "netns", "pids", ns], { allowFailure: true });
      for (const p of stdout.split(/\s+/)) if (/^\d+$/.test(p)) pids.add(Number(p));
    }),
  );
  return pids;
}

function signalAll(pids: Iterable<number>, signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Kills every process inside the given namespaces (sshd, agents, captures, daemons):
 * SIGTERM, 100 ms to exit cleanly, then SIGKILL to what is left. Deleting the namespaces
 * follows either way, so a process that outlives even SIGKILL (D state) does not stop it.
 */
async function killNamespaceProcesses(namespaces: readonly string[]): Promise<void> {
  const pids = await namespacePids(namespaces);
  if (pids.size === 0) return;
  signalAll(pids, "SIGTERM");
  const none = async () => (await namespacePids(namespaces)).size === 0;
  const what = `the processes in ${namespaces.length} namespace(s) to exit`;
  if (await heldWithin(none, { timeoutMs: 100, what })) return;
  signalAll(await namespacePids(namespaces), "SIGKILL");
  await heldWithin(none, { timeoutMs: 1000, what });
}

/**
 * Removes everything a run created: its processes, its namespaces (which takes
 * their veths and bridges with them) and its state dir. Safe to call twice.
 */
export async function teardownPrefix(prefix: string): Promise<{ namespaces: number }> {
  const namespaces = await namespacesOf(prefix);
  await killNamespaceProcesses(namespaces);
  if (namespaces.length > 0) {
    await run(["ip", "-force", "-batch", "-"], {
      input: `${namespaces.map((ns) => `netns delete ${ns}`).join("\n")}\n`,
      allowFailure: true,
    });
  }
  // An emulated physical lab's management links live in the machine's namespace.
  const links = await prefixLinks(prefix);
  if (links.length > 0) {
    await run(["ip", "-force", "-batch", "-"], {
      input: `${links.map((l) => `link delete ${l}`).join("\n")}\n`,
      allowFailure: true,
    });
  }
  await rm(stateDir(prefix), { recursive: true, force: true });
  return { namespaces: namespaces.length };
}

/** Links named `<prefix>-*` in the machine's own namespace (an emulated lab's management network). */
async function prefixLinks(prefix?: string): Promise<string[]> {
  const { stdout } = await run(["ip", "-o", "link", "show"], { allowFailure: true });
  const out: string[] = [];
  for (const line of stdout.split("\n")) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (name && NAMESPACE_PATTERN.test(name) && (!prefix || name.startsWith(`${prefix}-`))) out.push(name);
  }
  return out;
}

/** Every prefix that has a namespace or a state dir on this machine. */
export async function knownPrefixes(): Promise<string[]> {
  const prefixes = new Set<string>();
  for (const ns of await listNamespaces()) {
    const m = NAMESPACE_PATTERN.exec(ns);
    if (m?.[1]) prefixes.add(m[1]);
  }
  for (const link of await prefixLinks()) {
    const m = NAMESPACE_PATTERN.exec(link);
    if (m?.[1]) prefixes.add(m[1]);
  }
  try {
    for (const d of await readdir("/run/tandem")) if (/^td[a-z0-9]{5}$/.test(d)) prefixes.add(d);
  } catch {
    // no state dir yet
  }
  return [...prefixes].sort();
}

/** Removes the leftovers of every run (crashed or not). */
export async function sweep(
  options: { only?: string[] } = {},
): Promise<{ prefix: string; namespaces: number }[]> {
  const prefixes = (await knownPrefixes()).filter((p) => !options.only || options.only.includes(p));
  const out: { prefix: string; namespaces: number }[] = [];
  for (const prefix of prefixes) out.push({ prefix, ...(await teardownPrefix(prefix)) });
  return out;
}
