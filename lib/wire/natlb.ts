import { createHmac, timingSafeEqual } from "node:crypto";
import { ByteReader, ByteWriter } from "./bytes.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

/**
 * NAT-LB control messages (seed 002): the control function's four-step VIP move
 * (transition notification, route switch, table entry transfer, end of switch), the
 * copy-keeping push to servers, and an acknowledgement. They travel in UDP datagrams
 * to NATLB_CONTROL_PORT. Layout: docs/wire.md section "NAT-LB control messages".
 *
 *   header (24 bytes) | body (bodyLength) | HMAC-SHA256 over header+body (32)
 */
export const NATLB_CONTROL_PORT = 7410;
export const NATLB_VERSION = 1;
export const NATLB_HEADER_LENGTH = 24;
export const NATLB_HMAC_LENGTH = 32;
export const CONN_ENTRY_LENGTH = 52;

export const NATLB_TYPE = {
  transitionNotification: 1,
  routeSwitch: 2,
  tableEntryTransfer: 3,
  endOfSwitch: 4,
  tableCopyPush: 5,
  ack: 6,
} as const;

/** conntrack TCP states (nf_conntrack_tcp.h order). */
export const TCP_CT_STATES = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
  "SYN_SENT2",
] as const;
export type TcpCtState = (typeof TCP_CT_STATES)[number];

export interface Endpoint {
  address: string;
  port: number;
}

/**
 * One row of the access correspondence table (seed 002 Fig. 5; Fig. 12 for full NAT),
 * with the conntrack fields needed to re-create the entry on another balancer.
 */
export interface ConnEntry {
  protocol: number;
  tcpState: TcpCtState;
  /** conntrack status bits (IPS_*), lower 16 bits. */
  status: number;
  client: Endpoint;
  vip: Endpoint;
  server: Endpoint;
  /** Full NAT (embodiment 2): the balancer's internal address/port the server sees. */
  internal?: Endpoint;
  timeoutSeconds: number;
  mark: number;
  /** TCP flow-control information (seed: "TCP flow control information"). */
  flowControl: {
    origSeq: number;
    replySeq: number;
    origWindow: number;
    replyWindow: number;
    origWscale: number;
    replyWscale: number;
  };
  /** In a delta push: this entry was removed. */
  removed: boolean;
}

export type NatlbBody =
  | { type: 1; vip: string; from: number; to: number; enter: boolean }
  | { type: 2; vip: string; from: number; to: number; method: "garp" | "vrrp" }
  | { type: 3; vip: string; from: number; to: number; part: number; parts: number; entries: ConnEntry[] }
  | { type: 4; vip: string; from: number; to: number; entriesTransferred: number }
  | {
      type: 5;
      balancer: number;
      kind: "full" | "delta";
      generation: number;
      part: number;
      parts: number;
      entries: ConnEntry[];
    }
  | { type: 6; inReplyTo: bigint; status: "ok" | "failed"; detail: number };

export interface NatlbHeader {
  sender: number;
  /** Monotonically increasing per sender, across restarts (e.g. ms clock << 16 | counter). */
  sequence: bigint;
  /** The move this message belongs to, 0 for none (copy pushes). */
  moveId: number;
}

export type NatlbMessage = NatlbHeader & NatlbBody;

function writeEndpoint(w: ByteWriter, e: Endpoint): void {
  w.ipv4(e.address);
}

function writeEntry(w: ByteWriter, e: ConnEntry): void {
  const state = TCP_CT_STATES.indexOf(e.tcpState);
  if (state < 0) throw new Error(`unknown conntrack TCP state ${JSON.stringify(e.tcpState)}`);
  w.u8(e.protocol).u8(state).u16(e.status);
  writeEndpoint(w, e.client);
  w.u16(e.client.port).u16(e.vip.port);
  writeEndpoint(w, e.vip);
  writeEndpoint(w, e.server);
  w.u16(e.server.port).u16(e.internal?.port ?? 0);
  w.ipv4(e.internal?.address ?? "0.0.0.0");
  w.u32(e.timeoutSeconds).u32(e.mark);
  const f = e.flowControl;
  w.u32(f.origSeq).u32(f.replySeq).u16(f.origWindow).u16(f.replyWindow).u8(f.origWscale).u8(f.replyWscale);
  w.u16((e.removed ? 1 : 0) | (e.internal ? 2 : 0));
}

