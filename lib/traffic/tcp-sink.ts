import { createServer, type Server, type Socket } from "node:net";
import { EventBins } from "./event-bins.ts";
import { realtimeMs } from "./stream-header.ts";
import { DEFAULT_BIN_MS, type Timeline } from "./stream-tally.ts";
import { type ConnectionKind, encodeReceipt, TcpRecordParser } from "./tcp-record.ts";

/**
 * The receiving side of the TCP streams (tcp-streams.ts): listens on one or more ports,
 * parses every connection's records (tcp-record.ts) and checks continuity (each record's
 * sequence number is the previous one + 1), counts resets (ECONNRESET: an RST arrived),
 * measures stalls (the longest gap between two records of a connection, and connections
 * whose longest gap, or current silence, passed a threshold), and keeps a 10 ms timeline
 * of records, accepts, resets and closes. Short connections get a receipt with the number
 * of records received when their sender half-closes.
 */
export interface TcpSinkOptions {
  ports: readonly number[];
  /** Address to listen on; default all. */
  host?: string;
  /** A long-lived connection silent for longer than this counts as stalled; default 200 ms. */
  stallThresholdMs?: number;
  binMs?: number;
  /** listen() backlog; default 4096 (capped by net.core.somaxconn). */
  backlog?: number;
}

export type SinkConnectionState = "open" | "closed" | "reset" | "error" | "malformed";

export interface Gap {
  ms: number;
  /** Arrival of the record before the gap and of the one after it (ms since epoch). */
  startMs: number;
  endMs: number;
}

export interface SinkConnectionReport {
  /** Accept order on this sink. */
  id: number;
  remoteAddress: string;
  remotePort: number;
  localPort: number;
  runId: number | null;
  connIndex: number | null;
  kind: ConnectionKind | null;
  state: SinkConnectionState;
  records: number;
  /** Records whose sequence number was not the expected one (first mismatch in `firstDiscontinuity`). */
  discontinuities: number;
  firstDiscontinuity: { expected: number; got: number } | null;
  acceptedMs: number;
  firstRecordMs: number | null;
  lastRecordMs: number | null;
  closedMs: number | null;
  longestGap: Gap | null;
  /** Bytes after the last whole record at close (a record cut off by a reset). */
  trailingBytes: number;
  error: string | null;
}

export interface SinkTotals {
  ports: number[];
  accepted: number;
  open: number;
  closed: number;
  resets: number;
  errors: number;
  malformed: number;
  records: number;
  discontinuities: number;
  long: { connections: number; stalled: number; longestGap: Gap | null };
  short: { connections: number; receipts: number };
  stallThresholdMs: number;
  latencyMs: { min: number; mean: number; max: number } | null;
}

export interface SinkReport {
  totals: SinkTotals;
  connections?: SinkConnectionReport[];
}

interface Tracked extends SinkConnectionReport {
  socket: Socket;
  expectedSeq: number;
}

export class TcpSink {
  private readonly servers: Server[] = [];
  private readonly connections: Tracked[] = [];
  private readonly bins: EventBins;
  private readonly stallThresholdMs: number;
  private latencySum = 0;
  private latencyCount = 0;
  private latencyMin = Number.POSITIVE_INFINITY;
  private latencyMax = Number.NEGATIVE_INFINITY;

  private constructor(private readonly options: TcpSinkOptions) {
    this.bins = new EventBins(options.binMs ?? DEFAULT_BIN_MS);
    this.stallThresholdMs = options.stallThresholdMs ?? 200;
  }

  static async start(options: TcpSinkOptions): Promise<TcpSink> {
    if (options.ports.length === 0) throw new Error("TcpSink: ports: give at least one port");
    for (const port of options.ports) {
      if (!Number.isInteger(port) || port < 1 || port > 65_535) {
        throw new Error(`TcpSink: ports: ${JSON.stringify(port)} is not a port number`);
      }
    }
    const sink = new TcpSink(options);
    try {
      for (const port of options.ports) await sink.listen(port);
    } catch (error) {
      await sink.stop();
      throw error;
    }
    return sink;
  }

