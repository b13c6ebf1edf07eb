import type { SenderTotals } from "./analyzer.ts";
import { ensurePktgen } from "./native.ts";
import { type GracefulProcess, startGraceful, type TrafficHost } from "./remote-process.ts";
import { TallyBook, type TallySummary } from "./stream-tally.ts";

/**
 * UDP streams between lab hosts with the native generator (native/pktgen): the sender
 * builds frames once and sends them with AF_PACKET sendmmsg at a paced rate; the
 * receiver reads with recvmmsg and streams a 24-byte record per tagged datagram back
 * over the SSH channel, where the controller tallies them (loss, duplicates, order,
 * gaps, latency, 10 ms bins). In a virtual lab the hosts share this filesystem, so the
 * binary runs in place.
 */
export interface UdpStreamOptions {
  streamId: number;
  dstIp: string;
  dstPort: number;
  srcPort?: number;
  /** Frame size in bytes without FCS (62..9000); default 64. */
  frameBytes?: number;
  /** Packets per second; 0 = as fast as possible. */
  pps: number;
  count?: number;
  durationMs?: number;
}

export interface L2Path {
  device: string;
  srcMac: string;
  srcIp: string;
  nextHopMac: string;
}

/** pktgen on `host`: a physical host's prepared copy, else the controller's build (shared files). */
async function pktgenOn(host: TrafficHost): Promise<string> {
  const prepared = (host as { preparedDir?: string }).preparedDir;
  return prepared ? `${prepared}/bin/pktgen` : ensurePktgen();
}

/** Finds egress device, source address and next-hop MAC toward `dstIp` on a host (ARP-resolving it). */
export async function resolveL2Path(host: TrafficHost, dstIp: string): Promise<L2Path> {
  const route = await host.exec(["ip", "-j", "route", "get", dstIp]);
  const parsed = JSON.parse(route.stdout) as { dev: string; gateway?: string; prefsrc: string }[];
  const entry = parsed[0];
  if (!entry) throw new Error(`${host.name}: no route to ${dstIp}`);
  const nextHop = entry.gateway ?? dstIp;
  const link = JSON.parse((await host.exec(["ip", "-j", "link", "show", entry.dev])).stdout) as {
    address: string;
  }[];
  for (let attempt = 0; attempt < 3; attempt++) {
    await host.exec(["ping", "-c", "1", "-W", "1", "-I", entry.dev, nextHop]);
    const neigh = JSON.parse(
      (await host.exec(["ip", "-j", "neigh", "show", nextHop, "dev", entry.dev])).stdout,
    ) as { lladdr?: string }[];
    const mac = neigh[0]?.lladdr;
    if (mac)
      return { device: entry.dev, srcMac: link[0]?.address ?? "", srcIp: entry.prefsrc, nextHopMac: mac };
  }
  throw new Error(`${host.name}: cannot resolve the MAC of next hop ${nextHop} on ${entry.dev}`);
}

/** Sends one stream from `host` and returns what the generator says it sent. */
export interface NativeSenderTotals extends SenderTotals {
  /** CPU time (user + system) the generator used, and its wall time. */
  cpuMs: number;
  wallMs: number;
}

export async function sendUdpStream(
  host: TrafficHost,
  options: UdpStreamOptions,
  path?: L2Path,
): Promise<NativeSenderTotals> {
  if (options.count === undefined && options.durationMs === undefined) {
    throw new Error("sendUdpStream: give count or durationMs");
  }
  const l2 = path ?? (await resolveL2Path(host, options.dstIp));
  const binary = await pktgenOn(host);
  const argv = [
    binary,
    "send",
    "--if",
    l2.device,
    "--src-mac",
    l2.srcMac,
    "--dst-mac",
    l2.nextHopMac,
    "--src-ip",
    l2.srcIp,
    "--dst-ip",
    options.dstIp,
    "--sport",
    String(options.srcPort ?? options.dstPort),
    "--dport",
    String(options.dstPort),
    "--stream",
    String(options.streamId),
    "--size",
    String(options.frameBytes ?? 64),
    "--pps",
    String(options.pps),
    ...(options.count !== undefined ? ["--count", String(options.count)] : []),
    ...(options.durationMs !== undefined ? ["--duration-ms", String(options.durationMs)] : []),
  ];
  const result = await host.exec(argv);
  if (result.code !== 0)
    throw new Error(`${host.name}: pktgen send failed (${result.code}): ${result.stderr}`);
  const totals = JSON.parse(result.stdout) as {
    sent: number;
    errors: number;
    firstSendMs: number;
    lastSendMs: number;
    cpuMs: number;
    wallMs: number;
  };
  return {
    cpuMs: totals.cpuMs,
    wallMs: totals.wallMs,
    streamId: options.streamId,
    sent: totals.sent,
    sendErrors: totals.errors,
    firstSendMs: totals.firstSendMs,
    lastSendMs: totals.lastSendMs,
  };
}

