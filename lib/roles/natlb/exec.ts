import { type CommandResult, type RunOptions, run, runInNamespace } from "../../lab/command.ts";

/**
 * How the balancer code runs a command: directly when it is an agent inside its host
 * (the agent's process already lives in the host's namespace), or through
 * `ip netns exec` when a test drives a namespace from outside. Same shape as the
 * executor lib/dataplane takes, so one value serves both.
 */
export type Exec = (argv: readonly string[], options?: RunOptions) => Promise<CommandResult>;

export const localExec: Exec = (argv, options) => run(argv, options);

export function namespaceExec(namespace: string): Exec {
  return (argv, options) => runInNamespace(namespace, argv, options);
}
