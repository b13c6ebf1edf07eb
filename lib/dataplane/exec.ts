import { run, runInNamespace } from "../lab/command.ts";

/** What a data-plane helper needs from a host: run one command, never throw on exit codes. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` (no shell) with optional stdin and resolves with its exit code and output;
 * only a failure to start the program rejects. A role agent inside its namespace uses
 * {@link localExecutor}; a controller or a test reaching into a namespace uses
 * {@link namespaceExecutor}; a lab host over SSH can adapt `LabHost.exec` the same way.
 */
export type Executor = (argv: readonly string[], options?: { input?: string }) => Promise<ExecResult>;

/** Runs commands in this process's own network namespace. */
export function localExecutor(timeoutMs = 30_000): Executor {
  return (argv, options) => run(argv, { input: options?.input, allowFailure: true, timeoutMs });
}

/** Runs commands inside a named network namespace (`ip netns exec NS ...`). */
export function namespaceExecutor(namespace: string, timeoutMs = 30_000): Executor {
  return (argv, options) =>
    runInNamespace(namespace, argv, { input: options?.input, allowFailure: true, timeoutMs });
}

/** Anything that runs an argv and reports its exit code: a lab host (`LabHost`), a `RemoteHost`. */
export interface CommandHost {
  exec(
    command: readonly string[],
    options?: { input?: string; timeoutMs?: number },
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Runs commands on a lab host over its SSH session (code null = killed/disconnected -> 255). */
export function hostExecutor(host: CommandHost, timeoutMs = 30_000): Executor {
  return async (argv, options) => {
    const r = await host.exec(argv, {
      ...(options?.input !== undefined ? { input: options.input } : {}),
      timeoutMs,
    });
    return { code: r.code ?? 255, stdout: r.stdout, stderr: r.stderr };
  };
}