const RECORD_BYTES = 24;

/** Decodes pktgen's receive records into a tally book; keeps partial records across chunks. */
export class ReceiveRecordParser {
  private pending = Buffer.alloc(0);
  constructor(
    readonly book: TallyBook,
    /** Moves host timestamps to the controller's clock (physical labs); see analyzeCapture's clocks. */
    private readonly clocks?: { receiverOffsetMs: number; senderOffsetMs: (streamId: number) => number },
  ) {}

  push(chunk: Buffer): void {
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    const whole = data.length - (data.length % RECORD_BYTES);
    for (let o = 0; o < whole; o += RECORD_BYTES) {
      const stream = data.readUInt32LE(o);
      const seq = data.readUInt32LE(o + 4);
      const sentMs = data.readUInt32LE(o + 8) * 1000 + data.readUInt32LE(o + 12) / 1e6;
      const rxMs = data.readUInt32LE(o + 16) * 1000 + data.readUInt32LE(o + 20) / 1e6;
      const c = this.clocks;
      if (c)
        this.book.tally(stream).observe(seq, rxMs - c.receiverOffsetMs, sentMs - c.senderOffsetMs(stream));
      else this.book.tally(stream).observe(seq, rxMs, sentMs);
    }
    this.pending = Buffer.from(data.subarray(whole));
  }
}

export interface ReceiverReport {
  streams: TallySummary[];
  /** The native receiver's own counts (tagged datagrams, untagged datagrams). */
  received: number;
  untagged: number;
}

/** A UDP receiver on a lab host: every tagged datagram on `port` is tallied here. */
export class UdpReceiver {
  private constructor(
    private readonly process: GracefulProcess,
    private readonly parser: ReceiveRecordParser,
    private readonly log: () => string,
  ) {}

  static async start(
    host: TrafficHost,
    options: {
      port: number;
      binMs?: number;
      clocks?: { receiverOffsetMs: number; senderOffsetMs: (streamId: number) => number };
    },
  ): Promise<UdpReceiver> {
    const binary = await pktgenOn(host);
    const parser = new ReceiveRecordParser(new TallyBook(options.binMs), options.clocks);
    let log = "";
    let ready: () => void = () => {};
    const listening = new Promise<void>((resolve) => {
      ready = resolve;
    });
    const process = await startGraceful(host, [binary, "recv", "--port", String(options.port)], {
      onStdout: (chunk) => parser.push(chunk),
      onStderr: (chunk) => {
        log += chunk.toString();
        if (log.includes("receiving on port")) ready();
      },
    });
    await Promise.race([
      listening,
      process.done.then(() => Promise.reject(new Error(`${host.name}: pktgen recv exited: ${log}`))),
    ]);
    return new UdpReceiver(process, parser, () => log);
  }

  /** Current tallies (the receiver keeps running). */
  snapshot(): TallySummary[] {
    return this.parser.book.summaries();
  }

  async stop(): Promise<ReceiverReport> {
    await this.process.stop("INT");
    const summary = /\{"received":(\d+),"untagged":(\d+)\}/.exec(this.log());
    return {
      streams: this.parser.book.summaries(),
      received: summary ? Number(summary[1]) : Number.NaN,
      untagged: summary ? Number(summary[2]) : Number.NaN,
    };
  }
}
