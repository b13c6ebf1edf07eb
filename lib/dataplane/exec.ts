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