function readEntry(r: ByteReader): ConnEntry {
  const at = r.offset;
  const protocol = r.u8("entry protocol");
  const stateCode = r.u8("entry TCP state");
  const tcpState = TCP_CT_STATES[stateCode] ?? r.fail(`unknown conntrack TCP state ${stateCode}`, at + 1);
  const status = r.u16("entry status");
  const clientAddress = r.ipv4("entry client address");
  const clientPort = r.u16("entry client port");
  const vipPort = r.u16("entry VIP port");
  const vipAddress = r.ipv4("entry VIP");
  const serverAddress = r.ipv4("entry server address");
  const serverPort = r.u16("entry server port");
  const internalPort = r.u16("entry internal port");
  const internalAddress = r.ipv4("entry internal address");
  const timeoutSeconds = r.u32("entry timeout");
  const mark = r.u32("entry mark");
  const flowControl = {
    origSeq: r.u32("entry original seq"),
    replySeq: r.u32("entry reply seq"),
    origWindow: r.u16("entry original window"),
    replyWindow: r.u16("entry reply window"),
    origWscale: r.u8("entry original wscale"),
    replyWscale: r.u8("entry reply wscale"),
  };
  const flagsAt = r.offset;
  const flags = r.u16("entry flags");
  if (flags & ~3) r.fail(`unknown entry flags 0x${flags.toString(16)}`, flagsAt);
  const fullNat = (flags & 2) !== 0;
  if (!fullNat && (internalPort !== 0 || internalAddress !== "0.0.0.0")) {
    r.fail("internal endpoint set without the full-NAT flag", at + 22);
  }
  const entry: ConnEntry = {
    protocol,
    tcpState,
    status,
    client: { address: clientAddress, port: clientPort },
    vip: { address: vipAddress, port: vipPort },
    server: { address: serverAddress, port: serverPort },
    timeoutSeconds,
    mark,
    flowControl,
    removed: (flags & 1) !== 0,
  };
  if (fullNat) entry.internal = { address: internalAddress, port: internalPort };
  return entry;
}

function writeBody(w: ByteWriter, b: NatlbBody): void {
  switch (b.type) {
    case 1:
      w.ipv4(b.vip)
        .u32(b.from)
        .u32(b.to)
        .u8(b.enter ? 1 : 0)
        .zeros(3);
      return;
    case 2:
      w.ipv4(b.vip)
        .u32(b.from)
        .u32(b.to)
        .u8(b.method === "garp" ? 1 : 2)
        .zeros(3);
      return;
    case 3:
      if (b.entries.length > 0xffff) throw new Error(`too many entries: ${b.entries.length}`);
      w.ipv4(b.vip).u32(b.from).u32(b.to).u16(b.part).u16(b.parts).u16(b.entries.length).u16(0);
      for (const e of b.entries) writeEntry(w, e);
      return;
    case 4:
      w.ipv4(b.vip).u32(b.from).u32(b.to).u32(b.entriesTransferred);
      return;
    case 5:
      if (b.entries.length > 0xffff) throw new Error(`too many entries: ${b.entries.length}`);
      w.u32(b.balancer)
        .u8(b.kind === "full" ? 1 : 2)
        .zeros(3)
        .u32(b.generation)
        .u16(b.part)
        .u16(b.parts)
        .u16(b.entries.length)
        .u16(0);
      for (const e of b.entries) writeEntry(w, e);
      return;
    case 6:
      w.u64(b.inReplyTo)
        .u8(b.status === "ok" ? 0 : 1)
        .zeros(3)
        .u32(b.detail);
      return;
  }
}

function readParts(r: ByteReader): { part: number; parts: number } {
  const at = r.offset;
  const part = r.u16("part");
  const parts = r.u16("parts");
  if (part >= parts) r.fail(`part ${part} of ${parts}`, at);
  return { part, parts };
}

function readEntries(r: ByteReader): ConnEntry[] {
  const n = r.u16("entry count");
  r.u16("reserved");
  r.need(n * CONN_ENTRY_LENGTH, `${n} table entries`);
  const out: ConnEntry[] = [];
  for (let i = 0; i < n; i++) out.push(readEntry(r));
  return out;
}

