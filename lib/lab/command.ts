import { spawn } from "node:child_process";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: CommandResult,
  ) {
    super(`command failed (exit ${result.code}): ${argv.join(" ")}\n${result.stderr.trim()}`);
    this.name = "CommandError";
  }
}

export interface RunOptions {
  input?: string;
  /** Resolve with a non-zero code instead of throwing. */
  allowFailure?: boolean;
  timeoutMs?: number;
}

/** Runs a local command without a shell and collects its output. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error("run: empty argv");
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs) timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => err.push(d));
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      };
      if (result.code !== 0 && !options.allowFailure) reject(new CommandError(argv, result));
      else resolve(result);
    });
    if (child.stdin) {
      // A child that exits before reading all its input must not crash us with EPIPE.
      child.stdin.on("error", () => {});
      child.stdin.end(options.input);
    }
  });
}

/** Runs a command inside a network namespace (`ip netns exec`). */
export function runInNamespace(
  namespace: string,
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return run(["ip", "netns", "exec", namespace, ...argv], options);
}

/** Feeds many `ip` commands to one `ip -batch` process (one fork instead of dozens). */
export function ipBatch(namespace: string | undefined, commands: readonly string[]): Promise<CommandResult> {
  const argv = namespace ? ["ip", "-n", namespace, "-batch", "-"] : ["ip", "-batch", "-"];
  return run(argv, { input: `${commands.join("\n")}\n` });
}
