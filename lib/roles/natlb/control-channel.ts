import { createSocket, type Socket } from "node:dgram";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { decodeNatlb, encodeNatlb, NATLB_TYPE, type NatlbBody, type NatlbMessage } from "../../wire/natlb.ts";
import {
  decodeLoadReport,
  encodeLoadReport,
  type LoadReport,
  NATLB_TYPE_LOAD_REPORT,
} from "../../wire/natlb-status.ts";
import { RxLimiter, type RxLimiterOptions } from "../../wire/rate-limit.ts";
import { ReplayWindow } from "../../wire/replay.ts";

/**
 * The NAT-LB control messages (lib/wire/natlb.ts + the load report, lib/wire/natlb-status.ts)
 * over UDP, between the control function 52, the balancers and the servers' keepers.
 *
 * - Every datagram is authenticated (HMAC-SHA256) and checked against a per-sender replay
 *   window; unauthenticated, malformed (truncated, bad length) and replayed datagrams are
 *   counted and dropped, never acted on.
 * - A request (types 1-4, and 3 as a transfer request) is answered with an ack (type 6)
 *   when the receiver has done it: that is the step's confirmation. The sender retransmits
 *   the same bytes until the ack comes; a retransmission of a request already done gets
 *   its cached ack again, and one still in progress is ignored (its ack follows).
 */
export interface ChannelCounters {
  received: number;
  accepted: number;
  badAuth: number;
  malformed: number;
  /** Dropped by the replay window (includes retransmissions of requests already done). */
  replayed: number;
  /** Of those, copies of a request already done that got the cached ack again. */
  retransmitAnswered: number;
  /** Refused before authentication (issue 15): one source above its rate, all sources above theirs. */
  limitedSender: number;
  limitedGlobal: number;
  /** Authenticated, but a type this receiver never takes from that sender (issue 15: a replay re-addressed). */
  unexpected: number;
  /** Authenticated, but naming a VIP the lab does not have (issue 15: an insider with the key). */
  unknownVip: number;
  /** Authenticated ack answering no request in flight (late, duplicated or made up). */
  unsolicitedAck: number;
  sent: number;
  retransmitted: number;
  acksSent: number;
}

/**
 * Why a datagram was refused, one counter each (issue 15; `tandem natlb show` prints them):
 * limited-sender / limited-global (before anything else), length (truncated, over-long,
 * body length disagreeing), version, bad-hmac, body (a sealed body that does not parse),
 * replay, unexpected (a type this receiver does not take from that sender), unknown-vip
 * (sealed with the key but naming a VIP, in its header, an entry or a load record, that the
 * lab does not have), unsolicited-ack (an ack answering no request in flight). The last two
 * are checked before the replay window: a sealed message that is refused must not move the
 * window (with a high sequence it would shut the genuine sender out).
 */
