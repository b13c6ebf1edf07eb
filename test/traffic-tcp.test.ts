import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { TrafficAgent } from "../lib/traffic/agent-client.ts";
import { analyzeStream } from "../lib/traffic/analyzer.ts";
import { compareTcpStreams } from "../lib/traffic/tcp-streams.ts";

// The traffic agent on two lab hosts (started over SSH through launchAgent), TCP streams and
// dgram UDP through r1, a kernel-forwarding router; faults injected by the test with nftables
// in r1's namespace. r2 of the fixture stays idle (frames are addressed to r1's MAC).
const DST = "198.18.51.10";

let lab: Lab;
let src: TrafficAgent;
let dst: TrafficAgent;

async function nft(host: string, script: string): Promise<void> {
  const r = await lab.host(host).exec(["nft", "-f", "-"], { input: script });
  if (r.code !== 0) throw new Error(`nft on ${host} failed: ${r.stderr}\n${script}`);
}

async function nftCounter(host: string, table: string): Promise<number> {
  const r = await lab.host(host).exec(["nft", "list", "table", "inet", table]);
  const match = /counter packets (\d+)/.exec(r.stdout);
  if (!match) throw new Error(`no counter in ${table} on ${host}: ${r.stdout}${r.stderr}`);
  return Number(match[1]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await sleep(100);
  }
}

beforeAll(async () => {
  lab = await upLab(join(import.meta.dirname, "fixtures/traffic-lab.yaml"));
  [src, dst] = await Promise.all([
    TrafficAgent.launch(lab.host("src").remote),
    TrafficAgent.launch(lab.host("dst").remote),
  ]);
}, 90_000);

afterAll(async () => {
  try {
    await Promise.all([src?.close(), dst?.close()]);
  } finally {
    await lab?.down();
  }
}, 60_000);

