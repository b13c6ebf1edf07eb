import { createSocket, type Socket } from "node:dgram";
import { readFile } from "node:fs/promises";
import type { SenderTotals } from "./analyzer.ts";
import {
  decodeStreamHeader,
  encodeStreamHeader,
  realtimeMs,
  STREAM_HEADER_LENGTH,
  stampStreamHeader,
} from "./stream-header.ts";
import { DEFAULT_BIN_MS, TallyBook, type TallySummary } from "./stream-tally.ts";

/**
 * The portable UDP path: a Node `dgram` sender on a connected socket and a `dgram`
 * receiver, both speaking the stream header of stream-header.ts, for hosts where the
 * native AF_PACKET generator (native/pktgen, udp.ts) cannot run. Measured here: a
 * connected dgram socket reaches ~210k pps exact; the native sender is the fast path.
 * Like every UDP sender it cannot see drops after the socket (qdisc, NIC), so trust the
 * receiver's count or an nftables counter on the receiving host.
 */
export interface DgramStreamOptions {
  streamId: number;
  dstIp: string;
  dstPort: number;
  srcIp?: string;
  srcPort?: number;
  /** UDP payload bytes (>= 20, the stream header); default 22, a 64-byte Ethernet frame. */
  payloadBytes?: number;
  /** Packets per second; 0 = as fast as the socket takes them. */
  pps: number;
  count?: number;
  durationMs?: number;
  /** Datagrams handed to libuv and not yet sent, at most; default 4096. */
  maxInFlight?: number;
}

export interface DgramSenderTotals extends SenderTotals {
  /** Sequence numbers 0..sent-1 were used; `sendErrors` of them failed in the kernel. */
  sent: number;
  sendErrors: number;
  sendErrorsByCode: Record<string, number>;
  firstSendMs: number;
  lastSendMs: number;
  done: boolean;
  /** CPU time of the whole agent process while sending, and the wall time. */
  cpuMs: number;
  wallMs: number;
}

export class DgramSender {
  readonly finished: Promise<DgramSenderTotals>;
  private socket: Socket | undefined;
  private issued = 0;
  private completed = 0;
  private errors = 0;
  private readonly errorsByCode: Record<string, number> = {};
  private firstSendMs = Number.NaN;
  private lastSendMs = Number.NaN;
  private startedMs = 0;
  private endedMs = Number.NaN;
  private cpuStart: NodeJS.CpuUsage | undefined;
  private cpuMs = 0;
  private stopping = false;
  private launching = false;
  private readonly template: Buffer;
  private resolveFinished: (totals: DgramSenderTotals) => void = () => {};

  constructor(private readonly options: DgramStreamOptions) {
    const payload = options.payloadBytes ?? 22;
    if (!Number.isInteger(payload) || payload < STREAM_HEADER_LENGTH || payload > 65_507) {
      throw new Error(`payloadBytes: must be an integer in ${STREAM_HEADER_LENGTH}..65507, got ${payload}`);
    }
    if (!(Number.isFinite(options.pps) && options.pps >= 0)) {
      throw new Error(`pps: must be a number >= 0, got ${JSON.stringify(options.pps)}`);
    }
    if (options.count === undefined && options.durationMs === undefined) {
      throw new Error("udp stream: give count or durationMs");
    }
    this.template = Buffer.alloc(payload);
    encodeStreamHeader({ streamId: options.streamId, seq: 0, sentMs: 0 }, this.template);
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
  }

