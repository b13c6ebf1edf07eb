import { writeFile } from "node:fs/promises";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { pause } from "../lib/remote/wait.ts";
import { parseTopologyText } from "../lib/topology/load.ts";
import { Capture } from "../lib/traffic/capture.ts";
import { writePcap } from "../lib/traffic/pcap-reader.ts";
import { encodeStreamHeader } from "../lib/traffic/stream-header.ts";
import { type L2Path, resolveL2Path, sendUdpStream, UdpReceiver } from "../lib/traffic/udp.ts";

/**
 * `tandem bench traffic`: the highest UDP rate at which the native generator and the
 * receiver's tally stay exact (sent = received = an independent nftables counter on the
 * receiving host) through one kernel-forwarding router, the same for a tcpdump capture
 * (captured = counter, 0 kernel drops), side by side with tcpreplay --topspeed replaying
 * the same 64-byte frames. Stepped rates then a short bisection keep it under ~3 minutes.
 */
export interface TrafficBenchResult {
  udp_exact_pps: number;
  capture_exact_pps: number;
  tcpreplay_pps: number;
  ratio_vs_tcpreplay: number;
  cpu_pct: number;
}

export interface TrafficBenchOptions {
  /** Seconds per measured step (default 1). */
  stepSeconds?: number;
  /** Starting rates for the step phase (pps). */
  steps?: number[];
  /** Bisection rounds after the steps (default 3). */
  refine?: number;
  log?: (line: string) => void;
  json?: boolean;
}

const TOPOLOGY = `
lab: benchtraffic
description: sender - one kernel-forwarding router - receiver (bench/traffic.ts)
segments:
  lan: { subnet: 198.18.60.0/24 }
  far: { subnet: 198.18.61.0/24 }
hosts:
  src:
    interfaces: { eth0: { segment: lan, addresses: [198.18.60.10/24], mac: "02:00:00:00:60:10" } }
    routes: [{ to: default, via: 198.18.60.1 }]
  r1:
    forwarding: true
    interfaces:
      eth0: { segment: lan, addresses: [198.18.60.1/24], mac: "02:00:00:00:60:01" }
      eth1: { segment: far, addresses: [198.18.61.1/24], mac: "02:00:00:00:61:01" }
  dst:
    interfaces: { eth0: { segment: far, addresses: [198.18.61.10/24], mac: "02:00:00:00:61:10" } }
    routes: [{ to: 198.18.60.0/24, via: 198.18.61.1 }]
`;
const DST = "198.18.61.10";
const PORT = 6000;

interface Step {
  pps: number;
  sent: number;
  received: number;
  counter: number;
  sendErrors: number;
  achievedPps: number;
  cpuPct: number;
  exact: boolean;
}

interface CaptureStep {
  pps: number;
  counter: number;
  captured: number;
  dropped: number;
  achievedPps: number;
  exact: boolean;
}

async function counter(lab: Lab): Promise<number> {
  const r = await lab.host("dst").exec(["nft", "-j", "list", "counter", "inet", "tdbench", "rx"]);
  const parsed = JSON.parse(r.stdout) as { nftables: { counter?: { packets: number } }[] };
  return parsed.nftables.find((e) => e.counter)?.counter?.packets ?? Number.NaN;
}

async function resetCounter(lab: Lab): Promise<void> {
  await lab.host("dst").exec(["nft", "reset", "counter", "inet", "tdbench", "rx"]);
}

async function udpStep(
  lab: Lab,
  path: L2Path,
  pps: number,
  seconds: number,
  streamId: number,
): Promise<Step> {
  await resetCounter(lab);
  const receiver = await UdpReceiver.start(lab.host("dst").remote, { port: PORT });
  const sending = sendUdpStream(
    lab.host("src").remote,
    { streamId, dstIp: DST, dstPort: PORT, pps, count: Math.round(pps * seconds) },
    path,
  );
  // Stop the receiver whatever happens to the sender, then report the sender's failure.
  // Time is the subject: a 300 ms drain interval before the receiver stops (what is missing is lost).
  const sender = await sending.finally(() => pause(300));
  const report = await receiver.stop();
  const got = report.streams.find((s) => s.streamId === streamId);
  const received = got?.unique ?? 0;
  const count = await counter(lab);
  const sentPps = sender.sent / Math.max(0.001, (sender.lastSendMs! - sender.firstSendMs!) / 1000);
  return {
    pps,
    sent: sender.sent,
    received,
    counter: count,
    sendErrors: sender.sendErrors ?? 0,
    achievedPps: Math.round(sentPps),
    cpuPct: Math.round((sender.cpuMs / sender.wallMs) * 1000) / 10,
    exact:
      sender.sent === Math.round(pps * seconds) &&
      received === sender.sent &&
      count === sender.sent &&
      (got?.duplicates ?? 0) === 0 &&
      sentPps >= pps * 0.97,
  };
}

