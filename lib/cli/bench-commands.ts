import type { Command } from "commander";

/**
 * `tandem bench NAME`: each benchmark lives in bench/NAME.ts and prints a table and,
 * on its last line, one JSON object. Loaded on demand so `tandem lab ...` stays quick.
 */
const BENCHES: Record<string, { about: string; run: () => Promise<void> }> = {
  lab: {
    about: "bring-up/teardown of 8, 32 and 64-host labs",
    run: async () => {
      const { runLabBench, printLabBench } = await import("../../bench/lab.ts");
      printLabBench(await runLabBench());
    },
  },
  remote: {
    about: "SSH to 64 namespace hosts: sshd start, connect, exec latency, agent launch and JSON-RPC",
    run: async () => {
      const { runRemoteBench, printRemoteBench } = await import("../../bench/remote.ts");
      printRemoteBench(await runRemoteBench());
    },
  },
  holdqueue: {
    about: "NFQUEUE through the addon and HoldQueue (pass / observe) vs plain kernel forwarding",
    run: async () => {
      const { runHoldQueueBench } = await import("../../bench/holdqueue.ts");
      await runHoldQueueBench();
    },
  },
  "traffic-agent": {
    about: "the traffic agent's portable paths: TCP connections and dgram UDP rates",
    run: async () => {
      const { runTrafficAgentBench } = await import("../../bench/traffic-agent.ts");
      await runTrafficAgentBench();
    },
  },
  handoff: {
    about: "VRLS hand-off per mode: reallocations, lost, duplicated, hand-off time p50/p99",
    run: async () => {
      const { runHandoffBench, printHandoffBench } = await import("../../bench/handoff.ts");
      printHandoffBench(await runHandoffBench());
    },
  },
  failover: {
    about: "VRLS master failure: reference vs keepalived on the same lab, stream and advertisement interval",
    run: async () => {
      const { runFailoverBench, printFailoverBench } = await import("../../bench/failover.ts");
      printFailoverBench(await runFailoverBench());
    },
  },
  sharing: {
    about:
      "VRLS load sharing: goodput of 1/2/3 members vs keepalived active/standby, imbalance before/after review",
    run: async () => {
      const { runSharingBench } = await import("../../bench/sharing.ts");
      await runSharingBench();
    },
  },
  natlb: {
    about:
      "NAT-LB: move time, hold time, connections preserved (planned, failover), connections/s with 2 vs 1 balancers",
    run: async () => {
      const { runNatlbBench } = await import("../../bench/natlb.ts");
      await runNatlbBench();
    },
  },
  "vrls-attack": {
    about:
      "issue 15: 100,000 crafted VRRP/VRLS frames over 30 s from an end system of the Fig. 7 lab, streams running",
    run: async () => {
      const { runVrlsAttackBench, printVrlsAttack } = await import("../../bench/vrls-attack.ts");
      printVrlsAttack(await runVrlsAttackBench());
    },
  },
  wire: {
    about: "encode+decode rate of a VRRP advertisement and a VRLS allocation message",
    run: async () => {
      const { runWireBench, printWireBench } = await import("../../bench/wire.ts");
      printWireBench(await runWireBench());
    },
  },
  nft: {
    about:
      "one nftables set-element transaction and one counter read: spawned nft vs in-process libnftables (p50/p90/p99/max)",
    run: async () => {
      const { runNftBench, printNftBench } = await import("../../bench/nft.ts");
      printNftBench(await runNftBench());
    },
  },
  rawio: {
    about:
      "VRLS raw sockets: round trip of one 60-byte VRRP-protocol packet and a bad-VRRP flood, python3 helper vs tandem-rawio addon",
    run: async () => {
      const { runRawIoBench, printRawIoBench } = await import("../../bench/rawio.ts");
      printRawIoBench(await runRawIoBench());
    },
  },
  traffic: {
    about: "highest exact UDP rate of the generator and of a capture vs tcpreplay, through one kernel router",
    run: async () => {
      const { runTrafficBench } = await import("../../bench/traffic.ts");
      await runTrafficBench();
    },
  },
};

export function registerBenchCommands(program: Command): void {
  const bench = program
    .command("bench")
    .description("benchmarks: a table, then one JSON object on the last line");
  for (const [name, b] of Object.entries(BENCHES)) {
    bench
      .command(name)
      .description(b.about)
      .option("--json", "(the JSON line is always printed last)")
      .action(async () => {
        await b.run();
      });
  }
}
