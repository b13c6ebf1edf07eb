import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { heldWithin, WaitTimeoutError, waitUntil } from "./wait.ts";

export interface SshdOptions {
  /** Directory for this sshd's config, pid file and log (created if missing). */
  dir: string;
  /** Network namespace to run in (`ip netns exec`); the machine's own namespace when absent. */
  namespace?: string;
  listenAddress: string;
  /** TCP port; 0 picks a free port (only outside a namespace, where we can probe ports). */
  port: number;
  hostKeyPath: string;
  authorizedKeysPath: string;
  /** How long to wait for "Server listening"; default 10 s. */
  startTimeoutMs?: number;
}

export interface SshdHandle {
  pid: number;
  port: number;
  listenAddress: string;
  namespace?: string;
  configPath: string;
  logPath: string;
  /** Stops this sshd (SIGTERM, then SIGKILL after a grace period); idempotent. */
  stop(): Promise<void>;
}

export class SshdStartError extends Error {
  constructor(
    message: string,
    readonly logPath: string,
  ) {
    super(message);
    this.name = "SshdStartError";
  }
}

const SSHD = "/usr/sbin/sshd"; // sshd insists on an absolute path to re-exec itself
const PRIVSEP_DIR = "/run/sshd";

/** sshd_config for one lab host: key-only root login, nothing read from /etc/ssh. */
export function sshdConfig(options: {
  listenAddress: string;
  port: number;
  hostKeyPath: string;
  authorizedKeysPath: string;
  pidPath: string;
}): string {
  const listen = options.listenAddress.includes(":")
    ? `[${options.listenAddress}]:${options.port}`
    : `${options.listenAddress}:${options.port}`;
  return [
    "# Written by Tandem (lib/remote/sshd.ts); this sshd serves one lab host only.",
    `ListenAddress ${listen}`,
    `HostKey ${options.hostKeyPath}`,
    `AuthorizedKeysFile ${options.authorizedKeysPath}`,
    `PidFile ${options.pidPath}`,
    "UsePAM no",
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "StrictModes no",
    "UseDNS no",
    "MaxSessions 64",
    "MaxStartups 200",
    "MaxAuthTries 6",
    "PrintMotd no",
    "PrintLastLog no",
    "X11Forwarding no",
    "ClientAliveInterval 15",
    "ClientAliveCountMax 4",
    // bash run by sshd sources ~/.bashrc only for a top-level shell (SHLVL < 2); a heavy
    // ~/.bashrc (pyenv init here: ~90 ms) would otherwise be paid by every exec.
    "SetEnv SHLVL=1",
    "Subsystem sftp internal-sftp",
    "LogLevel VERBOSE",
    "",
  ].join("\n");
}

/**
 * Starts a private OpenSSH sshd (`sshd -D -f CONFIG -E LOG`), optionally inside a
 * network namespace, and resolves once it listens. Readiness is read from its log
 * ("Server listening on ..."), which works the same inside a namespace that we
 * cannot connect to from here, and costs no connection attempts.
 */
export async function startSshd(options: SshdOptions): Promise<SshdHandle> {
  if (options.port === 0 && !options.namespace) {
    // Probing a free port is racy (someone may take it before sshd binds), so retry on EADDRINUSE.
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return await startSshdOnce({ ...options, port: await freeLocalPort(options.listenAddress) });
      } catch (error) {
        lastError = error;
        if (!(error instanceof SshdStartError && /Address already in use/i.test(error.message))) throw error;
      }
    }
    throw lastError;
  }
  if (options.port <= 0 || options.port > 65535 || !Number.isInteger(options.port)) {
    throw new Error(`startSshd: bad port ${options.port} (port 0 is allowed only outside a namespace)`);
  }
  return startSshdOnce(options);
}

async function startSshdOnce(options: SshdOptions): Promise<SshdHandle> {
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
  const configPath = join(options.dir, "sshd_config");
  const logPath = join(options.dir, "sshd.log");
  const pidPath = join(options.dir, "sshd.pid");
  await writeFile(
    configPath,
    sshdConfig({
      listenAddress: options.listenAddress,
      port: options.port,
      hostKeyPath: options.hostKeyPath,
      authorizedKeysPath: options.authorizedKeysPath,
      pidPath,
    }),
  );
  await writeFile(logPath, "");
  const sshdArgv = [SSHD, "-D", "-f", configPath, "-E", logPath];
  const argv = options.namespace ? ["ip", "netns", "exec", options.namespace, ...sshdArgv] : sshdArgv;
  // `ip netns exec` execs sshd in place, so the child's pid is sshd's pid.
  // stdout/stderr go to the log too (e.g. `ip netns exec`'s "Cannot open network
  // namespace"); a pipe would outlive our interest and could break sshd when closed.
  const logFd = openSync(logPath, "a");
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", logFd, logFd], detached: true });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
    child.on("error", () => resolve({ code: 127, signal: null }));
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const where = options.namespace ? ` in namespace ${options.namespace}` : "";
  const what = `sshd on ${options.listenAddress}:${options.port}${where}`;

  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  try {
    await waitUntil(
      async () => {
        const log = await readFile(logPath, "utf8").catch(() => "");
        if (/Server listening on /.test(log)) return true;
        if (hasExited) {
          const { code } = await exited;
          const lastWords = await readFile(logPath, "utf8").catch(() => log); // written before it exited
          throw new SshdStartError(
            `${what} exited (code ${code}) before listening: ${lastWords.trim().split("\n").slice(-5).join(" | ")}`,
            logPath,
          );
        }
        return false;
      },
      { timeoutMs: startTimeoutMs, what: `${what} to listen`, everyMs: 10 },
    );
  } catch (e) {
    if (!(e instanceof WaitTimeoutError)) throw e;
    child.kill("SIGKILL");
    throw new SshdStartError(`${what} did not listen within ${startTimeoutMs} ms`, logPath);
  }
  child.unref();

  const pid = child.pid!;
  let stopping: Promise<void> | undefined;
  const handle: SshdHandle = {
    pid,
    port: options.port,
    listenAddress: options.listenAddress,
    configPath,
    logPath,
    stop() {
      stopping ??= (async () => {
        if (hasExited) return;
        // The listener and its per-connection children (each runs in its own session,
        // so a process-group kill would miss them); a connection's commands end with it.
        const connections = await connectionChildren(pid);
        child.kill("SIGTERM");
        for (const connection of connections) killQuietly(connection, "SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
  if (options.namespace) handle.namespace = options.namespace;
  return handle;
}

/**
 * Stops an sshd started by another process (e.g. `tandem lab down` after `lab up`), by
 * its pid: SIGTERM to it and its connection children, SIGKILL after `graceMs`.
 */
export async function stopSshdByPid(pid: number, graceMs = 2000): Promise<void> {
  const connections = await connectionChildren(pid);
  killQuietly(pid, "SIGTERM");
  for (const connection of connections) killQuietly(connection, "SIGTERM");
  const exited = await heldWithin(async () => !(await isRunning(pid)), {
    timeoutMs: graceMs,
    what: `sshd ${pid} to exit`,
  });
  if (!exited) killQuietly(pid, "SIGKILL");
}

async function isRunning(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return status !== "" && !/^State:\s+Z/m.test(status);
}

async function connectionChildren(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "");
  return text
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** A currently free TCP port on `address` (the kernel's pick for port 0). */
export function freeLocalPort(address = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, address, () => {
      const bound = server.address();
      const port = typeof bound === "object" && bound ? bound.port : 0;
      server.close(() => resolve(port));
    });
  });
}