describe("TCP streams through a kernel-forwarding router (traffic agent over SSH)", () => {
  it("1000 concurrent long-lived connections: all established, continuity exact, no resets or stalls", async () => {
    const sink = await dst.startTcpSink({ ports: [7001], stallThresholdMs: 1000 });
    const streams = await src.startTcpStreams({
      dstIp: DST,
      ports: [7001],
      connections: 1000,
      recordsPerSecond: 5,
      connectRatePerSecond: 500,
    });
    try {
      const established = await until(
        "1000 connections",
        () => streams.report(),
        (r) => r.totals.open + r.totals.connectFailures + r.totals.resets >= 1000,
      );
      expect(established.totals).toMatchObject({ open: 1000, connectFailures: 0, resets: 0 });
      const client = await src.overview();
      expect(client.openFiles).toBeGreaterThan(1000);
      expect(client.openFilesLimit.soft).toBeGreaterThan(1000);
      // Independently of the agent: the kernel of the sink host holds 1000 established sockets.
      const ss = await lab.host("dst").exec(["ss", "-Htn", "state", "established", "( sport = :7001 )"]);
      expect(ss.stdout.trim().split("\n")).toHaveLength(1000);
      await sleep(2000);
      const during = await sink.report();
      expect(during.totals).toMatchObject({ accepted: 1000, open: 1000, resets: 0, discontinuities: 0 });
      expect(during.totals.long.stalled).toBe(0);

      const clientReport = await streams.stop();
      await until(
        "the sink to see every connection end",
        () => sink.report(),
        (r) => r.totals.open === 0,
      );
      const sinkReport = await sink.report({ connections: true });
      const comparison = compareTcpStreams(clientReport, sinkReport);
      expect(comparison).toMatchObject({
        connections: 1000,
        exact: 1000,
        missingAtSink: 0,
        lostRecords: 0,
        discontinuities: 0,
        resetAtClient: [],
        resetAtSink: [],
      });
      expect(clientReport.totals.recordsWritten).toBeGreaterThan(1000 * 10);
      expect(clientReport.totals.recordsSkipped).toBe(0);
      expect(sinkReport.totals.records).toBe(clientReport.totals.recordsWritten);
      expect(sinkReport.totals.long.stalled).toBe(0);
      // The 10 ms timeline adds up to the totals.
      const timeline = await sink.timeline();
      expect(timeline.binMs).toBe(10);
      expect(timeline.series.records?.reduce((a, b) => a + b, 0)).toBe(sinkReport.totals.records);
      expect(timeline.series.accepted?.reduce((a, b) => a + b, 0)).toBe(1000);
      console.log(
        `1000 connections: connect ms ${JSON.stringify(clientReport.totals.connectMs)}, ` +
          `${sinkReport.totals.records} records, latency ms ${JSON.stringify(sinkReport.totals.latencyMs)}, ` +
          `longest gap ${sinkReport.totals.long.longestGap?.ms.toFixed(1)} ms`,
      );
    } finally {
      await streams.stop().catch(() => undefined);
      await sink.stop().catch(() => undefined);
    }
  }, 120_000);

  it("a reset injected for one connection's port -> exactly that connection counted as reset", async () => {
    const sink = await dst.startTcpSink({ ports: [7002], stallThresholdMs: 1000 });
    const streams = await src.startTcpStreams({
      dstIp: DST,
      ports: [7002],
      connections: 200,
      recordsPerSecond: 20,
    });
    try {
      const up = await until(
        "200 connections",
        () => streams.report({ connections: true }),
        (r) => r.totals.open === 200,
      );
      const victim = up.connections?.find((c) => c.connIndex === 17);
      expect(victim?.localPort).toBeGreaterThan(0);
      await sleep(300);
      // The sink's ACKs to the victim's port are answered with an RST toward the sink (for a moment).
      await nft(
        "r1",
        `table inet tdreset {\n chain fw { type filter hook forward priority 0;\n  ip saddr ${DST} tcp sport 7002 tcp dport ${victim!.localPort} tcp flags & ack == ack counter reject with tcp reset\n }\n}\n`,
      );
      await sleep(300);
      const rejected = await nftCounter("r1", "tdreset");
      await nft("r1", "delete table inet tdreset\n");
      expect(rejected).toBeGreaterThan(0);
      // The client learns of the reset when its next record meets the sink's closed socket.
      await until(
        "the client to see the reset",
        () => streams.report(),
        (r) => r.totals.resets > 0,
      );
      await sleep(500);
      const clientReport = await streams.stop();
      await until(
        "the sink to see every connection end",
        () => sink.report(),
        (r) => r.totals.open === 0,
      );
      const sinkReport = await sink.report({ connections: true });
      const comparison = compareTcpStreams(clientReport, sinkReport);
      expect(comparison.resetAtSink).toEqual([17]);
      expect(comparison.resetAtClient).toEqual([17]);
      expect(sinkReport.totals.resets).toBe(1);
      expect(clientReport.totals.resets).toBe(1);
      expect(comparison.exact).toBe(199);
      expect(comparison.mismatches.map((m) => m.connIndex)).toEqual([17]);
      expect(comparison.discontinuities).toBe(0);
      const timeline = await sink.timeline();
      expect(timeline.series.resets?.reduce((a, b) => a + b, 0)).toBe(1);
    } finally {
      await nft("r1", "delete table inet tdreset\n").catch(() => undefined);
      await streams.stop().catch(() => undefined);
      await sink.stop().catch(() => undefined);
    }
  }, 90_000);

  it("a 600 ms blackhole on one port -> exactly its connections stalled, the others not", async () => {
    const sink = await dst.startTcpSink({ ports: [7003, 7004], stallThresholdMs: 400 });
    const streams = await src.startTcpStreams({
      dstIp: DST,
      ports: [7003, 7004],
      connections: 100,
      recordsPerSecond: 50,
    });
    try {
      await until(
        "100 connections",
        () => streams.report(),
        (r) => r.totals.open === 100,
      );
      await sleep(500);
      await nft(
        "r1",
        "table inet tdhole {\n chain fw { type filter hook forward priority 0;\n  tcp dport 7004 drop\n }\n}\n",
      );
      await sleep(600);
      await nft("r1", "delete table inet tdhole\n");
      await sleep(2000);
      const sinkReport = await sink.report({ connections: true });
      const stalled = (sinkReport.connections ?? []).filter((c) => (c.longestGap?.ms ?? 0) > 400);
      expect(sinkReport.totals.long.stalled).toBe(50);
      expect(new Set(stalled.map((c) => c.localPort))).toEqual(new Set([7004]));
      // At least the blackhole, at most it plus TCP's retransmission backoff.
      expect(sinkReport.totals.long.longestGap?.ms).toBeGreaterThan(550);
      expect(sinkReport.totals.long.longestGap?.ms).toBeLessThan(2000);
      const clientReport = await streams.stop();
      await until(
        "the sink to see every connection end",
        () => sink.report(),
        (r) => r.totals.open === 0,
      );
      const comparison = compareTcpStreams(clientReport, await sink.report({ connections: true }));
      expect(comparison).toMatchObject({ exact: 100, lostRecords: 0, discontinuities: 0 });
    } finally {
      await nft("r1", "delete table inet tdhole\n").catch(() => undefined);
      await streams.stop().catch(() => undefined);
      await sink.stop().catch(() => undefined);
    }
  }, 90_000);

  it("short connections at 100/s with SYNs to one port dropped -> exactly those connects failed", async () => {
    const sink = await dst.startTcpSink({ ports: [7011, 7012] });
    await nft(
      "r1",
      "table inet tdsyn {\n chain fw { type filter hook forward priority 0;\n  tcp dport 7012 tcp flags & (syn | ack) == syn counter drop\n }\n}\n",
    );
    try {
      const short = await src.startTcpShort({
        dstIp: DST,
        ports: [7011, 7012],
        ratePerSecond: 100,
        count: 200,
        recordsPerConnection: 4,
        // Below the kernel's first SYN retransmission (1 s), so the counter sees one SYN per attempt.
        connectTimeoutMs: 700,
      });
      const report = await short.finished(30_000);
      expect(report).toMatchObject({
        done: true,
        attempted: 200,
        skipped: 0,
        connected: 100,
        completed: 100,
        connectFailures: 100,
        resets: 0,
        incomplete: 0,
        connectFailuresByCode: { ETIMEDOUT: 100 },
        perPort: {
          "7011": { attempted: 100, connected: 100, connectFailures: 0, completed: 100 },
          "7012": { attempted: 100, connected: 0, connectFailures: 100, completed: 0 },
        },
      });
      expect(await nftCounter("r1", "tdsyn")).toBe(100);
      const sinkReport = await sink.report();
      expect(sinkReport.totals.short).toEqual({ connections: 100, receipts: 100 });
      expect(sinkReport.totals.records).toBe(400);
      const timeline = await short.timeline();
      expect(timeline.series.connectFailures?.reduce((a, b) => a + b, 0)).toBe(100);
      expect(timeline.series.completed?.reduce((a, b) => a + b, 0)).toBe(100);
    } finally {
      await nft("r1", "delete table inet tdsyn\n").catch(() => undefined);
      await sink.stop().catch(() => undefined);
    }
  }, 60_000);
});

