import type { ExecResult, RemoteHost, StreamOptions } from "../remote/index.ts";
import { shellQuote } from "../remote/index.ts";

/** The part of RemoteHost (lib/remote) the traffic tools use. */
export type TrafficHost = Pick<RemoteHost, "name" | "exec" | "execStream">;

/**
 * A long-running command on a lab host that can be stopped gracefully: it is started
 * through `sh -c 'echo $$; exec CMD'` so its pid is known, and stopped with a separate
 * `kill -INT PID`, so it can flush and print its summary before the channel closes
 * (closing the SSH channel alone would cut its output off).
 */
export interface GracefulProcess {
  pid: number;
  done: Promise<ExecResult>;
  stop(signal?: "INT" | "TERM"): Promise<ExecResult>;
}

export async function startGraceful(
  host: TrafficHost,
  argv: readonly string[],
  options: Omit<StreamOptions, "onStderr"> & { onStderr?: (chunk: Buffer) => void } = {},
): Promise<GracefulProcess> {
  const command = argv.map(shellQuote).join(" ");
  let pidResolve: (pid: number) => void = () => {};
  const pidPromise = new Promise<number>((resolve) => {
    pidResolve = resolve;
  });
  let stderrHead = "";
  let pidSeen = false;
  const proc = await host.execStream(["sh", "-c", `echo "tandem-pid $$" >&2; exec ${command}`], {
    ...options,
    onStderr: (chunk) => {
      if (!pidSeen) {
        stderrHead += chunk.toString();
        const match = /tandem-pid (\d+)\n/.exec(stderrHead);
        if (match) {
          pidSeen = true;
          pidResolve(Number(match[1]));
          const rest = stderrHead.slice((match.index ?? 0) + match[0].length);
          if (rest) options.onStderr?.(Buffer.from(rest));
        }
        return;
      }
      options.onStderr?.(chunk);
    },
  });
  const pid = await Promise.race([
    pidPromise,
    proc.done.then((r) => {
      throw new Error(`${host.name}: ${argv[0]} exited at start (code ${r.code}): ${stderrHead.trim()}`);
    }),
  ]);
  return {
    pid,
    done: proc.done,
    async stop(signal = "INT") {
      await host.exec(["kill", `-${signal}`, String(pid)]);
      const timer = setTimeout(() => proc.kill("KILL"), 10_000);
      try {
        return await proc.done;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
