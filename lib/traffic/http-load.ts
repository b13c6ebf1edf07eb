import { connect, type Socket } from "node:net";
import { streamByte } from "./http-server.ts";

/**
 * The clients 1a-1c: many concurrent long-lived TCP connections to a VIP, each either
 * repeating keep-alive HTTP requests or running one long download, and counting what
 * the seed's transition mode must prevent: resets, stalls, corrupted or missing bytes.
 *
 * Hand-written HTTP/1.1 over net.Socket rather than node:http's client: every
 * connection must stay one TCP connection whose fate (reset, stall) is attributed to it;
 * http.Agent silently replaces a dead socket.
 */
export interface ClientLoadOptions {
  target: string;
  port: number;
  /** Connections repeating GET /tick. */
  connections: number;
  requestIntervalMs: number;
  /** Connections running one GET /download each. */
  downloads: number;
  downloadBytes: number;
  downloadRate: number;
  /** Local source addresses to spread connections over (default: the kernel's choice). */
  localAddresses?: string[];
  /** Opening all connections takes this long (avoids a SYN burst). */
  rampMs: number;
  /** A request or a download gap longer than this counts as a stall. */
  stallMs: number;
}

export interface ClientLoadReport {
  target: string;
  opened: number;
  failedConnects: number;
  established: number;
  /** Connections that ended with ECONNRESET/EPIPE or were closed by the peer early. */
  resets: number;
  otherErrors: number;
  requestsOk: number;
  /** Responses or bytes that were not what the server sends. */
  corrupt: number;
  /** Requests (or download gaps) longer than stallMs, including ones still waiting. */
  stalls: number;
  maxLatencyMs: number;
  /** Latest moment a latency above stallMs was seen (for the record). */
  downloadBytes: number;
  downloadsDone: number;
  open: number;
  errorCodes: Record<string, number>;
}

/** A report with every count at zero (a fresh client, or the start of a sum). */
export function emptyClientLoadReport(target: string): ClientLoadReport {
  return {
    target,
    opened: 0,
    failedConnects: 0,
    established: 0,
    resets: 0,
    otherErrors: 0,
    requestsOk: 0,
    corrupt: 0,
    stalls: 0,
    maxLatencyMs: 0,
    downloadBytes: 0,
    downloadsDone: 0,
    open: 0,
    errorCodes: {},
  };
}

class Conn {
  sock: Socket | undefined;
  buf = Buffer.alloc(0);
  pending: { sentAt: number; seq: number } | undefined;
  seq = 0;
  downloadAt = 0;
  lastDataAt = 0;
  dead = false;
  timer: NodeJS.Timeout | undefined;
  headerDone = false;
  bodyLeft = 0;
}

export class ClientLoad {
  private readonly conns: Conn[] = [];
  private readonly r: ClientLoadReport;
  private stopping = false;

  constructor(private readonly o: ClientLoadOptions) {
    this.r = emptyClientLoadReport(`${o.target}:${o.port}`);
  }

