import { pathToFileURL } from "node:url";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { heldWithin, pause } from "../lib/remote/wait.ts";
import { parseTopologyText } from "../lib/topology/load.ts";
import { TrafficAgent } from "../lib/traffic/agent-client.ts";
import { compareTcpStreams } from "../lib/traffic/tcp-streams.ts";

/**
 * The portable instruments of the traffic agent (traffic.agent.ts) through one
 * kernel-forwarding router: the highest dgram UDP rate at which sender, receiver and an
 * nftables counter on the receiving host agree; how many concurrent long-lived TCP
 * connections one client host opens and keeps exact, and at what connect rate; the
 * highest short-connection rate with every connection completed without a SYN
 * retransmission. CPU per agent from
 * /proc/PID/stat. Bounded to about a minute and a half. (The native UDP fast path is
 * bench/traffic.ts.)
 */
export interface TrafficAgentBenchResult {
  dgram_exact_pps: number;
  dgram_cpu_pct_at_exact: number;
  tcp_connections: number;
  tcp_connect_per_s: number;
  tcp_records_per_s: number;
  tcp_exact: boolean;
  short_conn_per_s: number;
}

const TOPOLOGY = `
lab: benchtagent
description: sender - one kernel-forwarding router - receiver (bench/traffic-agent.ts)
segments:
  lan: { subnet: 198.18.62.0/24 }
  far: { subnet: 198.18.63.0/24 }
hosts:
  src:
    interfaces: { eth0: { segment: lan, addresses: [198.18.62.10/24] } }
    routes: [{ to: default, via: 198.18.62.1 }]
  r1:
    forwarding: true
    interfaces:
      eth0: { segment: lan, addresses: [198.18.62.1/24] }
      eth1: { segment: far, addresses: [198.18.63.1/24] }
  dst:
    interfaces: { eth0: { segment: far, addresses: [198.18.63.10/24] } }
    routes: [{ to: 198.18.62.0/24, via: 198.18.63.1 }]
`;
const DST = "198.18.63.10";