export const REJECT_REASONS = [
  "limited-sender",
  "limited-global",
  "length",
  "version",
  "bad-hmac",
  "body",
  "replay",
  "unexpected",
  "unknown-vip",
  "unsolicited-ack",
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export function rejectReasonOf(decodeReason: string): RejectReason {
  if (decodeReason.includes("HMAC")) return "bad-hmac";
  if (decodeReason.startsWith("unsupported NAT-LB control version")) return "version";
  if (decodeReason.includes("disagrees with datagram length") || decodeReason.startsWith("truncated"))
    return "length";
  return "body";
}

/** What a channel writes to its status file (read by `tandem natlb show`). */
export interface ChannelStatus {
  at: number;
  role: string;
  host: string;
  rssBytes: number;
  counters: ChannelCounters;
  rejects: Record<RejectReason, number>;
  limiter: { peer: number; sender: number; global: number; sendersForgotten: number; trackedSenders: number };
}

/** Every VIP a control message names: in its header (types 1-4) and in its entries (3, 5). */
export function* vipsNamed(msg: NatlbMessage): Generator<string> {
  if (msg.type === 5 || msg.type === 6) {
    if (msg.type === 5) for (const e of msg.entries) yield e.vip.address;
    return;
  }
  yield msg.vip;
  if (msg.type === 3) for (const e of msg.entries) yield e.vip.address;
}

/** Every VIP a load report names. */
export function* loadReportVips(r: LoadReport): Generator<string> {
  for (const v of r.vips) yield v.vip;
}

export type Handler = (
  msg: NatlbMessage,
  from: { address: string; port: number },
) => Promise<number | undefined>;

interface Pending {
  resolve: (detail: number) => void;
  reject: (e: Error) => void;
}

export class ControlChannel {
  private readonly socket: Socket;
  private readonly key: Uint8Array;
  private readonly replay = new ReplayWindow();
  private readonly pending = new Map<bigint, Pending>();
  /** (sender, sequence) -> cached ack bytes, or "busy" while the request runs. */
  private readonly answered = new Map<string, Uint8Array | "busy">();
  private seqCounter = 0n;
  private readonly seqBase = BigInt(Date.now()) << 16n;
  readonly counters: ChannelCounters = {
    received: 0,
    accepted: 0,
    badAuth: 0,
    malformed: 0,
    replayed: 0,
    retransmitAnswered: 0,
    limitedSender: 0,
    limitedGlobal: 0,
    unexpected: 0,
    unknownVip: 0,
    unsolicitedAck: 0,
    sent: 0,
    retransmitted: 0,
    acksSent: 0,
  };
  readonly rejects = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  /**
   * Which authenticated (type, sender) pairs this receiver takes; others are refused as
   * "unexpected" before the replay window (a genuine message replayed to a receiver it was
   * not meant for: the window is per receiver, so one that never heard from that sender
   * would accept it). Absent: every pair.
   */
  accepts: ((type: number, sender: number) => boolean) | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  /** Last problems seen (for the log and the tests). */
  readonly lastRejects: string[] = [];
  onLoadReport: ((r: LoadReport, from: { address: string }) => void) | undefined;

  private readonly limiter: RxLimiter;
  /** The VIPs of the lab; absent: any VIP is taken (the channel's own unit tests). */
  private readonly vips: ReadonlySet<string> | undefined;

  private constructor(
    readonly id: number,
    keyHex: string,
    private handler: Handler | undefined,
    limits: Partial<RxLimiterOptions> = {},
    vips?: Iterable<string>,
  ) {
    this.vips = vips ? new Set(vips) : undefined;
    // Far above what a move or a table copy sends (a 100,000-entry full copy is ~5,000
    // datagrams), low enough
    // that a flood costs a lookup per datagram and no more than 50,000 HMACs a second.
    this.limiter = new RxLimiter(
      { peers: [], senderPerSecond: 20_000, globalPerSecond: 50_000, ...limits },
      performance.now(),
    );
    this.key = Buffer.from(keyHex, "hex");
    this.socket = createSocket({ type: "udp4", reuseAddr: true });
    this.socket.on("message", (buf, rinfo) => void this.onDatagram(buf, rinfo));
  }

  static async open(options: {
    id: number;
    keyHex: string;
    port: number;
    address?: string;
    handler?: Handler;
    /** Receive limits per source address and in all (defaults: 20,000/s and 50,000/s). */
    limits?: Partial<RxLimiterOptions>;
    /**
     * The lab's VIPs (config.vips): an authenticated message naming any other VIP is
     * refused as "unknown-vip" before the replay window and the handler. Absent: no check.
     */
    vips?: Iterable<string>;
  }) {
    const ch = new ControlChannel(options.id, options.keyHex, options.handler, options.limits, options.vips);
    await new Promise<void>((resolve, reject) => {
      ch.socket.once("error", reject);
      ch.socket.bind(options.port, options.address ?? "0.0.0.0", () => resolve());
    });
    return ch;
  }

  /** The UDP port the channel is bound to. */
  get port(): number {
    return this.socket.address().port;
  }

  setHandler(h: Handler): void {
    this.handler = h;
  }

  /** Strictly increasing across restarts: ms clock at start x 65536 + counter. */
  nextSequence(): bigint {
    this.seqCounter++;
    return this.seqBase + this.seqCounter;
  }

  private reject(reason: string): void {
    this.lastRejects.push(reason);
    if (this.lastRejects.length > 20) this.lastRejects.shift();
  }

  private async onDatagram(buf: Buffer, rinfo: { address: string; port: number }): Promise<void> {
    this.counters.received++;
    const limit = this.limiter.check(rinfo.address, performance.now());
    if (limit !== "accept") {
      if (limit === "global") {
        this.counters.limitedGlobal++;
        this.rejects["limited-global"]++;
      } else {
        this.counters.limitedSender++;
        this.rejects["limited-sender"]++;
      }
      return;
    }
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    if (bytes.length >= 2 && bytes[1] === NATLB_TYPE_LOAD_REPORT) {
      const d = decodeLoadReport(bytes, this.key);
      if (!d.ok) return this.countBad(d.error.reason);
      if (!this.knownVips(NATLB_TYPE_LOAD_REPORT, d.value.sender, loadReportVips(d.value))) return;
      if (!this.expected(NATLB_TYPE_LOAD_REPORT, d.value.sender)) return;
      if (this.replay.check(`s${d.value.sender}`, 0, d.value.sequence) !== "accept") {
        this.counters.replayed++;
        this.rejects.replay++;
        return this.reject(`replayed load report from ${d.value.sender}`);
      }
      this.counters.accepted++;
      this.onLoadReport?.(d.value, rinfo);
      return;
    }
    const d = decodeNatlb(bytes, this.key);
    if (!d.ok) return this.countBad(d.error.reason);
    const msg = d.value;
    const tag = `${msg.sender}/${msg.sequence}`;
    if (!this.knownVips(msg.type, msg.sender, vipsNamed(msg))) return;
    if (!this.expected(msg.type, msg.sender)) return;
    if (msg.type === NATLB_TYPE.ack && !this.pending.has(msg.inReplyTo)) {
      this.counters.unsolicitedAck++;
      this.rejects["unsolicited-ack"]++;
      return this.reject(`ack from ${msg.sender} to ${msg.inReplyTo}, no such request in flight`);
    }
    if (this.replay.check(`s${msg.sender}`, 0, msg.sequence) !== "accept") {
      // Dropped, never acted on. An exact copy of a request already done cannot be told
      // from a retransmission whose ack was lost: it gets the cached ack again.
      this.counters.replayed++;
      this.rejects.replay++;
      this.reject(`replayed type ${msg.type} from ${msg.sender} seq ${msg.sequence}`);
      const cached = this.answered.get(tag);
      if (cached instanceof Uint8Array) {
        this.counters.retransmitAnswered++;
        this.socket.send(cached, rinfo.port, rinfo.address);
      }
      return;
    }
    this.counters.accepted++;
    if (msg.type === NATLB_TYPE.ack) {
      const p = this.pending.get(msg.inReplyTo);
      if (p) {
        this.pending.delete(msg.inReplyTo);
        if (msg.status === "ok") p.resolve(msg.detail);
        else p.reject(new Error(`sender ${msg.sender} refused (detail ${msg.detail})`));
      }
      return;
    }
    const wantsAck = msg.type !== NATLB_TYPE.tableCopyPush;
    if (wantsAck) this.answered.set(tag, "busy");
    let status: "ok" | "failed" = "ok";
    let detail = 0;
    try {
      detail = (await this.handler?.(msg, rinfo)) ?? 0;
    } catch (e) {
      status = "failed";
      this.reject(`handler failed for type ${msg.type}: ${(e as Error).message}`);
    }
    if (!wantsAck) return;
    const ack = encodeNatlb(
      {
        type: 6,
        sender: this.id,
        sequence: this.nextSequence(),
        moveId: msg.moveId,
        inReplyTo: msg.sequence,
        status,
        detail: detail >>> 0,
      },
      this.key,
    );
    this.answered.set(tag, ack);
    if (this.answered.size > 4096) {
      const first = this.answered.keys().next().value;
      if (first !== undefined) this.answered.delete(first);
    }
    this.counters.acksSent++;
    this.socket.send(ack, rinfo.port, rinfo.address);
  }

  private countBad(reason: string): void {
    if (reason.includes("HMAC")) this.counters.badAuth++;
    else this.counters.malformed++;
    this.rejects[rejectReasonOf(reason)]++;
    this.reject(reason);
  }

  private knownVips(type: number, sender: number, named: Iterable<string>): boolean {
    if (!this.vips) return true;
    for (const vip of named) {
      if (this.vips.has(vip)) continue;
      this.counters.unknownVip++;
      this.rejects["unknown-vip"]++;
      this.reject(`unknown VIP ${vip} in type ${type} from sender ${sender}`);
      return false;
    }
    return true;
  }

  private expected(type: number, sender: number): boolean {
    if (!this.accepts || this.accepts(type, sender)) return true;
    this.counters.unexpected++;
    this.rejects.unexpected++;
    this.reject(`unexpected type ${type} from sender ${sender}`);
    return false;
  }

  status(role: string, host: string): ChannelStatus {
    return {
      at: Date.now(),
      role,
      host,
      rssBytes: process.memoryUsage().rss,
      counters: { ...this.counters },
      rejects: { ...this.rejects },
      limiter: { ...this.limiter.counters, trackedSenders: this.limiter.trackedSenders },
    };
  }

  /** Writes status() to `file` every `everyMs` (atomically: tmp + rename), for `tandem natlb show`. */
  writeStatus(file: string, role: string, host: string, everyMs = 500): void {
    void mkdir(dirname(file), { recursive: true }).catch(() => undefined);
    this.statusTimer = setInterval(() => {
      writeFile(`${file}.tmp`, JSON.stringify(this.status(role, host)))
        .then(() => rename(`${file}.tmp`, file))
        .catch(() => undefined);
    }, everyMs);
    this.statusTimer.unref();
  }

  /** Sends a message without waiting for anything (copy pushes). */
  send(body: NatlbBody, to: { address: string; port: number }, moveId = 0): void {
    const bytes = encodeNatlb({ ...body, sender: this.id, sequence: this.nextSequence(), moveId }, this.key);
    this.counters.sent++;
    this.socket.send(bytes, to.port, to.address);
  }

  sendLoadReport(r: Omit<LoadReport, "sender" | "sequence">, to: { address: string; port: number }): void {
    const bytes = encodeLoadReport({ ...r, sender: this.id, sequence: this.nextSequence() }, this.key);
    this.counters.sent++;
    this.socket.send(bytes, to.port, to.address);
  }

  /** Raw bytes (tests: crafted, truncated or replayed datagrams). */
  sendRaw(bytes: Uint8Array, to: { address: string; port: number }): void {
    this.socket.send(bytes, to.port, to.address);
  }

  /** Encodes without sending (tests keep a copy to replay it). */
  encode(body: NatlbBody, moveId = 0): Uint8Array {
    return encodeNatlb({ ...body, sender: this.id, sequence: this.nextSequence(), moveId }, this.key);
  }

  /**
   * Sends a request and resolves with the ack's detail once the receiver confirmed it.
   * Retransmits every `retryMs` until `timeoutMs`.
   */
  request(
    body: NatlbBody,
    to: { address: string; port: number },
    options: { moveId?: number; timeoutMs?: number; retryMs?: number } = {},
  ): Promise<number> {
    const sequence = this.nextSequence();
    const bytes = encodeNatlb({ ...body, sender: this.id, sequence, moveId: options.moveId ?? 0 }, this.key);
    const timeoutMs = options.timeoutMs ?? 5000;
    const retryMs = options.retryMs ?? 300;
    return new Promise<number>((resolve, reject) => {
      const started = Date.now();
      let timer: NodeJS.Timeout;
      const done = () => clearTimeout(timer);
      this.pending.set(sequence, {
        resolve: (d) => {
          done();
          resolve(d);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      const shoot = (first: boolean) => {
        if (!this.pending.has(sequence)) return;
        if (Date.now() - started >= timeoutMs) {
          this.pending.delete(sequence);
          reject(new Error(`no ack from ${to.address} for type ${body.type} within ${timeoutMs} ms`));
          return;
        }
        if (first) this.counters.sent++;
        else this.counters.retransmitted++;
        this.socket.send(bytes, to.port, to.address);
        timer = setTimeout(() => shoot(false), retryMs);
      };
      shoot(true);
    });
  }

  close(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    for (const p of this.pending.values()) p.reject(new Error("control channel closed"));
    this.pending.clear();
    this.socket.close();
  }
}