  async start(): Promise<void> {
    const socket = createSocket({ type: "udp4", sendBufferSize: 4 * 1024 * 1024 });
    this.socket = socket;
    socket.on("error", () => {}); // send errors arrive in the callbacks
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ port: this.options.srcPort ?? 0, address: this.options.srcIp }, () => {
        socket.connect(this.options.dstPort, this.options.dstIp, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    });
    this.startedMs = realtimeMs();
    this.cpuStart = process.cpuUsage();
    this.launching = true;
    this.pump();
  }

  /** Sends what is due, in slices, yielding to the event loop between them (stats calls stay answered). */
  private pump = (): void => {
    if (!this.launching) return;
    const now = realtimeMs();
    const elapsed = now - this.startedMs;
    const limit = this.options.count ?? Number.POSITIVE_INFINITY;
    const overTime = this.options.durationMs !== undefined && elapsed >= this.options.durationMs;
    if (this.stopping || overTime || this.issued >= limit) {
      this.launching = false;
      this.maybeFinish();
      return;
    }
    const due =
      this.options.pps === 0 ? limit : Math.min(limit, Math.floor((elapsed * this.options.pps) / 1000) + 1);
    const room = (this.options.maxInFlight ?? 4096) - (this.issued - this.completed);
    const batch = Math.min(due - this.issued, room, 512);
    for (let i = 0; i < batch; i++) this.sendOne(now);
    // Ahead of schedule: sleep until the next packet is due (timers are ~1 ms); else keep going.
    if (batch <= 0 && room > 0 && this.options.pps > 0) {
      const nextDueMs = this.startedMs + (this.issued * 1000) / this.options.pps;
      setTimeout(this.pump, Math.max(0, Math.min(5, nextDueMs - realtimeMs() - 0.5)));
    } else setImmediate(this.pump);
  };

  private sendOne(now: number): void {
    const seq = this.issued++;
    const datagram = Buffer.allocUnsafe(this.template.length);
    this.template.copy(datagram);
    stampStreamHeader(datagram, seq, now);
    if (seq === 0) this.firstSendMs = now;
    this.lastSendMs = now;
    this.socket!.send(datagram, (error) => {
      this.completed++;
      if (error) {
        this.errors++;
        const code = (error as NodeJS.ErrnoException).code ?? error.message;
        this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
      }
      if (!this.launching) this.maybeFinish();
    });
  }

  private maybeFinish(): void {
    if (this.launching || this.completed < this.issued || !Number.isNaN(this.endedMs)) return;
    this.endedMs = realtimeMs();
    const cpu = process.cpuUsage(this.cpuStart);
    this.cpuMs = (cpu.user + cpu.system) / 1000;
    this.socket?.close();
    this.resolveFinished(this.totals());
  }

  totals(): DgramSenderTotals {
    const done = !Number.isNaN(this.endedMs);
    const cpu = done ? this.cpuMs : this.cpuStart ? cpuMsSince(this.cpuStart) : 0;
    return {
      streamId: this.options.streamId,
      sent: this.issued,
      sendErrors: this.errors,
      sendErrorsByCode: { ...this.errorsByCode },
      firstSendMs: this.firstSendMs,
      lastSendMs: this.lastSendMs,
      done,
      cpuMs: cpu,
      wallMs: (done ? this.endedMs : realtimeMs()) - this.startedMs,
    };
  }

  /** Stops sending; resolves once every datagram handed over has been sent. */
  stop(): Promise<DgramSenderTotals> {
    this.stopping = true;
    if (!this.launching) this.maybeFinish();
    return this.finished;
  }
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const cpu = process.cpuUsage(start);
  return (cpu.user + cpu.system) / 1000;
}

export interface DgramReceiverOptions {
  port: number;
  /** Address to bind; default all. */
  host?: string;
  binMs?: number;
  /** SO_RCVBUF request in bytes (the kernel caps it at net.core.rmem_max); default 4 MiB. */
  receiveBufferBytes?: number;
}

export interface DgramReceiverReport {
  port: number;
  /** Datagrams read from the socket, tagged or not. */
  datagrams: number;
  /** Datagrams without a valid stream header: counted and dropped. */
  untagged: number;
  /** The kernel's drop counter for this socket (/proc/net/udp), e.g. a full receive buffer. */
  socketDrops: number | null;
  streams: TallySummary[];
}

export class DgramReceiver {
  private datagrams = 0;
  private untagged = 0;
  private readonly book: TallyBook;

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
    binMs: number,
  ) {
    this.book = new TallyBook(binMs);
    socket.on("message", (message: Buffer) => {
      const at = realtimeMs();
      this.datagrams++;
      const header = decodeStreamHeader(message);
      if (!header.ok) {
        this.untagged++;
        return;
      }
      this.book.tally(header.value.streamId).observe(header.value.seq, at, header.value.sentMs);
    });
  }

  static async start(options: DgramReceiverOptions): Promise<DgramReceiver> {
    const socket = createSocket({
      type: "udp4",
      recvBufferSize: options.receiveBufferBytes ?? 4 * 1024 * 1024,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", (error) =>
        reject(new Error(`udp receiver: bind port ${options.port}: ${error.message}`)),
      );
      socket.bind({ port: options.port, address: options.host }, () => resolve());
    });
    socket.removeAllListeners("error");
    socket.on("error", () => {});
    return new DgramReceiver(socket, socket.address().port, options.binMs ?? DEFAULT_BIN_MS);
  }

  async report(options: { timeline?: boolean } = {}): Promise<DgramReceiverReport> {
    const streams = this.book
      .summaries()
      .map((s) => (options.timeline === false ? { ...s, timeline: { ...s.timeline, series: {} } } : s));
    return {
      port: this.port,
      datagrams: this.datagrams,
      untagged: this.untagged,
      socketDrops: await udpSocketDrops(this.port),
      streams,
    };
  }

  async stop(): Promise<DgramReceiverReport> {
    const report = await this.report();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
    return report;
  }
}

/** The `drops` column of /proc/net/udp for the socket bound to `port` in this namespace. */
export async function udpSocketDrops(port: number): Promise<number | null> {
  let text: string;
  try {
    text = await readFile("/proc/net/udp", "utf8");
  } catch {
    return null;
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1]?.endsWith(`:${hexPort}`)) {
      const drops = Number(fields[fields.length - 1]);
      return Number.isFinite(drops) ? drops : null;
    }
  }
  return null;
}
