import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ipBatch, run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { launchAgent, RemoteHost, type SshdHandle, startSshd, writeLabKeys } from "../lib/remote/index.ts";

/**
 * `tandem bench remote`: the remote layer's costs. sshd start-up for N hosts in parallel
 * (inside N namespaces, the virtual lab's case), SSH connect through the namespace
 * stream, exec latency and throughput over one reused connection, agent launch and
 * JSON-RPC round trips over the SSH channel.
 */
export interface RemoteBenchResult {
  hosts: number;
  sshd_parallel_up_ms: number;
  connect_all_ms: number;
  connect_one_ms: number;
  exec_p50_ms: number;
  exec_p99_ms: number;
  exec_concurrent_per_s: number;
  agent_launch_ms: number;
  rpc_p50_ms: number;
  rpc_p99_ms: number;
  rpc_pipelined_per_s: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const round = (n: number) => Math.round(n * 100) / 100;

export async function runRemoteBench(hosts = 64): Promise<RemoteBenchResult> {
  const prefix = newRunPrefix();
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-bench-`));
  const namespaces = Array.from({ length: hosts }, (_, i) => namespaceName(prefix, `b${i}`));
  const sshds: SshdHandle[] = [];
  const remotes: RemoteHost[] = [];
  try {
    const keys = await writeLabKeys(dir);
    await run(["ip", "-batch", "-"], { input: namespaces.map((ns) => `netns add ${ns}`).join("\n") });
    await Promise.all(namespaces.map((ns) => ipBatch(ns, ["link set lo up"])));

    const t0 = performance.now();
    sshds.push(
      ...(await Promise.all(
        namespaces.map((ns, i) =>
          startSshd({
            dir: join(dir, `b${i}`),
            namespace: ns,
            listenAddress: "127.0.0.1",
            port: 22,
            hostKeyPath: keys.hostKeyPath,
            authorizedKeysPath: keys.authorizedKeysPath,
          }),
        ),
      )),
    );
    const sshd_parallel_up_ms = performance.now() - t0;

    for (const [i, ns] of namespaces.entries()) {
      remotes.push(
        new RemoteHost({
          name: `b${i}`,
          target: { kind: "namespace", namespace: ns },
          privateKey: keys.client.privateKey,
          hostPublicKey: keys.host.publicKey,
        }),
      );
    }
    const t1 = performance.now();
    await Promise.all(remotes.slice(1).map((r) => r.execOrThrow("true")));
    const connect_all_ms = performance.now() - t1;
    const first = remotes[0]!;
    const t2 = performance.now();
    await first.execOrThrow("true");
    const connect_one_ms = performance.now() - t2;

    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await first.execOrThrow("true");
      latencies.push(performance.now() - t);
    }
    const t3 = performance.now();
    await Promise.all(Array.from({ length: 500 }, () => first.execOrThrow("true")));
    const exec_concurrent_per_s = 500 / ((performance.now() - t3) / 1000);

    const t4 = performance.now();
    const agent = await launchAgent(first, "echo");
    const agent_launch_ms = performance.now() - t4;
    const rtts: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const t = performance.now();
      await agent.call("echo", i);
      rtts.push(performance.now() - t);
    }
    const t5 = performance.now();
    await Promise.all(Array.from({ length: 5000 }, (_, i) => agent.call("add", { a: i, b: 1 })));
    const rpc_pipelined_per_s = 5000 / ((performance.now() - t5) / 1000);
    await agent.stop();

    return {
      hosts,
      sshd_parallel_up_ms: Math.round(sshd_parallel_up_ms),
      connect_all_ms: Math.round(connect_all_ms),
      connect_one_ms: round(connect_one_ms),
      exec_p50_ms: round(percentile(latencies, 50)),
      exec_p99_ms: round(percentile(latencies, 99)),
      exec_concurrent_per_s: Math.round(exec_concurrent_per_s),
      agent_launch_ms: Math.round(agent_launch_ms),
      rpc_p50_ms: round(percentile(rtts, 50)),
      rpc_p99_ms: round(percentile(rtts, 99)),
      rpc_pipelined_per_s: Math.round(rpc_pipelined_per_s),
    };
  } finally {
    for (const r of remotes) r.close();
    await Promise.all(sshds.map((s) => s.stop()));
    for (const ns of namespaces) {
      const pids = await run(["ip", "netns", "pids", ns], { allowFailure: true });
      for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    await run(["ip", "-batch", "-"], {
      input: namespaces.map((ns) => `netns del ${ns}`).join("\n"),
      allowFailure: true,
    });
    await rm(dir, { recursive: true, force: true });
  }
}

export function printRemoteBench(result: RemoteBenchResult): void {
  const rows: Array<[string, string]> = [
    [`sshd start, ${result.hosts} namespaces in parallel`, `${result.sshd_parallel_up_ms} ms`],
    [`SSH connect + first exec, ${result.hosts - 1} hosts in parallel`, `${result.connect_all_ms} ms`],
    ["SSH connect + first exec, one host", `${result.connect_one_ms} ms`],
    ["exec over the reused connection, p50 / p99", `${result.exec_p50_ms} / ${result.exec_p99_ms} ms`],
    ["exec, 500 concurrent on one connection", `${result.exec_concurrent_per_s} /s`],
    ["agent launch (echo) to first ping answer", `${result.agent_launch_ms} ms`],
    ["JSON-RPC call round trip, p50 / p99", `${result.rpc_p50_ms} / ${result.rpc_p99_ms} ms`],
    ["JSON-RPC calls, 5000 pipelined", `${result.rpc_pipelined_per_s} /s`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