async function captureStep(
  lab: Lab,
  path: L2Path,
  pps: number,
  seconds: number,
  streamId: number,
): Promise<CaptureStep> {
  await resetCounter(lab);
  const capture = await Capture.start(lab.host("dst").remote, {
    interface: "eth0",
    filter: `udp dst port ${PORT}`,
  });
  try {
    const sender = await sendUdpStream(
      lab.host("src").remote,
      { streamId, dstIp: DST, dstPort: PORT, pps, count: Math.round(pps * seconds) },
      path,
    );
    await pause(300); // time is the subject: the same drain interval
    const stats = await capture.stop();
    const count = await counter(lab);
    let frames = 0;
    for await (const _ of capture.reader()) frames++;
    const achievedPps = sender.sent / Math.max(0.001, (sender.lastSendMs! - sender.firstSendMs!) / 1000);
    return {
      pps,
      counter: count,
      captured: frames,
      dropped: stats.droppedByKernel ?? Number.NaN,
      achievedPps: Math.round(achievedPps),
      exact:
        frames === count && count === sender.sent && stats.droppedByKernel === 0 && achievedPps >= pps * 0.97,
    };
  } finally {
    await capture.remove();
  }
}

/** Finds the highest exact rate: steps up until the first failure, then bisects. */
async function highestExact(
  steps: number[],
  refine: number,
  measure: (pps: number) => Promise<{ exact: boolean }>,
): Promise<number> {
  let good = 0;
  let bad = 0;
  for (const pps of steps) {
    if ((await measure(pps)).exact) good = pps;
    else {
      bad = pps;
      break;
    }
  }
  for (let i = 0; i < refine && bad > 0 && bad - good > 5000; i++) {
    const mid = Math.round((good + bad) / 2 / 1000) * 1000;
    if ((await measure(mid)).exact) good = mid;
    else bad = mid;
  }
  return good;
}

async function tcpreplayRate(
  lab: Lab,
  path: L2Path,
  frames: number,
  loops: number,
): Promise<{ pps: number; delivered: number; reported: number }> {
  const records: { tsMs: number; data: Uint8Array }[] = [];
  for (let seq = 0; seq < frames; seq++) {
    const data = new Uint8Array(64);
    data.set(macBytes(path.nextHopMac), 0);
    data.set(macBytes(path.srcMac), 6);
    data.set([0x08, 0x00], 12);
    const ip = [0x45, 0, 0, 50, 0, 0, 0x40, 0, 64, 17, 0, 0, ...ipBytes(path.srcIp), ...ipBytes(DST)];
    const sum = checksum(ip);
    ip[10] = sum >> 8;
    ip[11] = sum & 0xff;
    data.set(ip, 14);
    data.set([PORT >> 8, PORT & 0xff, PORT >> 8, PORT & 0xff, 0, 30, 0, 0], 34);
    encodeStreamHeader({ streamId: 99, seq, sentMs: 0 }, data, 42);
    records.push({ tsMs: seq, data });
  }
  const file = `/tmp/tandem-bench-${lab.prefix}.pcap`;
  await writeFile(file, writePcap(records));
  try {
    await resetCounter(lab);
    const r = await lab
      .host("src")
      .exec(["tcpreplay", "--topspeed", "--preload-pcap", `--loop=${loops}`, "-i", path.device, file]);
    await pause(300); // time is the subject: the same drain interval
    const delivered = await counter(lab);
    const actual = /Actual: (\d+) packets .* in ([\d.]+) seconds/.exec(r.stdout);
    const rated = /Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps/.exec(r.stdout);
    if (!actual) throw new Error(`tcpreplay output not understood:\n${r.stdout}\n${r.stderr}`);
    const seconds = Number(actual[2]);
    return { pps: Math.round(delivered / seconds), delivered, reported: Math.round(Number(rated?.[1] ?? 0)) };
  } finally {
    await lab.host("src").exec(["rm", "-f", file]);
  }
}

