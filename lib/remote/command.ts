import { spawn } from "node:child_process";
import { CommandError, CommandTimeoutError } from "./errors.ts";
import { commandLine, withEnvironment } from "./quote.ts";

/**
 * The one way Tandem runs a command on a host (issue 12): locally, inside a network
 * namespace, or over SSH (`RemoteHost`, `LabHost`). Every implementation has `exec`, which
 * never throws on an exit code, and `execOrThrow`, which does; both return one result type.
 * A command is an argv (run without a shell locally, quoted over SSH) or a string (shell
 * syntax: `sh -c` locally, the login shell over SSH).
 */
export interface ExecOptions {
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer;
  env?: Readonly<Record<string, string>>;
}

export interface ExecResult {
  /** Exit code; null when the command died by a signal or the connection dropped. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface CommandHost {
  /** The host's name in errors (a lab host name, a namespace, "localhost"). */
  readonly name: string;
  /** Runs a command and collects its output; a non-zero exit is a result, not an error. */
  exec(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Like exec, but a non-zero exit (or a signal) throws CommandError naming host, command and stderr. */
  execOrThrow(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult>;
}

/** Throws CommandError unless the command exited 0; shared by every CommandHost. */
export function checkExit(host: string, command: string | readonly string[], result: ExecResult): ExecResult {
  if (result.code === 0) return result;
  throw new CommandError(
    host,
    commandLine(command),
    result.code,
    result.signal,
    result.stdout,
    result.stderr,
  );
}

/**
 * Runs commands on this machine, in this process's network namespace or (with
 * `namespace`) inside a named one through `ip netns exec`. A role agent uses
 * `localHost()` (its process already lives in its host's namespace); a test or a
 * controller reaching into a namespace uses `namespaceHost(ns)`.
 */
export class LocalHost implements CommandHost {
  readonly name: string;

  constructor(
    readonly namespace?: string,
    private readonly defaults: { timeoutMs?: number } = {},
  ) {
    this.name = namespace ?? "localhost";
  }

  exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const base = typeof command === "string" ? ["sh", "-c", withEnvironment(command, options.env)] : command;
    const argv = this.namespace ? ["ip", "netns", "exec", this.namespace, ...base] : [...base];
    const env = typeof command === "string" || !options.env ? undefined : { ...process.env, ...options.env };
    const timeoutMs = options.timeoutMs ?? this.defaults.timeoutMs;
    const [file, ...args] = argv;
    if (!file) throw new Error("exec: empty command");
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, {
        stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
        ...(env ? { env } : {}),
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, timeoutMs)
        : undefined;
      child.stdout?.on("data", (d: Buffer) => out.push(d));
      child.stderr?.on("data", (d: Buffer) => err.push(d));
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(new Error(`${this.name}: cannot run ${file}: ${e.message}`));
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        const stdout = Buffer.concat(out).toString();
        const stderr = Buffer.concat(err).toString();
        if (timedOut) {
          reject(new CommandTimeoutError(this.name, commandLine(command), timeoutMs ?? 0, stdout, stderr));
          return;
        }
        resolve({ code, signal, stdout, stderr });
      });
      if (child.stdin) {
        // A child that exits before reading all its input must not crash us with EPIPE.
        child.stdin.on("error", () => {});
        child.stdin.end(options.input);
      }
    });
  }

  async execOrThrow(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return checkExit(this.name, command, await this.exec(command, options));
  }
}

/** Commands in this process's own network namespace. */
export function localHost(defaults: { timeoutMs?: number } = {}): LocalHost {
  return new LocalHost(undefined, defaults);
}

/** Commands inside a named network namespace (`ip netns exec NS ...`). */
export function namespaceHost(namespace: string, defaults: { timeoutMs?: number } = {}): LocalHost {
  return new LocalHost(namespace, defaults);
}
