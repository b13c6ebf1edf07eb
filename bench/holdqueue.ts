// `tandem bench holdqueue` (runHoldQueueBench prints the table, then the JSON line last):
// packets per second through one kernel-forwarding namespace,
// plain and through NFQUEUE (raw addon accept-all, HoldQueue pass, HoldQueue observe),
// plus the rate at which a HoldQueue drains a large held backlog on release.
// Offered load: tcpreplay --topspeed of 64-byte UDP frames from the sender namespace.
// Delivered: an nftables counter in the receiver's prerouting (then dropped there, so no
// socket or ICMP work skews it). Rate = delivered packets / the sender's send time, so a
// queue that keeps up reports the offered rate and one that does not reports less (the
// kernel drops what does not fit in the queue: queue_dropped).
import { writeFile } from "node:fs/promises";
import { openQueue } from "tandem-nfqueue";
import { HoldQueue } from "../lib/dataplane/hold-queue.ts";
import { ensureQueueRule, type QueueRule, removeQueueRule } from "../lib/dataplane/iptables-queue.ts";
import { readCounter, replaceTable } from "../lib/dataplane/nft.ts";
import { run } from "../lib/lab/command.ts";
import {
  buildForwardingLab,
  type ForwardingLab,
  RECEIVER,
  SOURCE_A,
  UDP_PORT,
} from "../lib/lab/forwarding-lab.ts";
import { heldWithin, waitUntil } from "../lib/remote/wait.ts";

export interface HoldQueueBenchResult {
  packets_per_run: number;
  offered_pps: number;
  plain_pps: number;
  nfqueue_accept_pps: number;
  holdqueue_pass_pps: number;
  holdqueue_observe_pps: number;
  /** Consumer CPU per packet (µs, user+system of this process): independent of machine load. */
  nfqueue_accept_cpu_us: number;
  holdqueue_pass_cpu_us: number;
  holdqueue_observe_cpu_us: number;
  release_packets: number;
  /** Time of the release() call: verdicts for the whole backlog. */
  release_call_ms: number;
  /** Backlog / time until the receiver counted all of it. */
  release_pps: number;
}

export interface HoldQueueBenchOptions {
  /** Packets per measured run (default 300000). */
  packets?: number;
  /** Backlog held then released (default 50000). */
  releasePackets?: number;
  log?: (line: string) => void;
}

const QUEUE = 300;
const RULE: QueueRule = { table: "mangle", chain: "FORWARD", mark: 0x3000, mask: 0xf000, queueNum: QUEUE };
const FRAMES_IN_FILE = 1000;

function ipChecksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += header.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function macBytes(text: string): Buffer {
  return Buffer.from(text.split(":").map((h) => Number.parseInt(h, 16)));
}

/** 60-byte Ethernet frames (64 on the wire with FCS): IPv4/UDP from SOURCE_A to the receiver. */
function udpFrames(srcMac: string, dstMac: string): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0; i < FRAMES_IN_FILE; i++) {
    const f = Buffer.alloc(60);
    macBytes(dstMac).copy(f, 0);
    macBytes(srcMac).copy(f, 6);
    f.writeUInt16BE(0x0800, 12);
    const ip = f.subarray(14, 34);
    ip[0] = 0x45;
    ip.writeUInt16BE(46, 2);
    ip.writeUInt16BE(i, 4);
    ip[8] = 64;
    ip[9] = 17;
    Buffer.from(SOURCE_A.split(".").map(Number)).copy(ip, 12);
    Buffer.from(RECEIVER.split(".").map(Number)).copy(ip, 16);
    ip.writeUInt16BE(ipChecksum(ip), 10);
    f.writeUInt16BE(40000 + (i % 16), 34);
    f.writeUInt16BE(UDP_PORT, 36);
    f.writeUInt16BE(26, 38); // UDP length; checksum 0 = none
    frames.push(f);
  }
  return frames;
}

