import { randomInt } from "node:crypto";
import { connect, type Socket } from "node:net";
import { EventBins } from "./event-bins.ts";
import { realtimeMs } from "./stream-header.ts";
import { DEFAULT_BIN_MS, type Timeline } from "./stream-tally.ts";
import {
  checkRecordBytes,
  decodeReceipt,
  encodeHello,
  encodeRecords,
  TCP_RECEIPT_LENGTH,
} from "./tcp-record.ts";
import type { SinkConnectionReport, SinkReport } from "./tcp-sink.ts";

/**
 * The sending side of the TCP streams: many concurrent long-lived connections that each
 * write sequence-tagged records (tcp-record.ts) at a set rate, and short connections
 * opened at a set rate that send a few records, half-close and wait for the sink's
 * receipt. The sink (tcp-sink.ts) checks continuity; `compareTcpStreams` matches both
 * sides connection by connection.
 */

/** Connect failures, resets and other errors, by errno code (ETIMEDOUT = our connect timeout). */
export type CodeCounts = Record<string, number>;

function bump(counts: CodeCounts, code: string): void {
  counts[code] = (counts[code] ?? 0) + 1;
}

function errorCode(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e?.code ?? e?.message ?? String(error);
}

const isResetCode = (code: string) => code === "ECONNRESET" || code === "EPIPE";

function checkPorts(ports: readonly number[], field: string): void {
  if (ports.length === 0) throw new Error(`${field}: give at least one port`);
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new Error(`${field}: ${JSON.stringify(port)} is not a port number`);
    }
  }
}

