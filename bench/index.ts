import type { Benchmark } from "../lib/cli/bench-commands.ts";

/**
 * Every benchmark `tandem bench NAME` runs. scripts/build.mjs bundles this file as its own
 * entry (dist/bench.mjs), which the CLI loads only when a benchmark runs: the shipped
 * dist/cli.mjs carries no benchmark and no test code. Each benchmark prints a table and,
 * on its last line, one JSON object; each module is loaded on demand.
 */
export const BENCHES: Record<string, Benchmark> = {
  lab: {
    about: "bring-up/teardown of 8, 32 and 64-host labs",
    run: async () => {
      const { runLabBench, printLabBench } = await import("./lab.ts");
      printLabBench(await runLabBench());
    },
  },
  remote: {
    about: "SSH to 64 namespace hosts: sshd start, connect, exec latency, agent launch and JSON-RPC",
    run: async () => {
      const { runRemoteBench, printRemoteBench } = await import("./remote.ts");
      printRemoteBench(await runRemoteBench());
    },
  },
  holdqueue: {
    about: "NFQUEUE through the addon and HoldQueue (pass / observe) vs plain kernel forwarding",
    run: async () => {
      const { runHoldQueueBench } = await import("./holdqueue.ts");
      await runHoldQueueBench();
    },
  },
  "traffic-agent": {
    about: "the traffic agent's portable paths: TCP connections and dgram UDP rates",
    run: async () => {
      const { runTrafficAgentBench } = await import("./traffic-agent.ts");
      await runTrafficAgentBench();
    },
  },
  "vrls-attack": {
    about:
      "issue 15: 100,000 crafted VRRP/VRLS frames and 10 spoofed gratuitous ARP over 30 s from an end system of the Fig. 7 lab, streams running; per host UDP loss vs frames the spoofs misdirected",
    run: async () => {
      const { runVrlsAttackBench, printVrlsAttack } = await import("./vrls-attack.ts");
      printVrlsAttack(await runVrlsAttackBench());
    },
  },
  "natlb-attack": {
    about:
      "issue 15: 100,000 crafted NAT-LB control datagrams over 30 s from a server of the Fig. 3 lab, streams running",
    run: async () => {
      const { runNatlbAttackBench, printNatlbAttack } = await import("./natlb-attack.ts");
      printNatlbAttack(await runNatlbAttackBench());
    },
  },
  handoff: {
    about: "VRLS hand-off per mode: reallocations, lost, duplicated, hand-off time p50/p99",
    run: async () => {
      const { runHandoffBench, printHandoffBench } = await import("./handoff.ts");
      printHandoffBench(await runHandoffBench());
    },
  },
  failover: {
    about: "VRLS master failure: reference vs keepalived on the same lab, stream and advertisement interval",
    run: async () => {
      const { runFailoverBench, printFailoverBench } = await import("./failover.ts");
      printFailoverBench(await runFailoverBench());
    },
  },
  sharing: {
    about:
      "VRLS load sharing: goodput of 1/2/3 members vs keepalived active/standby, imbalance before/after review",
    run: async () => {
      const { runSharingBench } = await import("./sharing.ts");
      await runSharingBench();
    },
  },
  natlb: {
    about:
      "NAT-LB: move time, hold time, connections preserved (planned, failover), connections/s with 2 vs 1 balancers",
    run: async () => {
      const { runNatlbBench } = await import("./natlb.ts");
      await runNatlbBench();
    },
  },
  wire: {
    about: "encode+decode rate of a VRRP advertisement and a VRLS allocation message",
    run: async () => {
      const { runWireBench, printWireBench } = await import("./wire.ts");
      printWireBench(await runWireBench());
    },
  },
  nft: {
    about:
      "one nftables set-element transaction and one counter read: spawned nft vs in-process libnftables (p50/p90/p99/max)",
    run: async () => {
      const { runNftBench, printNftBench } = await import("./nft.ts");
      printNftBench(await runNftBench());
    },
  },
  rawio: {
    about:
      "VRLS raw sockets: round trip of one 60-byte VRRP-protocol packet and a bad-VRRP flood, python3 helper vs tandem-rawio addon",
    run: async () => {
      const { runRawIoBench, printRawIoBench } = await import("./rawio.ts");
      printRawIoBench(await runRawIoBench());
    },
  },
  traffic: {
    about: "highest exact UDP rate of the generator and of a capture vs tcpreplay, through one kernel router",
    run: async () => {
      const { runTrafficBench } = await import("./traffic.ts");
      await runTrafficBench();
    },
  },
};