  /** Opens every connection (spread over rampMs); resolves when all are established or failed. */
  async start(): Promise<void> {
    const total = this.o.connections + this.o.downloads;
    const waits: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const c = new Conn();
      this.conns.push(c);
      const delay = total > 1 ? (this.o.rampMs * i) / total : 0;
      waits.push(
        new Promise((res) =>
          setTimeout(() => {
            this.open(c, i, i >= this.o.connections, res);
          }, delay),
        ),
      );
    }
    await Promise.all(waits);
  }

  private open(c: Conn, id: number, download: boolean, ready: () => void): void {
    const locals = this.o.localAddresses ?? [];
    const localAddress = locals.length > 0 ? locals[id % locals.length] : undefined;
    this.r.opened++;
    const sock = connect({
      host: this.o.target,
      port: this.o.port,
      ...(localAddress ? { localAddress } : {}),
    });
    c.sock = sock;
    sock.setNoDelay(true);
    let established = false;
    const connectTimer = setTimeout(() => {
      if (!established) sock.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" }));
    }, 10_000);
    sock.on("connect", () => {
      established = true;
      clearTimeout(connectTimer);
      this.r.established++;
      this.r.open++;
      ready();
      if (download) this.startDownload(c);
      else this.sendTick(c, id);
    });
    sock.on("data", (d: Buffer) => this.onData(c, id, d, download));
    sock.on("error", (e: NodeJS.ErrnoException) => {
      const code = e.code ?? e.message;
      this.r.errorCodes[code] = (this.r.errorCodes[code] ?? 0) + 1;
      if (!established) {
        clearTimeout(connectTimer);
        this.r.failedConnects++;
        ready();
      } else if (code === "ECONNRESET" || code === "EPIPE") this.r.resets++;
      else this.r.otherErrors++;
      this.kill(c, established);
    });
    sock.on("close", () => {
      if (!c.dead && established && !this.stopping) {
        // The peer closed a connection that should have stayed open.
        this.r.errorCodes.EARLY_CLOSE = (this.r.errorCodes.EARLY_CLOSE ?? 0) + 1;
        this.r.resets++;
      }
      this.kill(c, established);
    });
  }

  private kill(c: Conn, wasOpen: boolean): void {
    if (c.dead) return;
    c.dead = true;
    if (wasOpen) this.r.open--;
    if (c.timer) clearTimeout(c.timer);
    c.sock?.destroy();
  }

  private sendTick(c: Conn, id: number): void {
    if (c.dead || this.stopping || !c.sock) return;
    c.seq++;
    c.pending = { sentAt: Date.now(), seq: c.seq };
    c.headerDone = false;
    c.sock.write(`GET /tick?c=${id}&s=${c.seq} HTTP/1.1\r\nHost: vip\r\nConnection: keep-alive\r\n\r\n`);
  }

  private startDownload(c: Conn): void {
    if (!c.sock) return;
    c.downloadAt = 0;
    c.lastDataAt = Date.now();
    c.headerDone = false;
    c.sock.write(
      `GET /download?bytes=${this.o.downloadBytes}&rate=${this.o.downloadRate} HTTP/1.1\r\nHost: vip\r\nConnection: keep-alive\r\n\r\n`,
    );
  }

  private onData(c: Conn, id: number, d: Buffer, download: boolean): void {
    const now = Date.now();
    if (download) {
      let body = d;
      if (!c.headerDone) {
        c.buf = Buffer.concat([c.buf, d]);
        const end = c.buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        c.headerDone = true;
        body = c.buf.subarray(end + 4);
        c.buf = Buffer.alloc(0);
      }
      const gap = now - c.lastDataAt;
      this.noteLatency(gap);
      c.lastDataAt = now;
      for (let i = 0; i < body.length; i++) {
        if (body[i] !== streamByte(c.downloadAt + i)) {
          this.r.corrupt++;
          this.kill(c, true);
          return;
        }
      }
      c.downloadAt += body.length;
      this.r.downloadBytes += body.length;
      if (c.downloadAt >= this.o.downloadBytes) {
        this.r.downloadsDone++;
        this.startDownload(c); // keep the connection busy with the next download
      }
      return;
    }
    c.buf = Buffer.concat([c.buf, d]);
    for (;;) {
      const end = c.buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = c.buf.subarray(0, end).toString("latin1");
      const m = /content-length:\s*(\d+)/i.exec(head);
      const len = m ? Number(m[1]) : 0;
      if (c.buf.length < end + 4 + len) return;
      const body = c.buf.subarray(end + 4, end + 4 + len).toString();
      c.buf = c.buf.subarray(end + 4 + len);
      const p = c.pending;
      if (!p || !head.startsWith("HTTP/1.1 200") || !body.startsWith(`${id} ${p.seq} `)) {
        this.r.corrupt++;
        this.kill(c, true);
        return;
      }
      this.noteLatency(now - p.sentAt);
      this.r.requestsOk++;
      c.pending = undefined;
      const jitter = Math.random() * 0.2 * this.o.requestIntervalMs;
      c.timer = setTimeout(() => this.sendTick(c, id), this.o.requestIntervalMs * 0.9 + jitter);
    }
  }

  private noteLatency(ms: number): void {
    if (ms > this.r.maxLatencyMs) this.r.maxLatencyMs = ms;
    if (ms > this.o.stallMs) this.r.stalls++;
  }

  /** A snapshot; requests outstanding longer than stallMs count as stalls. */
  report(): ClientLoadReport {
    const now = Date.now();
    let waiting = 0;
    for (const c of this.conns) {
      if (c.dead) continue;
      if (c.pending && now - c.pending.sentAt > this.o.stallMs) waiting++;
      if (c.downloadAt > 0 && now - c.lastDataAt > this.o.stallMs) waiting++;
    }
    return { ...this.r, stalls: this.r.stalls + waiting, errorCodes: { ...this.r.errorCodes } };
  }

  /** Closes every connection and returns the final report. */
  stop(): ClientLoadReport {
    const rep = this.report();
    this.stopping = true;
    for (const c of this.conns) this.kill(c, !c.dead && !!c.sock);
    return rep;
  }
}

/**
 * Short connections as fast as `concurrency` loops can go for `durationMs`: connect,
 * one keep-alive-less request, close. Measures connections per second through the
 * balancers (each one is a new conntrack entry and a new NAT binding).
 */
export interface BurstReport {
  completed: number;
  failed: number;
  durationMs: number;
  perSecond: number;
}

export async function connectionBurst(o: {
  target: string;
  port: number;
  concurrency: number;
  durationMs: number;
  localAddresses?: string[];
}): Promise<BurstReport> {
  let completed = 0;
  let failed = 0;
  const t0 = Date.now();
  const end = t0 + o.durationMs;
  const one = (i: number) =>
    new Promise<boolean>((resolve) => {
      const locals = o.localAddresses ?? [];
      const localAddress = locals.length > 0 ? locals[i % locals.length] : undefined;
      const sock = connect({ host: o.target, port: o.port, ...(localAddress ? { localAddress } : {}) });
      let got = "";
      const timer = setTimeout(() => sock.destroy(new Error("timeout")), 5000);
      sock.setNoDelay(true);
      sock.on("connect", () =>
        sock.write(`GET /tick?c=${i}&s=1 HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n`),
      );
      sock.on("data", (d: Buffer) => {
        got += d.toString("latin1");
      });
      sock.on("error", () => undefined);
      sock.on("close", () => {
        clearTimeout(timer);
        resolve(got.startsWith("HTTP/1.1 200"));
      });
    });
  await Promise.all(
    Array.from({ length: o.concurrency }, async (_, i) => {
      // Time is the subject: connections per second over a fixed interval.
      while (Date.now() < end) {
        if (await one(i)) completed++;
        else failed++;
      }
    }),
  );
  const durationMs = Date.now() - t0;
  return { completed, failed, durationMs, perSecond: Math.round((completed * 1000) / durationMs) };
}
