import { type ExecResult, localHost, namespaceHost } from "../remote/command.ts";

/**
 * Shorthands over the one command API (lib/remote/command.ts) for the controller's own
 * machine: `run` throws on a non-zero exit unless `allowFailure`, like execOrThrow/exec.
 */
export type CommandResult = ExecResult;
export { CommandError } from "../remote/errors.ts";

export interface RunOptions {
  input?: string;
  /** Resolve with a non-zero code instead of throwing. */
  allowFailure?: boolean;
  timeoutMs?: number;
}

function options(o: RunOptions): { input?: string; timeoutMs?: number } {
  return {
    ...(o.input !== undefined ? { input: o.input } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
  };
}

/** Runs a local command without a shell and collects its output. */
export function run(argv: readonly string[], o: RunOptions = {}): Promise<CommandResult> {
  const host = localHost();
  return o.allowFailure ? host.exec(argv, options(o)) : host.execOrThrow(argv, options(o));
}

/** Runs a command inside a network namespace (`ip netns exec`). */
export function runInNamespace(
  namespace: string,
  argv: readonly string[],
  o: RunOptions = {},
): Promise<CommandResult> {
  const host = namespaceHost(namespace);
  return o.allowFailure ? host.exec(argv, options(o)) : host.execOrThrow(argv, options(o));
}

/** Feeds many `ip` commands to one `ip -batch` process (one fork instead of dozens). */
export function ipBatch(namespace: string | undefined, commands: readonly string[]): Promise<CommandResult> {
  const argv = namespace ? ["ip", "-n", namespace, "-batch", "-"] : ["ip", "-batch", "-"];
  return run(argv, { input: `${commands.join("\n")}\n` });
}