async function cpuTicks(lab: Lab, host: string, pid: number): Promise<number> {
  const r = await lab.host(host).exec(["cat", `/proc/${pid}/stat`]);
  // Fields after the ")" of the command name: utime and stime are fields 14 and 15.
  const fields = r.stdout.slice(r.stdout.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Nanoseconds the process spent runnable but waiting for a CPU (/proc/PID/schedstat, field 2). */
async function runQueueWaitNs(lab: Lab, host: string, pid: number): Promise<number> {
  const r = await lab.host(host).exec(["cat", `/proc/${pid}/schedstat`]);
  return Number(r.stdout.trim().split(" ")[1]);
}

async function counter(lab: Lab): Promise<number> {
  const r = await lab.host("dst").exec(["nft", "list", "table", "inet", "tdbench"]);
  return Number(/counter packets (\d+)/.exec(r.stdout)?.[1] ?? Number.NaN);
}

export async function runTrafficAgentBench(
  options: { log?: (line: string) => void; json?: boolean } = {},
): Promise<TrafficAgentBenchResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const lab = await upLab(parseTopologyText(TOPOLOGY, "bench/traffic-agent.ts"));
  let src: TrafficAgent | undefined;
  let dst: TrafficAgent | undefined;
  try {
    [src, dst] = await Promise.all([
      TrafficAgent.launch(lab.host("src").remote),
      TrafficAgent.launch(lab.host("dst").remote),
    ]);
    const srcPid = (await src.overview()).pid;
    const dstPid = (await dst.overview()).pid;
    const hz = 100; // USER_HZ on Linux

    // 1. dgram UDP: stepped rates, one second each.
    log(
      "dgram UDP (1 s per step)       pps   sent   received   counter  sockDrops  achieved  cpu% src/dst  src waits for CPU %  exact",
    );
    let dgramExact = 0;
    let dgramCpu = 0;
    for (const pps of [10_000, 25_000, 50_000, 75_000, 100_000, 150_000, 200_000]) {
      const reset = await lab.host("dst").exec(["nft", "-f", "-"], {
        input:
          "table inet tdbench\ndelete table inet tdbench\ntable inet tdbench {\n chain in { type filter hook input priority 0;\n  udp dport 6100 counter\n }\n}\n",
      });
      if (reset.code !== 0) throw new Error(`nft on dst: ${reset.stderr}`);
      const receiver = await dst.startUdpReceiver({ port: 6100 });
      const [s0, d0] = [await cpuTicks(lab, "src", srcPid), await cpuTicks(lab, "dst", dstPid)];
      const wait0 = await runQueueWaitNs(lab, "src", srcPid);
      const sender = await src.startUdpSend({ streamId: 1, dstIp: DST, dstPort: 6100, pps, count: pps });
      const totals = await sender.finished(30_000);
      await pause(300); // time is the subject: a drain interval, also part of the CPU accounting window (+0.3 s)
      const [s1, d1] = [await cpuTicks(lab, "src", srcPid), await cpuTicks(lab, "dst", dstPid)];
      const waitPct =
        ((await runQueueWaitNs(lab, "src", srcPid)) - wait0) / 1e7 / (totals.wallMs / 1000 + 0.3);
      const report = await receiver.stop();
      const rx = await counter(lab);
      const achieved = totals.sent / ((totals.lastSendMs - totals.firstSendMs) / 1000);
      const wallS = totals.wallMs / 1000 + 0.3;
      const cpuSrc = ((s1 - s0) / hz / wallS) * 100;
      const cpuDst = ((d1 - d0) / hz / wallS) * 100;
      const exact =
        totals.sendErrors === 0 &&
        report.datagrams === totals.sent &&
        rx === totals.sent &&
        report.socketDrops === 0 &&
        achieved > pps * 0.95;
      log(
        `${String(pps).padStart(32)} ${String(totals.sent).padStart(6)} ${String(report.datagrams).padStart(10)} ${String(rx).padStart(9)} ${String(report.socketDrops).padStart(10)} ${achieved.toFixed(0).padStart(9)} ${cpuSrc.toFixed(0).padStart(6)}/${cpuDst.toFixed(0).padEnd(6)} ${waitPct.toFixed(0).padStart(18)}  ${exact}`,
      );
      if (!exact) break;
      dgramExact = pps;
      dgramCpu = cpuSrc + cpuDst;
    }

    // 2. Concurrent long-lived TCP connections from one client host.
    log("long-lived TCP   connections  connect/s  records/s  written  received  exact  open fds (client)");
    let tcpConnections = 0;
    let tcpConnectRate = 0;
    let tcpRecordRate = 0;
    let tcpExact = true;
    for (const connections of [1000, 4000]) {
      const port = 7100 + connections / 1000;
      const sink = await dst.startTcpSink({ ports: [port], stallThresholdMs: 2000 });
      const began = Date.now();
      const streams = await src.startTcpStreams({
        dstIp: DST,
        ports: [port],
        connections,
        recordsPerSecond: 5,
        connectRatePerSecond: 2000,
      });
      // A ramp that does not finish within 30 s is measured as it stands, not thrown.
      await heldWithin(
        async () => {
          const { totals } = await streams.report();
          return totals.open + totals.connectFailures >= connections;
        },
        { timeoutMs: 30_000, what: `${connections} connections to open or fail`, everyMs: 50 },
      );
      const rampS = (Date.now() - began) / 1000;
      const fds = (await src.overview()).openFiles;
      await pause(3000); // time is the subject: 3 s of records at the full connection count
      const client = await streams.stop({ graceMs: 10_000 });
      await heldWithin(async () => (await sink.report()).totals.open === 0, {
        timeoutMs: 10_000,
        what: "the sink's connections to close",
        everyMs: 100,
      });
      const sinkReport = await sink.stop();
      const comparison = compareTcpStreams(client, sinkReport);
      const exact = comparison.exact === connections;
      const recordRate = sinkReport.totals.records / (3 + rampS);
      log(
        `${String(connections).padStart(28)} ${(connections / rampS).toFixed(0).padStart(10)} ${recordRate.toFixed(0).padStart(10)} ${String(client.totals.recordsWritten).padStart(8)} ${String(sinkReport.totals.records).padStart(9)} ${String(exact).padStart(6)}  ${fds}`,
      );
      if (!exact) {
        tcpExact = tcpConnections > 0;
        break;
      }
      tcpConnections = connections;
      tcpConnectRate = connections / rampS;
      tcpRecordRate = recordRate;
    }

    // 3. Short connections: stepped rates, two seconds each, every connection must complete.
    log("short TCP    conn/s  attempted  completed  failed  incomplete  connect ms (mean/max)");
    let shortRate = 0;
    for (const rate of [500, 1000, 2000, 4000]) {
      const port = 7200;
      const sink = await dst.startTcpSink({ ports: [port] });
      const short = await src.startTcpShort({
        dstIp: DST,
        ports: [port],
        ratePerSecond: rate,
        count: rate * 2,
        recordsPerConnection: 1,
      });
      const r = await short.finished(60_000);
      await sink.stop();
      log(
        `${String(rate).padStart(17)} ${String(r.attempted).padStart(10)} ${String(r.completed).padStart(10)} ${String(r.connectFailures).padStart(7)} ${String(r.incomplete + r.resets + r.skipped).padStart(11)}  ${r.connectMs?.mean.toFixed(1)}/${r.connectMs?.max.toFixed(1)}`,
      );
      // Clean: every connection completed, none needed a SYN retransmission (1 s).
      if (r.completed !== rate * 2 || (r.connectMs?.max ?? 0) >= 1000) break;
      shortRate = rate;
    }

    const result: TrafficAgentBenchResult = {
      dgram_exact_pps: dgramExact,
      dgram_cpu_pct_at_exact: Math.round(dgramCpu),
      tcp_connections: tcpConnections,
      tcp_connect_per_s: Math.round(tcpConnectRate),
      tcp_records_per_s: Math.round(tcpRecordRate),
      tcp_exact: tcpExact,
      short_conn_per_s: shortRate,
    };
    if (options.json !== false) console.log(JSON.stringify(result));
    return result;
  } finally {
    await Promise.all([src?.close(), dst?.close()]).catch(() => undefined);
    await lab.down();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runTrafficAgentBench();
}