function checkPositive(value: number | undefined, field: string): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
    throw new Error(`${field}: must be a positive number, got ${JSON.stringify(value)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Long-lived streams

export interface TcpLongStreamsOptions {
  dstIp: string;
  /** Sink ports; connection i goes to ports[i % ports.length]. */
  ports: readonly number[];
  connections: number;
  /** Records per second on each connection. */
  recordsPerSecond: number;
  /** Record size in bytes (20..65535); default 64. */
  recordBytes?: number;
  /** Connections opened per second while ramping up (a burst of 1000 SYNs overflows backlogs); default 500. */
  connectRatePerSecond?: number;
  /** A connect that takes longer fails with ETIMEDOUT; default 3000 ms. */
  connectTimeoutMs?: number;
  /** Local address to connect from; default chosen by routing. */
  srcIp?: string;
  /** Identifies this run at the sink; default random. */
  runId?: number;
  /** Stop writing records after this long (connections stay open until stop()); default: until stop(). */
  durationMs?: number;
  /**
   * A connection with more than this many bytes queued in user space (the path is stalled)
   * skips its due records instead of queueing more; default 256 KiB.
   */
  maxQueuedBytes?: number;
  binMs?: number;
}

export type ClientConnectionState = "connecting" | "open" | "failed" | "reset" | "error" | "closed";

export interface ClientConnectionReport {
  connIndex: number;
  port: number;
  localPort: number | null;
  state: ClientConnectionState;
  /** Records handed to the socket (sequence numbers 0..written-1). */
  written: number;
  /** Due records not written because the socket's queue was full. */
  skipped: number;
  connectMs: number | null;
  error: string | null;
}

export interface LongStreamsTotals {
  runId: number;
  connections: number;
  connecting: number;
  established: number;
  open: number;
  closed: number;
  connectFailures: number;
  connectFailuresByCode: CodeCounts;
  resets: number;
  errors: number;
  errorsByCode: CodeCounts;
  recordsWritten: number;
  recordsSkipped: number;
  connectMs: { min: number; mean: number; max: number } | null;
}

export interface LongStreamsReport {
  totals: LongStreamsTotals;
  connections?: ClientConnectionReport[];
}

interface LongConnection extends ClientConnectionReport {
  socket: Socket;
  startMs: number;
  /** Records due so far (written + skipped). */
  scheduled: number;
}

export class TcpLongStreams {
  readonly runId: number;
  private readonly connections: LongConnection[] = [];
  private readonly bins: EventBins;
  private readonly recordBytes: number;
  private readonly intervalMs: number;
  private pacer: NodeJS.Timeout | undefined;
  private opener: NodeJS.Timeout | undefined;
  private startedMs = 0;
  private stopped = false;
  private readonly connectFailuresByCode: CodeCounts = {};
  private readonly errorsByCode: CodeCounts = {};

  constructor(private readonly options: TcpLongStreamsOptions) {
    checkPorts(options.ports, "ports");
    if (!Number.isInteger(options.connections) || options.connections < 1) {
      throw new Error(`connections: must be a positive integer, got ${JSON.stringify(options.connections)}`);
    }
    checkPositive(options.recordsPerSecond, "recordsPerSecond");
    checkPositive(options.connectRatePerSecond, "connectRatePerSecond");
    checkPositive(options.connectTimeoutMs, "connectTimeoutMs");
    this.recordBytes = checkRecordBytes(options.recordBytes ?? 64);
    this.intervalMs = 1000 / options.recordsPerSecond;
    this.runId = options.runId ?? randomInt(1, 2 ** 32 - 1);
    this.bins = new EventBins(options.binMs ?? DEFAULT_BIN_MS);
  }

  /** Starts opening connections (at the ramp rate) and writing records; returns at once. */
  start(): void {
    this.startedMs = realtimeMs();
    const ratePerSecond = this.options.connectRatePerSecond ?? 500;
    const tickMs = 10;
    let opened = 0;
    const openDue = () => {
      const due = Math.min(
        this.options.connections,
        Math.floor(((realtimeMs() - this.startedMs) * ratePerSecond) / 1000) + 1,
      );
      while (opened < due && !this.stopped) this.open(opened++);
      if (opened >= this.options.connections) {
        clearInterval(this.opener);
        this.opener = undefined;
      }
    };
    this.opener = setInterval(openDue, tickMs);
    openDue();
    // One pacer for all connections; each writes what is due since it connected.
    const pacerMs = Math.max(1, Math.min(10, this.intervalMs / 2));
    this.pacer = setInterval(() => this.pace(), pacerMs);
  }

  private open(connIndex: number): void {
    const port = this.options.ports[connIndex % this.options.ports.length]!;
    const began = realtimeMs();
    const socket = connect({
      host: this.options.dstIp,
      port,
      noDelay: true,
      ...(this.options.srcIp ? { localAddress: this.options.srcIp } : {}),
    });
    const c: LongConnection = {
      socket,
      startMs: 0,
      scheduled: 0,
      connIndex,
      port,
      localPort: null,
      state: "connecting",
      written: 0,
      skipped: 0,
      connectMs: null,
      error: null,
    };
    this.connections.push(c);
    const timer = setTimeout(() => {
      if (c.state !== "connecting") return;
      this.fail(c, "ETIMEDOUT");
      socket.destroy();
    }, this.options.connectTimeoutMs ?? 3000);
    socket.once("connect", () => {
      clearTimeout(timer);
      if (c.state !== "connecting") return;
      const now = realtimeMs();
      c.state = "open";
      c.localPort = socket.localPort ?? null;
      c.connectMs = now - began;
      c.startMs = now;
      this.bins.add("connected", now);
      socket.write(
        encodeHello({ runId: this.runId, connIndex, recordBytes: this.recordBytes, kind: "long" }),
      );
      this.writeDue(c, now);
    });
    socket.on("data", () => {}); // the sink never writes on a long connection; keep reading for RSTs
    socket.on("error", (error) => {
      clearTimeout(timer);
      const code = errorCode(error);
      if (c.state === "connecting") this.fail(c, code);
      else if (c.state === "open") {
        c.state = isResetCode(code) ? "reset" : "error";
        c.error = code;
        if (c.state === "reset") this.bins.add("resets", realtimeMs());
        else bump(this.errorsByCode, code);
      }
    });
    socket.on("close", () => {
      clearTimeout(timer);
      if (c.state === "open") c.state = "closed";
      else if (c.state === "connecting") this.fail(c, "ECLOSED");
    });
  }

  private fail(c: LongConnection, code: string): void {
    c.state = "failed";
    c.error = code;
    bump(this.connectFailuresByCode, code);
    this.bins.add("connectFailures", realtimeMs());
  }

  private pace(): void {
    const now = realtimeMs();
    if (this.options.durationMs !== undefined && now - this.startedMs >= this.options.durationMs) {
      clearInterval(this.pacer);
      this.pacer = undefined;
      return;
    }
    for (const c of this.connections) if (c.state === "open") this.writeDue(c, now);
  }

  private writeDue(c: LongConnection, now: number): void {
    // The first record is due at connect, then one every intervalMs.
    const due = Math.floor((now - c.startMs) / this.intervalMs) + 1 - c.scheduled;
    if (due <= 0) return;
    c.scheduled += due;
    if (c.socket.writableLength > (this.options.maxQueuedBytes ?? 256 * 1024)) {
      c.skipped += due;
      return;
    }
    c.socket.write(encodeRecords(c.connIndex, this.recordBytes, c.written, due, now));
    c.written += due;
    this.bins.add("written", now, due);
  }

  report(options: { connections?: boolean } = {}): LongStreamsReport {
    const count = (state: ClientConnectionState) => this.connections.filter((c) => c.state === state).length;
    let written = 0;
    let skipped = 0;
    let established = 0;
    let connectSum = 0;
    let connectMin = Number.POSITIVE_INFINITY;
    let connectMax = Number.NEGATIVE_INFINITY;
    for (const c of this.connections) {
      written += c.written;
      skipped += c.skipped;
      if (c.connectMs !== null) {
        established++;
        connectSum += c.connectMs;
        connectMin = Math.min(connectMin, c.connectMs);
        connectMax = Math.max(connectMax, c.connectMs);
      }
    }
    const totals: LongStreamsTotals = {
      runId: this.runId,
      connections: this.options.connections,
      connecting: count("connecting"),
      established,
      open: count("open"),
      closed: count("closed"),
      connectFailures: count("failed"),
      connectFailuresByCode: { ...this.connectFailuresByCode },
      resets: count("reset"),
      errors: count("error"),
      errorsByCode: { ...this.errorsByCode },
      recordsWritten: written,
      recordsSkipped: skipped,
      connectMs:
        established === 0 ? null : { min: connectMin, mean: connectSum / established, max: connectMax },
    };
    if (!options.connections) return { totals };
    return {
      totals,
      connections: this.connections.map(
        ({ socket: _s, startMs: _t, scheduled: _d, ...rest }) => rest as ClientConnectionReport,
      ),
    };
  }

  timeline(range?: { fromMs?: number; toMs?: number }): Timeline {
    return this.bins.timeline(range);
  }

  /**
   * Stops writing, half-closes every open connection (the sink sees a clean end after the
   * last record) and waits up to `graceMs` for them to close; stragglers are destroyed.
   */
  async stop(options: { graceMs?: number } = {}): Promise<LongStreamsReport> {
    this.stopped = true;
    clearInterval(this.pacer);
    clearInterval(this.opener);
    this.pacer = undefined;
    this.opener = undefined;
    const closing = this.connections
      .filter((c) => !c.socket.destroyed)
      .map(
        (c) =>
          new Promise<void>((resolve) => {
            c.socket.once("close", () => resolve());
            if (c.state === "open") c.socket.end();
            else c.socket.destroy();
          }),
      );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(closing),
      new Promise((resolve) => {
        timer = setTimeout(resolve, options.graceMs ?? 5000);
      }),
    ]);
    clearTimeout(timer);
    for (const c of this.connections) c.socket.destroy();
    return this.report({ connections: true });
  }
}

// ---------------------------------------------------------------------------------------
// Short connections

export interface TcpShortConnectionsOptions {
  dstIp: string;
  /** Sink ports; attempt i goes to ports[i % ports.length]. */
  ports: readonly number[];
  /** Connections opened per second. */
  ratePerSecond: number;
  /** Stop after this many attempts, or after durationMs (at least one of them). */
  count?: number;
  durationMs?: number;
  /** Records written on each connection before half-closing; default 1. */
  recordsPerConnection?: number;
  recordBytes?: number;
  /** A connect that takes longer fails with ETIMEDOUT; default 1000 ms. */
  connectTimeoutMs?: number;
  /** Time from connect to the sink's receipt before the attempt counts as incomplete; default 3000 ms. */
  replyTimeoutMs?: number;
  /** Attempts in flight at most; a due attempt beyond it is skipped (counted); default 2000. */
  maxInFlight?: number;
  srcIp?: string;
  runId?: number;
  binMs?: number;
}

export interface ShortPortTotals {
  attempted: number;
  connected: number;
  connectFailures: number;
  completed: number;
}

export interface ShortConnectionsReport {
  runId: number;
  done: boolean;
  attempted: number;
  skipped: number;
  inFlight: number;
  connected: number;
  connectFailures: number;
  connectFailuresByCode: CodeCounts;
  /** The receipt arrived and named every record written. */
  completed: number;
  resets: number;
  /** Connected but no matching receipt (wrong count, other error, reply timeout). */
  incomplete: number;
  incompleteByReason: CodeCounts;
  perPort: Record<string, ShortPortTotals>;
  connectMs: { min: number; mean: number; max: number } | null;
}

export class TcpShortConnections {
  readonly runId: number;
  readonly finished: Promise<ShortConnectionsReport>;
  private readonly bins: EventBins;
  private readonly recordBytes: number;
  private readonly records: number;
  private ticker: NodeJS.Timeout | undefined;
  private startedMs = 0;
  private attempted = 0;
  private skipped = 0;
  private inFlight = 0;
  private connected = 0;
  private connectFailures = 0;
  private completed = 0;
  private resets = 0;
  private incomplete = 0;
  private connectSum = 0;
  private connectMin = Number.POSITIVE_INFINITY;
  private connectMax = Number.NEGATIVE_INFINITY;
  private readonly connectFailuresByCode: CodeCounts = {};
  private readonly incompleteByReason: CodeCounts = {};
  private readonly perPort = new Map<number, ShortPortTotals>();
  private readonly sockets = new Set<Socket>();
  private launching = true;
  private resolveFinished: (report: ShortConnectionsReport) => void = () => {};

  constructor(private readonly options: TcpShortConnectionsOptions) {
    checkPorts(options.ports, "ports");
    checkPositive(options.ratePerSecond, "ratePerSecond");
    if (options.count === undefined && options.durationMs === undefined) {
      throw new Error("short connections: give count or durationMs");
    }
    this.recordBytes = checkRecordBytes(options.recordBytes ?? 64);
    this.records = options.recordsPerConnection ?? 1;
    if (!Number.isInteger(this.records) || this.records < 0) {
      throw new Error(`recordsPerConnection: must be an integer >= 0, got ${JSON.stringify(this.records)}`);
    }
    this.runId = options.runId ?? randomInt(1, 2 ** 32 - 1);
    this.bins = new EventBins(options.binMs ?? DEFAULT_BIN_MS);
    for (const port of options.ports) {
      this.perPort.set(port, { attempted: 0, connected: 0, connectFailures: 0, completed: 0 });
    }
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
  }

  start(): void {
    this.startedMs = realtimeMs();
    const tickMs = Math.max(1, Math.min(10, 500 / this.options.ratePerSecond));
    const tick = () => {
      const elapsed = realtimeMs() - this.startedMs;
      const limit = this.options.count ?? Number.POSITIVE_INFINITY;
      const overTime = this.options.durationMs !== undefined && elapsed >= this.options.durationMs;
      const due = Math.min(limit, Math.floor((elapsed * this.options.ratePerSecond) / 1000) + 1);
      while (!overTime && this.attempted + this.skipped < due) {
        if (this.inFlight >= (this.options.maxInFlight ?? 2000)) this.skipped++;
        else this.attempt(this.attempted + this.skipped);
      }
      if (overTime || this.attempted + this.skipped >= limit) this.endLaunching();
    };
    this.ticker = setInterval(tick, tickMs);
    tick();
  }

  private endLaunching(): void {
    if (!this.launching) return;
    this.launching = false;
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (!this.launching && this.inFlight === 0) this.resolveFinished(this.report());
  }

  private attempt(connIndex: number): void {
    const port = this.options.ports[connIndex % this.options.ports.length]!;
    const portTotals = this.perPort.get(port)!;
    this.attempted++;
    this.inFlight++;
    portTotals.attempted++;
    const began = realtimeMs();
    this.bins.add("attempted", began);
    const socket = connect({
      host: this.options.dstIp,
      port,
      noDelay: true,
      ...(this.options.srcIp ? { localAddress: this.options.srcIp } : {}),
    });
    this.sockets.add(socket);
    let phase: "connecting" | "sent" | "done" = "connecting";
    let reply = Buffer.alloc(0);
    const finish = (outcome: "completed" | "connectFailed" | "reset" | "incomplete", code?: string) => {
      if (phase === "done") return;
      phase = "done";
      clearTimeout(timer);
      const at = realtimeMs();
      if (outcome === "completed") {
        this.completed++;
        portTotals.completed++;
        this.bins.add("completed", at);
      } else if (outcome === "connectFailed") {
        this.connectFailures++;
        portTotals.connectFailures++;
        bump(this.connectFailuresByCode, code ?? "unknown");
        this.bins.add("connectFailures", at);
      } else if (outcome === "reset") {
        this.resets++;
        this.bins.add("resets", at);
      } else {
        this.incomplete++;
        bump(this.incompleteByReason, code ?? "unknown");
        this.bins.add("incomplete", at);
      }
      socket.destroy();
      this.sockets.delete(socket);
      this.inFlight--;
      this.maybeFinish();
    };
    let timer = setTimeout(() => finish("connectFailed", "ETIMEDOUT"), this.options.connectTimeoutMs ?? 1000);
    socket.once("connect", () => {
      if (phase !== "connecting") return;
      phase = "sent";
      clearTimeout(timer);
      const connectMs = realtimeMs() - began;
      this.connected++;
      portTotals.connected++;
      this.connectSum += connectMs;
      this.connectMin = Math.min(this.connectMin, connectMs);
      this.connectMax = Math.max(this.connectMax, connectMs);
      this.bins.add("connected", began + connectMs);
      timer = setTimeout(() => finish("incomplete", "reply timeout"), this.options.replyTimeoutMs ?? 3000);
      socket.write(
        encodeHello({ runId: this.runId, connIndex, recordBytes: this.recordBytes, kind: "short" }),
      );
      if (this.records > 0)
        socket.write(encodeRecords(connIndex, this.recordBytes, 0, this.records, realtimeMs()));
      socket.end();
    });
    socket.on("data", (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
    });
    socket.on("error", (error) => {
      const code = errorCode(error);
      if (phase === "connecting") finish("connectFailed", code);
      else finish(isResetCode(code) ? "reset" : "incomplete", code);
    });
    socket.on("close", () => {
      if (phase === "connecting") return finish("connectFailed", "ECLOSED");
      const received = reply.length === TCP_RECEIPT_LENGTH ? decodeReceipt(reply) : undefined;
      if (received === this.records) finish("completed");
      else
        finish(
          "incomplete",
          received === undefined ? `bad receipt (${reply.length} bytes)` : `receipt ${received}`,
        );
    });
  }

  report(): ShortConnectionsReport {
    return {
      runId: this.runId,
      done: !this.launching && this.inFlight === 0,
      attempted: this.attempted,
      skipped: this.skipped,
      inFlight: this.inFlight,
      connected: this.connected,
      connectFailures: this.connectFailures,
      connectFailuresByCode: { ...this.connectFailuresByCode },
      completed: this.completed,
      resets: this.resets,
      incomplete: this.incomplete,
      incompleteByReason: { ...this.incompleteByReason },
      perPort: Object.fromEntries([...this.perPort].map(([port, t]) => [String(port), { ...t }])),
      connectMs:
        this.connected === 0
          ? null
          : { min: this.connectMin, mean: this.connectSum / this.connected, max: this.connectMax },
    };
  }

  timeline(range?: { fromMs?: number; toMs?: number }): Timeline {
    return this.bins.timeline(range);
  }

  /** Stops opening connections; in-flight attempts are abandoned (destroyed, counted incomplete). */
  async stop(): Promise<ShortConnectionsReport> {
    this.endLaunching();
    for (const socket of [...this.sockets]) socket.destroy(new Error("stopped"));
    return this.report();
  }
}

// ---------------------------------------------------------------------------------------
// Both sides together

export interface ConnectionMismatch {
  connIndex: number;
  written: number;
  received: number | null;
  clientState: ClientConnectionState;
  sinkState: SinkConnectionReport["state"] | null;
  discontinuities: number;
}

export interface TcpComparison {
  connections: number;
  /** Connections the sink never saw (no hello). */
  missingAtSink: number;
  /** Established connections whose every written record arrived, in order, and that closed cleanly. */
  exact: number;
  /** Written but never received, over all connections (records lost with a reset). */
  lostRecords: number;
  discontinuities: number;
  resetAtClient: number[];
  resetAtSink: number[];
  /** Every connection that is not exact. */
  mismatches: ConnectionMismatch[];
}

/** Matches a long-streams run with the sink's view of it, connection by connection. */
export function compareTcpStreams(client: LongStreamsReport, sink: SinkReport): TcpComparison {
  const runId = client.totals.runId;
  const atSink = new Map<number, SinkConnectionReport>();
  for (const c of sink.connections ?? []) {
    if (c.runId === runId && c.kind === "long" && c.connIndex !== null) atSink.set(c.connIndex, c);
  }
  const result: TcpComparison = {
    connections: client.connections?.length ?? 0,
    missingAtSink: 0,
    exact: 0,
    lostRecords: 0,
    discontinuities: 0,
    resetAtClient: [],
    resetAtSink: [],
    mismatches: [],
  };
  for (const c of client.connections ?? []) {
    const s = atSink.get(c.connIndex);
    if (c.state === "reset") result.resetAtClient.push(c.connIndex);
    if (s?.state === "reset") result.resetAtSink.push(c.connIndex);
    if (!s && c.connectMs !== null) result.missingAtSink++;
    const received = s?.records ?? 0;
    result.lostRecords += Math.max(0, c.written - received);
    result.discontinuities += s?.discontinuities ?? 0;
    const exact =
      s !== undefined &&
      c.state === "closed" &&
      s.state === "closed" &&
      s.records === c.written &&
      s.discontinuities === 0 &&
      s.trailingBytes === 0;
    if (exact) result.exact++;
    else {
      result.mismatches.push({
        connIndex: c.connIndex,
        written: c.written,
        received: s ? s.records : null,
        clientState: c.state,
        sinkState: s ? s.state : null,
        discontinuities: s?.discontinuities ?? 0,
      });
    }
  }
  return result;
}
