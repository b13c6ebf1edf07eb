import { readdir, rm } from "node:fs/promises";
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

/** Kills every process inside the given namespaces (sshd, agents, captures, daemons). */
async function killNamespaceProcesses(namespaces: readonly string[]): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const pids = new Set<number>();
    await Promise.all(
      namespaces.map(async (ns) => {
        const { stdout } = await run(["ip", "netns", "pids", ns], { allowFailure: true });
        for (const p of stdout.split(/\s+/)) if (/^\d+$/.test(p)) pids.add(Number(p));
      }),
    );
    if (pids.size === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, attempt === 0 ? "SIGTERM" : "SIGKILL");
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, attempt === 0 ? 100 : 50));
  }
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