function pcapFile(frames: Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20); // Ethernet
  const records = frames.map((f, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(i, 4);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  return Buffer.concat([header, ...records]);
}

async function mac(ns: string, dev: string): Promise<string> {
  const out = await run(["ip", "-n", ns, "-j", "link", "show", dev]);
  const parsed = JSON.parse(out.stdout) as Array<{ address: string }>;
  return parsed[0]!.address;
}

async function delivered(lab: ForwardingLab): Promise<number> {
  return (await readCounter(lab.exec.receiver, { family: "inet", table: "tdbench" }, "rx")).packets;
}

/** Waits until the receiver's counter has not moved for `quietMs`. */
async function settle(lab: ForwardingLab, quietMs = 300): Promise<number> {
  let last: number | undefined;
  return waitUntil(
    async () => {
      const now = await delivered(lab);
      const quiet = now === last;
      last = now;
      return quiet ? now : undefined;
    },
    {
      timeoutMs: 60_000,
      what: `the receiver's counter to stay still for ${quietMs} ms`,
      everyMs: quietMs,
    },
  );
}

interface ReplayRun {
  sent: number;
  seconds: number;
  delivered: number;
  /** CPU time (user + system) this process spent during the run, per delivered packet (µs). */
  cpuUsPerPacket: number;
}

async function replay(lab: ForwardingLab, file: string, packets: number): Promise<ReplayRun> {
  const before = await delivered(lab);
  const cpu0 = process.cpuUsage();
  const loops = Math.max(1, Math.round(packets / FRAMES_IN_FILE));
  const r = await run([
    "ip",
    "netns",
    "exec",
    lab.sender,
    "tcpreplay",
    "--topspeed",
    "--preload-pcap",
    `--loop=${loops}`,
    "-i",
    "eth0",
    file,
  ]);
  const m = /Actual: (\d+) packets .* sent in ([\d.]+) seconds/.exec(r.stdout);
  if (!m) throw new Error(`tcpreplay output not understood:\n${r.stdout}\n${r.stderr}`);
  const after = await settle(lab);
  const cpu = process.cpuUsage(cpu0);
  const n = after - before;
  return {
    sent: Number(m[1]),
    seconds: Number(m[2]),
    delivered: n,
    cpuUsPerPacket: n > 0 ? Math.round(((cpu.user + cpu.system) / n) * 100) / 100 : 0,
  };
}

function pps(r: ReplayRun): number {
  return Math.round(r.delivered / r.seconds);
}

export async function runHoldQueueBench(options: HoldQueueBenchOptions = {}): Promise<HoldQueueBenchResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const packets = options.packets ?? 300_000;
  const releasePackets = options.releasePackets ?? 50_000;
  const lab = await buildForwardingLab();
  const file = `/tmp/${lab.prefix}-holdqueue.pcap`;
  try {
    await replaceTable(
      lab.exec.receiver,
      { family: "inet", table: "tdbench" },
      `counter rx { }
      chain pre { type filter hook prerouting priority -150; policy accept; udp dport ${UDP_PORT} counter name rx drop; }`,
    );
    await replaceTable(
      lab.exec.forwarder,
      { family: "inet", table: "tdclassify" },
      `chain classify { type filter hook forward priority -200; policy accept; ip saddr ${SOURCE_A} meta mark set meta mark or 0x3000; }`,
    );
    await writeFile(
      file,
      pcapFile(udpFrames(await mac(lab.sender, "eth0"), await mac(lab.forwarder, "eth0"))),
    );

    log("plain forwarding ...");
    const plain = await replay(lab, file, packets);
    await ensureQueueRule(lab.exec.forwarder, RULE);

    log("NFQUEUE, addon accept-all ...");
    const raw = openQueue(QUEUE, { netns: lab.forwarder, maxLen: 8192, rcvBufBytes: 8 << 20 }, (p) =>
      raw.verdict(p.id, "accept"),
    );
    const accept = await replay(lab, file, packets);
    raw.close();

    log("NFQUEUE, HoldQueue pass ...");
    let hq = HoldQueue.open<string>({ queueNum: QUEUE, queue: { netns: lab.forwarder }, key: (s) => s.src });
    const pass = await replay(lab, file, packets);
    hq.close();

    log("NFQUEUE, HoldQueue observe ...");
    hq = HoldQueue.open<string>({ queueNum: QUEUE, queue: { netns: lab.forwarder }, key: (s) => s.src });
    hq.observe(SOURCE_A);
    const observe = await replay(lab, file, packets);
    hq.close();

    log(`hold ${releasePackets} packets, then release ...`);
    hq = HoldQueue.open<string>({
      queueNum: QUEUE,
      queue: { netns: lab.forwarder, maxLen: releasePackets * 2, rcvBufBytes: 64 << 20 },
      key: (s) => s.src,
      bounds: { packets: releasePackets * 2 },
    });
    hq.hold(SOURCE_A);
    const before = await delivered(lab);
    await replay(lab, file, releasePackets);
    const held = hq.counters(SOURCE_A).held;
    const t0 = performance.now();
    hq.release(SOURCE_A);
    const callMs = performance.now() - t0;
    // A drain that never completes is reported (drainMs ~30 s), not thrown.
    await heldWithin(async () => (await delivered(lab)) - before >= held, {
      timeoutMs: 30_000,
      what: "the released packets to reach the receiver",
      everyMs: 1,
    });
    const drainMs = performance.now() - t0;
    hq.close();
    await removeQueueRule(lab.exec.forwarder, RULE);

    const result: HoldQueueBenchResult = {
      packets_per_run: packets,
      offered_pps: Math.round(plain.sent / plain.seconds),
      plain_pps: pps(plain),
      nfqueue_accept_pps: pps(accept),
      holdqueue_pass_pps: pps(pass),
      holdqueue_observe_pps: pps(observe),
      nfqueue_accept_cpu_us: accept.cpuUsPerPacket,
      holdqueue_pass_cpu_us: pass.cpuUsPerPacket,
      holdqueue_observe_cpu_us: observe.cpuUsPerPacket,
      release_packets: held,
      release_call_ms: Math.round(callMs * 10) / 10,
      release_pps: Math.round(held / (drainMs / 1000)),
    };
    const rows: Array<[string, ReplayRun]> = [
      ["plain forwarding", plain],
      ["NFQUEUE addon accept", accept],
      ["HoldQueue pass", pass],
      ["HoldQueue observe", observe],
    ];
    console.log("mode                   sent      delivered  seconds  delivered pps  consumer CPU µs/pkt");
    for (const [name, r] of rows) {
      console.log(
        `${name.padEnd(22)} ${String(r.sent).padStart(8)}  ${String(r.delivered).padStart(9)}  ${r.seconds.toFixed(3).padStart(7)}  ${String(pps(r)).padStart(13)}  ${name === "plain forwarding" ? "-" : r.cpuUsPerPacket.toFixed(2)}`,
      );
    }
    console.log(
      `release of ${held} held packets: release() ${result.release_call_ms} ms, all delivered after ${Math.round(drainMs)} ms (${result.release_pps} pps; delivery polled every ~10 ms)`,
    );
    console.log(JSON.stringify(result));
    return result;
  } finally {
    await run(["rm", "-f", file], { allowFailure: true });
    await lab.teardown();
  }
}