describe("UDP through the agent's portable dgram path", () => {
  it("sent = received = the receiving host's nftables counter", async () => {
    await nft(
      "dst",
      "table inet tdcount {\n chain in { type filter hook input priority 0;\n  udp dport 6001 counter\n }\n}\n",
    );
    const receiver = await dst.startUdpReceiver({ port: 6001 });
    try {
      const sender = await src.startUdpSend({
        streamId: 61,
        dstIp: DST,
        dstPort: 6001,
        pps: 20_000,
        count: 30_000,
      });
      const totals = await sender.finished(30_000);
      expect(totals).toMatchObject({ done: true, sent: 30_000, sendErrors: 0 });
      await sleep(300);
      const report = await receiver.report();
      const counter = await nftCounter("dst", "tdcount");
      const stream = report.streams.find((s) => s.streamId === 61);
      const result = analyzeStream({ sender: totals, receiver: stream });
      expect(counter).toBe(30_000);
      expect(report).toMatchObject({ datagrams: 30_000, untagged: 0, socketDrops: 0 });
      expect(result).toMatchObject({
        sent: 30_000,
        received: 30_000,
        lost: 0,
        duplicated: { receiver: 0, wire: 0 },
      });
      // Paced: 30k datagrams at 20k pps take ~1.5 s.
      expect(totals.lastSendMs - totals.firstSendMs).toBeGreaterThan(1400);
      expect(totals.lastSendMs - totals.firstSendMs).toBeLessThan(2500);
      const timeline = await receiver.timeline();
      expect(timeline.series["stream 61"]?.reduce((a, b) => a + b, 0)).toBe(30_000);
      console.log(
        `dgram 20k pps: cpu ${totals.cpuMs.toFixed(0)} ms over ${totals.wallMs.toFixed(0)} ms, ` +
          `latency ms ${JSON.stringify(result.latencyMs)}`,
      );
    } finally {
      await receiver.stop().catch(() => undefined);
      await nft("dst", "delete table inet tdcount\n").catch(() => undefined);
    }
  }, 60_000);

  it("rejects bad parameters with the field and value", async () => {
    await expect(
      src.startUdpSend({ streamId: 1, dstIp: "not-an-ip", dstPort: 1, pps: 1, count: 1 }),
    ).rejects.toThrow(/traffic\.udpSendStart: dstIp: .*\(got "not-an-ip"\)/);
    await expect(dst.startTcpSink({ ports: [70_000] })).rejects.toThrow(/tcpSinkStart: ports\.0: .*70000/);
  });
});