function readBody(type: number, r: ByteReader): NatlbBody {
  switch (type) {
    case 1: {
      const vip = r.ipv4("VIP");
      const from = r.u32("from balancer");
      const to = r.u32("to balancer");
      const at = r.offset;
      const enter = r.u8("enter flag");
      if (enter > 1) r.fail(`enter flag ${enter}`, at);
      r.take(3, "reserved");
      return { type, vip, from, to, enter: enter === 1 };
    }
    case 2: {
      const vip = r.ipv4("VIP");
      const from = r.u32("from balancer");
      const to = r.u32("to balancer");
      const at = r.offset;
      const m = r.u8("route switch method");
      if (m !== 1 && m !== 2) r.fail(`unknown route switch method ${m}`, at);
      r.take(3, "reserved");
      return { type, vip, from, to, method: m === 1 ? "garp" : "vrrp" };
    }
    case 3: {
      const vip = r.ipv4("VIP");
      const from = r.u32("from balancer");
      const to = r.u32("to balancer");
      const { part, parts } = readParts(r);
      return { type, vip, from, to, part, parts, entries: readEntries(r) };
    }
    case 4:
      return {
        type,
        vip: r.ipv4("VIP"),
        from: r.u32("from balancer"),
        to: r.u32("to balancer"),
        entriesTransferred: r.u32("entries transferred"),
      };
    case 5: {
      const balancer = r.u32("balancer");
      const at = r.offset;
      const k = r.u8("push kind");
      if (k !== 1 && k !== 2) r.fail(`unknown push kind ${k}`, at);
      r.take(3, "reserved");
      const generation = r.u32("generation");
      const { part, parts } = readParts(r);
      return {
        type,
        balancer,
        kind: k === 1 ? "full" : "delta",
        generation,
        part,
        parts,
        entries: readEntries(r),
      };
    }
    case 6: {
      const inReplyTo = r.u64("in-reply-to sequence");
      const at = r.offset;
      const s = r.u8("ack status");
      if (s > 1) r.fail(`unknown ack status ${s}`, at);
      r.take(3, "reserved");
      return { type, inReplyTo, status: s === 0 ? "ok" : "failed", detail: r.u32("ack detail") };
    }
    default:
      return r.fail(`unknown NAT-LB message type ${type}`, 1);
  }
}

export function encodeNatlb(message: NatlbMessage, key: Uint8Array): Uint8Array {
  const w = new ByteWriter(128);
  w.u8(NATLB_VERSION)
    .u8(message.type)
    .u16(0)
    .u32(message.sender)
    .u64(message.sequence)
    .u32(message.moveId)
    .u32(0);
  writeBody(w, message);
  const bodyLength = w.length - NATLB_HEADER_LENGTH;
  if (bodyLength > 0xffff) throw new Error(`NAT-LB body too long: ${bodyLength} bytes`);
  w.patchU16(2, bodyLength);
  w.zeros(NATLB_HMAC_LENGTH);
  const out = w.finish();
  const macOffset = out.length - NATLB_HMAC_LENGTH;
  out.set(createHmac("sha256", key).update(out.subarray(0, macOffset)).digest(), macOffset);
  return out;
}

/** Decodes and authenticates a NAT-LB control datagram (the UDP payload). Never throws. */
export function decodeNatlb(bytes: Uint8Array, key: Uint8Array): DecodeResult<NatlbMessage> {
  return guardDecode<NatlbMessage>(() => {
    const r = new ByteReader(bytes);
    const version = r.u8("version");
    if (version !== NATLB_VERSION) r.fail(`unsupported NAT-LB control version ${version}`, 0);
    const type = r.u8("type");
    const bodyLength = r.u16("body length");
    const macOffset = NATLB_HEADER_LENGTH + bodyLength;
    if (macOffset + NATLB_HMAC_LENGTH !== bytes.length) {
      r.fail(
        `body length ${bodyLength} disagrees with datagram length ${bytes.length} (expected ${macOffset + NATLB_HMAC_LENGTH})`,
        2,
      );
    }
    const expected = createHmac("sha256", key).update(bytes.subarray(0, macOffset)).digest();
    if (!timingSafeEqual(expected, bytes.subarray(macOffset))) r.fail("bad HMAC", macOffset);
    const sender = r.u32("sender");
    const sequence = r.u64("sequence");
    const moveId = r.u32("move id");
    const flagsAt = r.offset;
    if (r.u32("flags") !== 0) r.fail("reserved flags set", flagsAt);
    const bodyReader = new ByteReader(bytes.subarray(0, macOffset), NATLB_HEADER_LENGTH);
    const body = readBody(type, bodyReader);
    if (bodyReader.offset !== macOffset) {
      bodyReader.fail(`${macOffset - bodyReader.offset} unexpected bytes after the type ${type} body`);
    }
    return ok({ sender, sequence, moveId, ...body });
  });
}

/** Entries per type 3/5 message so a datagram stays under `mtu` (IPv4 + UDP headers included). */
export function entriesPerDatagram(mtu = 1500): number {
  return Math.floor((mtu - 20 - 8 - NATLB_HEADER_LENGTH - 20 - NATLB_HMAC_LENGTH) / CONN_ENTRY_LENGTH);
}

/** Recomputes the HMAC (the last 32 bytes) of a possibly malformed datagram; for crafting test input. */
export function resealNatlb(bytes: Uint8Array, key: Uint8Array): Uint8Array {
  const out = bytes.slice();
  if (out.length < NATLB_HMAC_LENGTH) return out;
  const macOffset = out.length - NATLB_HMAC_LENGTH;
  out.set(createHmac("sha256", key).update(out.subarray(0, macOffset)).digest(), macOffset);
  return out;
}