export async function runTrafficBench(options: TrafficBenchOptions = {}): Promise<TrafficBenchResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const seconds = options.stepSeconds ?? 1;
  const steps = options.steps ?? [100_000, 150_000, 200_000, 250_000, 300_000, 350_000, 400_000];
  const refine = options.refine ?? 3;
  const lab = await upLab(parseTopologyText(TOPOLOGY, "bench/traffic.ts"));
  try {
    const nft = await lab.host("dst").exec(["nft", "-f", "-"], {
      input: `table inet tdbench {\n counter rx {}\n chain inbound {\n  type filter hook input priority 0;\n  udp dport ${PORT} counter name rx\n }\n}\n`,
    });
    if (nft.code !== 0) throw new Error(`nft on dst failed: ${nft.stderr}`);
    const path = await resolveL2Path(lab.host("src").remote, DST);
    let streamId = 1;
    const udpSteps: Step[] = [];
    const udpExact = await highestExact(steps, refine, async (pps) => {
      const step = await udpStep(lab, path, pps, seconds, streamId++);
      udpSteps.push(step);
      log(
        `udp   ${String(pps).padStart(7)} pps  sent ${step.sent}  received ${step.received}  nft ${step.counter}  ` +
          `achieved ${step.achievedPps} pps  cpu ${step.cpuPct}%  ${step.exact ? "exact" : "NOT exact"}`,
      );
      return step;
    });
    const captureExact = await highestExact(steps, refine, async (pps) => {
      const step = await captureStep(lab, path, pps, seconds, streamId++);
      log(
        `pcap  ${String(pps).padStart(7)} pps  nft ${step.counter}  captured ${step.captured}  dropped ${step.dropped}  achieved ${step.achievedPps} pps  ` +
          `${step.exact ? "exact" : "NOT exact"}`,
      );
      return step;
    });
    const replay = await tcpreplayRate(lab, path, 50_000, 10);
    log(
      `tcpreplay --topspeed: delivered ${replay.delivered} frames, ${replay.pps} pps (tcpreplay reports ${replay.reported} pps sent)`,
    );
    const atExact = udpSteps.filter((s) => s.pps === udpExact && s.exact).at(-1);
    const result: TrafficBenchResult = {
      udp_exact_pps: udpExact,
      capture_exact_pps: captureExact,
      tcpreplay_pps: replay.pps,
      ratio_vs_tcpreplay: replay.pps > 0 ? Math.round((udpExact / replay.pps) * 1000) / 1000 : 0,
      cpu_pct: atExact?.cpuPct ?? 0,
    };
    log("");
    log("| measure | pps |");
    log("| --- | --- |");
    log(`| native generator + receiver tally, exact | ${result.udp_exact_pps} |`);
    log(`| tcpdump -w capture, exact | ${result.capture_exact_pps} |`);
    log(`| tcpreplay --topspeed --preload-pcap (delivered) | ${result.tcpreplay_pps} |`);
    log(`| ratio generator / tcpreplay | ${result.ratio_vs_tcpreplay} |`);
    log(`| generator CPU at its exact rate | ${result.cpu_pct}% of one core |`);
    log(JSON.stringify(result));
    return result;
  } finally {
    await lab.down();
  }
}

function macBytes(mac: string): number[] {
  return mac.split(":").map((h) => Number.parseInt(h, 16));
}
function ipBytes(ip: string): number[] {
  return ip.split(".").map(Number);
}
function checksum(bytes: number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

// Direct run: node --import tsx bench/traffic.ts (the CLI wires `tandem bench traffic --json`).
if (import.meta.url === `file://${process.argv[1]}`) {
  await runTrafficBench();
}
