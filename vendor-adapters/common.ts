import { heldWithin } from "../lib/remote/wait.ts";
import type { AdapterHost, Fault } from "./types.ts";

/** Helpers shared by adapters that run a daemon on a lab host over SSH. */

export async function mustExec(
  host: AdapterHost,
  argv: readonly string[] | string,
  what: string,
): Promise<string> {
  const r = await host.exec(argv, { timeoutMs: 30_000 });
  if (r.code !== 0) {
    throw new Error(`${host.name}: ${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}

export async function writeRemoteFile(host: AdapterHost, path: string, text: string): Promise<void> {
  const r = await host.exec(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", path], {
    input: text,
    timeoutMs: 30_000,
  });
  if (r.code !== 0) throw new Error(`${host.name}: cannot write ${path}: ${r.stderr.trim()}`);
}

export async function readRemoteFile(host: AdapterHost, path: string): Promise<string> {
  const r = await host.exec(["cat", path], { timeoutMs: 30_000 });
  return r.code === 0 ? r.stdout : "";
}

/** Reads a pid file; undefined when absent or not a number. */
export async function readPid(host: AdapterHost, path: string): Promise<number | undefined> {
  const text = (await readRemoteFile(host, path)).trim();
  const pid = Number(text);
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

export async function signalPid(
  host: AdapterHost,
  pid: number,
  signal: "TERM" | "KILL" | "INT",
): Promise<void> {
  await host.exec(["kill", `-${signal}`, String(pid)], { timeoutMs: 10_000 });
}

/** Waits until `pid` is gone (kill -0 fails) or the deadline passes; returns true when gone. */
export function waitPidGone(host: AdapterHost, pid: number, timeoutMs: number): Promise<boolean> {
  return heldWithin(
    async () => (await host.exec(["kill", "-0", String(pid)], { timeoutMs: 5_000 })).code !== 0,
    {
      timeoutMs,
      what: `process ${pid} on ${host.name} to exit`,
      everyMs: 100,
    },
  );
}

/** Link faults are the same on every Linux-based device: the interface goes down or up. */
export async function linkFault(host: AdapterHost, fault: Fault): Promise<boolean> {
  if (fault.kind === "link-down" || fault.kind === "link-up") {
    await mustExec(
      host,
      ["ip", "link", "set", "dev", fault.interface, fault.kind === "link-down" ? "down" : "up"],
      fault.kind,
    );
    return true;
  }
  return false;
}

export function primaryHost(hosts: Readonly<Record<string, AdapterHost>>, primary: string): AdapterHost {
  const h = hosts[primary];
  if (!h) throw new Error(`device host "${primary}" is not among ${Object.keys(hosts).join(", ")}`);
  return h;
}