  private listen(port: number): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", (error) => reject(new Error(`TcpSink: listen on port ${port}: ${error.message}`)));
      server.listen({ port, host: this.options.host, backlog: this.options.backlog ?? 4096 }, () =>
        resolve(),
      );
    });
  }

  private accept(socket: Socket): void {
    const now = realtimeMs();
    const c: Tracked = {
      socket,
      expectedSeq: 0,
      id: this.connections.length,
      remoteAddress: socket.remoteAddress ?? "",
      remotePort: socket.remotePort ?? 0,
      localPort: socket.localPort ?? 0,
      runId: null,
      connIndex: null,
      kind: null,
      state: "open",
      records: 0,
      discontinuities: 0,
      firstDiscontinuity: null,
      acceptedMs: now,
      firstRecordMs: null,
      lastRecordMs: null,
      closedMs: null,
      longestGap: null,
      trailingBytes: 0,
      error: null,
    };
    this.connections.push(c);
    this.bins.add("accepted", now);
    const parser = new TcpRecordParser({
      hello: (hello) => {
        c.runId = hello.runId;
        c.connIndex = hello.connIndex;
        c.kind = hello.kind;
      },
      record: (header) => {
        const at = realtimeMs();
        if (header.seq !== c.expectedSeq) {
          c.discontinuities++;
          c.firstDiscontinuity ??= { expected: c.expectedSeq, got: header.seq };
        }
        c.expectedSeq = header.seq + 1;
        c.records++;
        if (c.lastRecordMs !== null) {
          const gap = at - c.lastRecordMs;
          if (c.longestGap === null || gap > c.longestGap.ms) {
            c.longestGap = { ms: gap, startMs: c.lastRecordMs, endMs: at };
          }
        } else c.firstRecordMs = at;
        c.lastRecordMs = at;
        const latency = at - header.sentMs;
        this.latencySum += latency;
        this.latencyCount++;
        if (latency < this.latencyMin) this.latencyMin = latency;
        if (latency > this.latencyMax) this.latencyMax = latency;
        this.bins.add("records", at);
      },
      malformed: (reason) => {
        c.state = "malformed";
        c.error = reason;
        socket.destroy();
      },
    });
    socket.on("data", (chunk: Buffer) => parser.push(chunk));
    socket.on("end", () => {
      // The sender half-closed: answer a short connection with its receipt, then close.
      if (c.state !== "open") return;
      if (c.kind === "short") socket.end(encodeReceipt(c.records));
      else socket.end();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (c.state !== "open") return;
      const reset = error.code === "ECONNRESET" || error.code === "EPIPE";
      c.state = reset ? "reset" : "error";
      c.error = error.code ?? error.message;
      this.bins.add(reset ? "resets" : "errors", realtimeMs());
    });
    socket.on("close", () => {
      const at = realtimeMs();
      c.closedMs = at;
      c.trailingBytes = parser.trailingBytes;
      if (c.state === "open") {
        c.state = "closed";
        this.bins.add("closed", at);
      }
    });
  }

  report(options: { connections?: boolean } = {}): SinkReport {
    const now = realtimeMs();
    const count = (state: SinkConnectionState) => this.connections.filter((c) => c.state === state).length;
    let stalled = 0;
    let longestGap: Gap | null = null;
    let longCount = 0;
    let shortCount = 0;
    let receipts = 0;
    let records = 0;
    let discontinuities = 0;
    for (const c of this.connections) {
      records += c.records;
      discontinuities += c.discontinuities;
      if (c.kind === "short") {
        shortCount++;
        if (c.state === "closed") receipts++;
        continue;
      }
      if (c.kind !== "long") continue;
      longCount++;
      const gap = this.currentLongestGap(c, now);
      if (gap && (longestGap === null || gap.ms > longestGap.ms)) longestGap = gap;
      if (gap && gap.ms > this.stallThresholdMs) stalled++;
    }
    const totals: SinkTotals = {
      ports: this.servers.map((s) => {
        const address = s.address();
        return typeof address === "object" && address ? address.port : 0;
      }),
      accepted: this.connections.length,
      open: count("open"),
      closed: count("closed"),
      resets: count("reset"),
      errors: count("error"),
      malformed: count("malformed"),
      records,
      discontinuities,
      long: { connections: longCount, stalled, longestGap },
      short: { connections: shortCount, receipts },
      stallThresholdMs: this.stallThresholdMs,
      latencyMs:
        this.latencyCount === 0
          ? null
          : { min: this.latencyMin, mean: this.latencySum / this.latencyCount, max: this.latencyMax },
    };
    if (!options.connections) return { totals };
    return {
      totals,
      connections: this.connections.map(({ socket: _socket, expectedSeq: _expected, ...rest }) => ({
        ...rest,
        longestGap: this.currentLongestGap(rest, now),
      })),
    };
  }

  /** The longest gap so far, counting the current silence of a connection that is still open. */
  private currentLongestGap(c: SinkConnectionReport, now: number): Gap | null {
    if (c.state !== "open" || c.lastRecordMs === null) return c.longestGap;
    const silence = now - c.lastRecordMs;
    return c.longestGap === null || silence > c.longestGap.ms
      ? { ms: silence, startMs: c.lastRecordMs, endMs: now }
      : c.longestGap;
  }

  timeline(range?: { fromMs?: number; toMs?: number }): Timeline {
    return this.bins.timeline(range);
  }

  /** Stops listening and closes every connection (unanswered short connections get reset). */
  async stop(): Promise<SinkReport> {
    const report = this.report({ connections: true });
    // server.close() waits for open connections, so end them first.
    for (const c of this.connections) c.socket.destroy();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s.listening) return resolve();
            s.close(() => resolve());
          }),
      ),
    );
    return report;
  }
}
