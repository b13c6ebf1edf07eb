import { createHmac, timingSafeEqual } from "node:crypto";
import { ByteReader, ByteWriter } from "./bytes.ts";
import { encodeIpv4, IP_PROTOCOL } from "./ipv4.ts";
import { type DecodeResult, fail, guardDecode, ok } from "./result.ts";
import { decodeVrrp, encodeVrrp, type VrrpChecksumMode, vrrpChecksum, vrrpChecksumMatches } from "./vrrp.ts";

/**
 * VRLS extension messages (seed 000, Fig. 3 extended as Figs. 10A-10F). Each travels as a
 * VRRP v3 message (IP protocol 112, TTL 255) with Type 1..10; the extension block follows
 * the standard header and address list. Layout: docs/wire.md section "VRLS extension".
 *
 *   extension header (24 bytes) | type-specific body (bodyLength) | HMAC-SHA256 (32)
 *
 * The HMAC covers the whole VRRP message from the version byte to the end of the body with
 * the checksum field taken as zero; the VRRP checksum then covers everything including
 * the HMAC, so it stays a plain RFC 5798 checksum.
 */
export const VRLS_TYPE = {
  advertisement: 1,
  response: 2,
  allocation: 3,
  allocationConfirmation: 4,
  sequenceInfo: 5,
  reviewRequest: 6,
  flowRateRequest: 7,
  flowRateResponse: 8,
  registration: 9,
  registrationAck: 10,
} as const;
export type VrlsTypeName = keyof typeof VRLS_TYPE;

export const VRLS_EXTENSION_VERSION = 1;
export const VRLS_HEADER_LENGTH = 24;
export const VRLS_HMAC_LENGTH = 32;
export const CONDITION_LENGTH = 8;

/** Hand-off operation mode (seed Fig. 9A "operation mode"; exactly-once is beyond the seed). */
export type HandoffMode = "timer" | "sequence-number" | "exactly-once";
const MODE_CODE: Record<HandoffMode, number> = { timer: 1, "sequence-number": 2, "exactly-once": 3 };
const MODE_BY_CODE = new Map<number, HandoffMode>(
  Object.entries(MODE_CODE).map(([k, v]) => [v, k as HandoffMode]),
);

/** A packet condition (seed Fig. 9C): a source prefix, or one hash bucket of N. */
export type Condition =
  | { kind: "prefix"; address: string; prefixLength: number }
  | { kind: "bucket"; hashInput: "src" | "src+dst"; bucketCount: number; bucket: number };

/** Fig. 10C entry: where the old owner stopped on one TCP flow of a condition, or "not found". */
export type SequenceEntry =
  | { condition: Condition; found: false }
  | {
      condition: Condition;
      found: true;
      src: string;
      dst: string;
      srcPort: number;
      dstPort: number;
      tcpSeq: number;
    };

/** Exactly-once hand-off marker: the last packet of a flow the old owner forwarded. */
export interface FlowMarker {
  protocol: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** 64-bit identity (hash) of the last forwarded IP packet as received. */
  packetId: bigint;
  /** Packets of this flow the old owner forwarded since observation began. */
  packetCount: bigint;
}

export interface FlowRateEntry {
  condition: Condition;
  rateBps: bigint;
  /** Buffer overflows of this condition per time unit. */
  overflows: number;
}

export interface Assignment {
  /** Registered address of the router that gets these conditions. */
  router: string;
  /**
   * The live router that had these conditions before (the hand-off's old owner), when
   * there is one; absent: nothing to hand off. Assignment flags bit 0 (additive).
   */
  previousRouter?: string;
  conditions: Condition[];
}

export type MemberState = "idle" | "working" | "fault";
const STATE_CODE: Record<MemberState, number> = { idle: 0, working: 1, fault: 2 };
const STATE_BY_CODE = new Map<number, MemberState>(
  Object.entries(STATE_CODE).map(([k, v]) => [v, k as MemberState]),
);

export type MemberRole = "router" | "coordinator";

/** A packet the new owner holds (type 4 extension): its condition's index in the message, its identity. */
export interface HeldPacket {
  conditionIndex: number;
  /** 64-bit identity of the IP packet as received (the markers' `packetId`). */
  packetId: bigint;
}

export type VrlsBody =
  | { type: 1; allocationSerial: number; mode: HandoffMode; memberCount: number }
  | { type: 2; allocationSerial: number; state: MemberState }
  | { type: 3; allocationSerial: number; mode: HandoffMode; timerDelayMs: number; assignments: Assignment[] }
  | {
      type: 4;
      allocationSerial: number;
      accepted: boolean;
      /** Every hand-off of the sender in this allocation is finished (flags bit 0, additive). */
      done?: boolean;
      conditions: Condition[];
      /**
       * Tandem extension (flags bit 1, docs/vrls.md "held packets in the confirmation"): the
       * identities of packets the sender (a new owner) holds so far, each naming its condition
       * by index into `conditions`. The old owner stops only once it has itself taken in one of
       * them, so every packet before the hold has passed its kernel.
       */
      held?: HeldPacket[];
    }
  | {
      type: 5;
      allocationSerial: number;
      /** Fragment index (0-based) and count, for marker lists longer than one packet. */
      part: number;
      parts: number;
      sequences: SequenceEntry[];
      markers: FlowMarker[];
    }
  | {
      type: 6;
      rateExceeded: boolean;
      overflowExceeded: boolean;
      totalRateBps: bigint;
      overflowCount: number;
      timeUnitMs: number;
    }
  | { type: 7; allocationSerial: number; conditions: Condition[] }
  | { type: 8; allocationSerial: number; timeUnitMs: number; overflowCount: number; rates: FlowRateEntry[] }
  | { type: 9; role: MemberRole; registeredAddress: string; priority: number }
  | { type: 10; accepted: boolean; role: MemberRole; registeredAddress: string };

/** Fields every VRLS message carries: the VRRP v3 envelope plus the extension header. */
export interface VrlsEnvelope {
  vrid: number;
  priority: number;
  maxAdverIntCs: number;
  /** The virtual router's addresses, as in the sender's advertisements. */
  addresses: string[];
  /** Registered IPv4 address of the sender. */
  sender: string;
  /** Sender incarnation: strictly increases each time the sender (re)starts. */
  senderIncarnation: number;
  /** Per-sender message counter within an incarnation (replay rejection, idempotence). */
  sequence: number;
  /** Master term this message belongs to (the master's incarnation when it took over). */
  masterEpoch: number;
  /** Sequence number of the message this one answers, 0 if none. */
  inReplyTo: number;
}

export type VrlsMessage = VrlsEnvelope & VrlsBody;

export interface VrlsCodecOptions {
  /** HMAC-SHA256 key configured for the virtual router. */
  key: Uint8Array;
  /** IPv4 source/destination for the RFC 5798 checksum (pseudo-header). */
  src: string;
  dst: string;
  checksumMode?: VrrpChecksumMode;
}

// ---------- encoding ----------

function writeCondition(w: ByteWriter, c: Condition): void {
  if (c.kind === "prefix") {
    if (!Number.isInteger(c.prefixLength) || c.prefixLength < 0 || c.prefixLength > 32) {
      throw new Error(`condition prefix length must be 0..32, got ${c.prefixLength}`);
    }
    w.u8(1).u8(c.prefixLength).u16(0).ipv4(c.address);
  } else {
    if (c.bucketCount < 1 || c.bucketCount > 0xffff || c.bucket < 0 || c.bucket >= c.bucketCount) {
      throw new Error(`hash bucket ${c.bucket} of ${c.bucketCount} out of range (count 1..65535)`);
    }
    w.u8(2)
      .u8(c.hashInput === "src" ? 1 : 2)
      .u16(c.bucketCount)
      .u16(c.bucket)
      .u16(0);
  }
}

function writeConditions(w: ByteWriter, list: Condition[]): void {
  if (list.length > 0xffff) throw new Error(`too many conditions: ${list.length}`);
  for (const c of list) writeCondition(w, c);
}

function count16(what: string, n: number): number {
  if (n > 0xffff) throw new Error(`too many ${what}: ${n}`);
  return n;
}

function writeBody(w: ByteWriter, body: VrlsBody): void {
  switch (body.type) {
    case 1:
      w.u32(body.allocationSerial).u8(MODE_CODE[body.mode]).u8(0).u16(body.memberCount);
      return;
    case 2:
      w.u32(body.allocationSerial).u8(STATE_CODE[body.state]).u8(0).u16(0);
      return;
    case 3:
      w.u32(body.allocationSerial)
        .u8(MODE_CODE[body.mode])
        .u8(0)
        .u16(body.timerDelayMs)
        .u16(count16("assignments", body.assignments.length))
        .u16(0);
      for (const a of body.assignments) {
        w.ipv4(a.router)
          .u16(count16("conditions", a.conditions.length))
          .u16(a.previousRouter !== undefined ? 1 : 0);
        if (a.previousRouter !== undefined) w.ipv4(a.previousRouter);
        writeConditions(w, a.conditions);
      }
      return;
    case 4: {
      const held = body.held ?? [];
      w.u32(body.allocationSerial)
        .u8(body.accepted ? 1 : 0)
        .u8((body.done ? 1 : 0) | (held.length > 0 ? 2 : 0))
        .u16(count16("conditions", body.conditions.length));
      writeConditions(w, body.conditions);
      if (held.length > 0) {
        w.u16(count16("held packets", held.length)).u16(0);
        for (const h of held) {
          if (
            !Number.isInteger(h.conditionIndex) ||
            h.conditionIndex < 0 ||
            h.conditionIndex >= body.conditions.length
          )
            throw new RangeError(
              `held packet condition index ${h.conditionIndex} outside 0..${body.conditions.length - 1}`,
            );
          w.u16(h.conditionIndex).u16(0).u64(h.packetId);
        }
      }
      return;
    }
    case 5:
      w.u32(body.allocationSerial)
        .u16(body.part)
        .u16(body.parts)
        .u16(count16("sequence entries", body.sequences.length))
        .u16(count16("markers", body.markers.length));
      for (const s of body.sequences) {
        writeCondition(w, s.condition);
        if (s.found) {
          w.u8(1).u8(0).u16(0).ipv4(s.src).ipv4(s.dst).u16(s.srcPort).u16(s.dstPort).u32(s.tcpSeq);
        } else {
          w.u8(0).zeros(19);
        }
      }
      for (const m of body.markers) {
        w.u8(m.protocol).zeros(3).ipv4(m.src).ipv4(m.dst).u16(m.srcPort).u16(m.dstPort);
        w.u64(m.packetId).u64(m.packetCount);
      }
      return;
    case 6:
      w.u8((body.rateExceeded ? 1 : 0) | (body.overflowExceeded ? 2 : 0))
        .zeros(3)
        .u32(body.overflowCount)
        .u32(body.timeUnitMs)
        .u32(0)
        .u64(body.totalRateBps);
      return;
    case 7:
      w.u32(body.allocationSerial).u16(count16("conditions", body.conditions.length)).u16(0);
      writeConditions(w, body.conditions);
      return;
    case 8:
      w.u32(body.allocationSerial)
        .u32(body.timeUnitMs)
        .u32(body.overflowCount)
        .u16(count16("rate entries", body.rates.length))
        .u16(0);
      for (const e of body.rates) {
        writeCondition(w, e.condition);
        w.u64(e.rateBps).u32(e.overflows).u32(0);
      }
      return;
    case 9:
      w.u8(body.role === "router" ? 1 : 2)
        .u8(body.priority)
        .u16(0)
        .ipv4(body.registeredAddress);
      return;
    case 10:
      w.u8(body.accepted ? 1 : 0)
        .u8(body.role === "router" ? 1 : 2)
        .u16(0)
        .ipv4(body.registeredAddress);
      return;
  }
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return createHmac("sha256", key).update(data).digest();
}

/** Encodes a VRLS message to the VRRP v3 message bytes (the IPv4 payload). */
export function encodeVrls(message: VrlsMessage, options: VrlsCodecOptions): Uint8Array {
  const ext = new ByteWriter(128);
  ext.u8(VRLS_EXTENSION_VERSION).u8(0).u16(0);
  ext.ipv4(message.sender).u32(message.senderIncarnation).u32(message.sequence);
  ext.u32(message.masterEpoch).u32(message.inReplyTo);
  writeBody(ext, message);
  const bodyLength = ext.length - VRLS_HEADER_LENGTH;
  if (bodyLength > 0xffff) throw new Error(`VRLS body too long: ${bodyLength} bytes`);
  ext.patchU16(2, bodyLength);
  ext.zeros(VRLS_HMAC_LENGTH);
  const extension = ext.finish();
  const vrrp = encodeVrrp(
    {
      version: 3,
      type: message.type,
      vrid: message.vrid,
      priority: message.priority,
      maxAdverIntCs: message.maxAdverIntCs,
      addresses: message.addresses,
      extension,
    },
    { src: options.src, dst: options.dst, mode: options.checksumMode ?? "rfc" },
  );
  // HMAC over [0, macOffset) with the checksum field zeroed; then the checksum over everything.
  const macOffset = vrrp.length - VRLS_HMAC_LENGTH;
  vrrp[6] = 0;
  vrrp[7] = 0;
  vrrp.set(hmac(options.key, vrrp.subarray(0, macOffset)), macOffset);
  const sum = vrrpChecksum(vrrp, 3, {
    src: options.src,
    dst: options.dst,
    mode: options.checksumMode ?? "rfc",
  });
  vrrp[6] = sum >> 8;
  vrrp[7] = sum & 0xff;
  return vrrp;
}

/** Encodes a VRLS message as a complete IPv4 packet (protocol 112, TTL 255). */
export function encodeVrlsIpv4(message: VrlsMessage, options: VrlsCodecOptions): Uint8Array {
  return encodeIpv4({
    src: options.src,
    dst: options.dst,
    protocol: IP_PROTOCOL.vrrp,
    ttl: 255,
    tos: 0xc0,
    payload: encodeVrls(message, options),
  });
}

/**
 * A received VRLS message transferred unchanged by a third party (seed Fig. 15 P25: the
 * substitution server transfers a backup's response to the master router): the same VRRP
 * message, sender, sequence and HMAC (which covers no IP address), in a new IPv4 packet from
 * `src` to `dst`; only the RFC 5798 checksum, whose pseudo-header has the addresses, is
 * recomputed. The receiver authenticates the original sender as usual.
 */
export function transferVrlsIpv4(
  vrrp: Uint8Array,
  options: { src: string; dst: string; checksumMode?: VrrpChecksumMode },
): Uint8Array {
  const out = vrrp.slice();
  out[6] = 0;
  out[7] = 0;
  const sum = vrrpChecksum(out, 3, {
    src: options.src,
    dst: options.dst,
    mode: options.checksumMode ?? "rfc",
  });
  out[6] = sum >> 8;
  out[7] = sum & 0xff;
  return encodeIpv4({
    src: options.src,
    dst: options.dst,
    protocol: IP_PROTOCOL.vrrp,
    ttl: 255,
    tos: 0xc0,
    payload: out,
  });
}

// ---------- decoding ----------

function readCondition(r: ByteReader): Condition {
  const at = r.offset;
  const kind = r.u8("condition kind");
  if (kind === 1) {
    const prefixLength = r.u8("condition prefix length");
    r.u16("condition reserved");
    const address = r.ipv4("condition address");
    if (prefixLength > 32) r.fail(`condition prefix length ${prefixLength} > 32`, at + 1);
    return { kind: "prefix", address, prefixLength };
  }
  if (kind === 2) {
    const input = r.u8("condition hash input");
    const bucketCount = r.u16("condition bucket count");
    const bucket = r.u16("condition bucket");
    r.u16("condition reserved");
    if (input !== 1 && input !== 2) r.fail(`unknown hash input ${input}`, at + 1);
    if (bucketCount === 0 || bucket >= bucketCount) r.fail(`hash bucket ${bucket} of ${bucketCount}`, at + 2);
    return { kind: "bucket", hashInput: input === 1 ? "src" : "src+dst", bucketCount, bucket };
  }
  return r.fail(`unknown condition kind ${kind}`, at);
}

function readConditions(r: ByteReader, n: number): Condition[] {
  r.need(n * CONDITION_LENGTH, `${n} conditions`);
  const out: Condition[] = [];
  for (let i = 0; i < n; i++) out.push(readCondition(r));
  return out;
}

function readMode(r: ByteReader): HandoffMode {
  const at = r.offset;
  const code = r.u8("hand-off mode");
  return MODE_BY_CODE.get(code) ?? r.fail(`unknown hand-off mode ${code}`, at);
}

function readRole(r: ByteReader): MemberRole {
  const at = r.offset;
  const code = r.u8("member role");
  if (code === 1) return "router";
  if (code === 2) return "coordinator";
  return r.fail(`unknown member role ${code}`, at);
}

function readBody(type: number, r: ByteReader): VrlsBody {
  switch (type) {
    case 1: {
      const allocationSerial = r.u32("allocation serial");
      const mode = readMode(r);
      r.u8("reserved");
      return { type, allocationSerial, mode, memberCount: r.u16("member count") };
    }
    case 2: {
      const allocationSerial = r.u32("allocation serial");
      const at = r.offset;
      const code = r.u8("member state");
      const state = STATE_BY_CODE.get(code) ?? r.fail(`unknown member state ${code}`, at);
      r.u8("reserved");
      r.u16("reserved");
      return { type, allocationSerial, state };
    }
    case 3: {
      const allocationSerial = r.u32("allocation serial");
      const mode = readMode(r);
      r.u8("reserved");
      const timerDelayMs = r.u16("timer delay");
      const n = r.u16("assignment count");
      r.u16("reserved");
      r.need(n * 8, `${n} assignments`);
      const assignments: Assignment[] = [];
      for (let i = 0; i < n; i++) {
        const router = r.ipv4("assignment router");
        const c = r.u16("assignment condition count");
        const flagsAt = r.offset;
        const flags = r.u16("assignment flags");
        if (flags > 1) r.fail(`unknown assignment flags 0x${flags.toString(16)}`, flagsAt);
        if (flags & 1) {
          const previousRouter = r.ipv4("assignment previous router");
          assignments.push({ router, previousRouter, conditions: readConditions(r, c) });
        } else {
          assignments.push({ router, conditions: readConditions(r, c) });
        }
      }
      return { type, allocationSerial, mode, timerDelayMs, assignments };
    }
    case 4: {
      const allocationSerial = r.u32("allocation serial");
      const at = r.offset;
      const accepted = r.u8("accepted flag");
      if (accepted > 1) r.fail(`accepted flag ${accepted}`, at);
      const flags = r.u8("confirmation flags");
      if (flags > 3) r.fail(`unknown confirmation flags 0x${flags.toString(16)}`, at + 1);
      const n = r.u16("condition count");
      const conditions = readConditions(r, n);
      const body: Extract<VrlsBody, { type: 4 }> = {
        type,
        allocationSerial,
        accepted: accepted === 1,
        conditions,
      };
      if (flags & 1) body.done = true;
      if (flags & 2) {
        const countAt = r.offset;
        const m = r.u16("held packet count");
        if (m === 0) r.fail("held packets flagged but none listed", countAt);
        r.u16("reserved");
        r.need(m * 12, `${m} held packets`);
        const held: HeldPacket[] = [];
        for (let i = 0; i < m; i++) {
          const indexAt = r.offset;
          const conditionIndex = r.u16("held packet condition index");
          if (conditionIndex >= n)
            r.fail(`held packet condition index ${conditionIndex} of ${n} conditions`, indexAt);
          r.u16("reserved");
          held.push({ conditionIndex, packetId: r.u64("held packet identity") });
        }
        body.held = held;
      }
      return body;
    }
    case 5: {
      const allocationSerial = r.u32("allocation serial");
      const part = r.u16("part");
      const parts = r.u16("parts");
      if (part >= parts) r.fail(`part ${part} of ${parts}`, r.offset - 4);
      const ns = r.u16("sequence entry count");
      const nm = r.u16("marker count");
      r.need(ns * 28 + nm * 32, `${ns} sequence entries and ${nm} markers`);
      const sequences: SequenceEntry[] = [];
      for (let i = 0; i < ns; i++) {
        const condition = readCondition(r);
        const at = r.offset;
        const found = r.u8("found flag");
        r.u8("reserved");
        r.u16("reserved");
        if (found === 0) {
          r.take(16, "sequence entry padding");
          sequences.push({ condition, found: false });
        } else if (found === 1) {
          sequences.push({
            condition,
            found: true,
            src: r.ipv4("flow source"),
            dst: r.ipv4("flow destination"),
            srcPort: r.u16("flow source port"),
            dstPort: r.u16("flow destination port"),
            tcpSeq: r.u32("TCP sequence number"),
          });
        } else {
          r.fail(`found flag ${found}`, at);
        }
      }
      const markers: FlowMarker[] = [];
      for (let i = 0; i < nm; i++) {
        const protocol = r.u8("marker protocol");
        r.take(3, "reserved");
        markers.push({
          protocol,
          src: r.ipv4("marker source"),
          dst: r.ipv4("marker destination"),
          srcPort: r.u16("marker source port"),
          dstPort: r.u16("marker destination port"),
          packetId: r.u64("marker packet identity"),
          packetCount: r.u64("marker packet count"),
        });
      }
      return { type, allocationSerial, part, parts, sequences, markers };
    }
    case 6: {
      const at = r.offset;
      const flags = r.u8("review flags");
      if (flags > 3) r.fail(`unknown review flags 0x${flags.toString(16)}`, at);
      r.take(3, "reserved");
      const overflowCount = r.u32("overflow count");
      const timeUnitMs = r.u32("time unit");
      r.u32("reserved");
      return {
        type,
        rateExceeded: (flags & 1) !== 0,
        overflowExceeded: (flags & 2) !== 0,
        overflowCount,
        timeUnitMs,
        totalRateBps: r.u64("total rate"),
      };
    }
    case 7: {
      const allocationSerial = r.u32("allocation serial");
      const n = r.u16("condition count");
      r.u16("reserved");
      return { type, allocationSerial, conditions: readConditions(r, n) };
    }
    case 8: {
      const allocationSerial = r.u32("allocation serial");
      const timeUnitMs = r.u32("time unit");
      const overflowCount = r.u32("overflow count");
      const n = r.u16("rate entry count");
      r.u16("reserved");
      r.need(n * 24, `${n} rate entries`);
      const rates: FlowRateEntry[] = [];
      for (let i = 0; i < n; i++) {
        const condition = readCondition(r);
        const rateBps = r.u64("rate");
        const overflows = r.u32("overflows");
        r.u32("reserved");
        rates.push({ condition, rateBps, overflows });
      }
      return { type, allocationSerial, timeUnitMs, overflowCount, rates };
    }
    case 9: {
      const role = readRole(r);
      const priority = r.u8("priority");
      r.u16("reserved");
      return { type, role, priority, registeredAddress: r.ipv4("registered address") };
    }
    case 10: {
      const at = r.offset;
      const accepted = r.u8("accepted flag");
      if (accepted > 1) r.fail(`accepted flag ${accepted}`, at);
      const role = readRole(r);
      r.u16("reserved");
      return { type, accepted: accepted === 1, role, registeredAddress: r.ipv4("registered address") };
    }
    default:
      return r.fail(`unknown VRLS message type ${type}`, 0);
  }
}

export interface VrlsDecodeOptions {
  key: Uint8Array;
  /** When given, the VRRP checksum is verified too (RFC 5798 pseudo-header by default). */
  src?: string;
  dst?: string;
  checksumMode?: VrrpChecksumMode;
}

/**
 * Decodes and authenticates a VRLS message from VRRP message bytes. Fails (never throws)
 * on structure errors, a wrong HMAC, or a wrong checksum when src/dst are given.
 */
export function decodeVrls(bytes: Uint8Array, options: VrlsDecodeOptions): DecodeResult<VrlsMessage> {
  const vrrpResult = decodeVrrp(bytes);
  if (!vrrpResult.ok) return vrrpResult;
  const vrrp = vrrpResult.value;
  if (vrrp.version !== 3) return fail(0, `VRLS needs VRRP version 3, got ${vrrp.version}`);
  const extStart = 8 + vrrp.count * 4;
  return guardDecode(() => {
    const r = new ByteReader(bytes, extStart);
    const extVersion = r.u8("VRLS extension version");
    if (extVersion !== VRLS_EXTENSION_VERSION)
      r.fail(`unsupported VRLS extension version ${extVersion}`, extStart);
    r.u8("VRLS flags");
    const bodyLength = r.u16("VRLS body length");
    const macOffset = extStart + VRLS_HEADER_LENGTH + bodyLength;
    if (macOffset + VRLS_HMAC_LENGTH !== bytes.length) {
      r.fail(
        `VRLS body length ${bodyLength} disagrees with message length ${bytes.length} (expected ${macOffset + VRLS_HMAC_LENGTH})`,
        extStart + 2,
      );
    }
    if (options.src !== undefined && options.dst !== undefined) {
      const mode = options.checksumMode ?? "rfc";
      if (!vrrpChecksumMatches(bytes, { src: options.src, dst: options.dst, mode })) {
        r.fail("bad VRRP checksum", 6);
      }
    }
    // Authenticate before interpreting the body.
    const signed = bytes.slice(0, macOffset);
    signed[6] = 0;
    signed[7] = 0;
    const expected = hmac(options.key, signed);
    if (!timingSafeEqual(expected, bytes.subarray(macOffset, macOffset + VRLS_HMAC_LENGTH))) {
      r.fail("bad HMAC", macOffset);
    }
    const sender = r.ipv4("VRLS sender");
    const senderIncarnation = r.u32("VRLS sender incarnation");
    const sequence = r.u32("VRLS sequence");
    const masterEpoch = r.u32("VRLS master epoch");
    const inReplyTo = r.u32("VRLS in-reply-to");
    // The body reader sees only the body, so it cannot run into the HMAC.
    const bodyReader = new ByteReader(bytes.subarray(0, macOffset), r.offset);
    const body = readBody(vrrp.type, bodyReader);
    if (bodyReader.offset !== macOffset) {
      bodyReader.fail(`${macOffset - bodyReader.offset} unexpected bytes after the type ${vrrp.type} body`);
    }
    return ok({
      vrid: vrrp.vrid,
      priority: vrrp.priority,
      maxAdverIntCs: vrrp.maxAdverIntCs,
      addresses: vrrp.addresses,
      sender,
      senderIncarnation,
      sequence,
      masterEpoch,
      inReplyTo,
      ...body,
    });
  });
}

/** True when a VRRP message carries a VRLS extension block (as opposed to a plain RFC advert). */
export function hasVrlsExtension(vrrpBytes: Uint8Array): boolean {
  if (vrrpBytes.length < 8) return false;
  const count = vrrpBytes[3]!;
  return vrrpBytes.length >= 8 + count * 4 + VRLS_HEADER_LENGTH + VRLS_HMAC_LENGTH;
}

export function handoffModeCode(mode: HandoffMode): number {
  return MODE_CODE[mode];
}

/**
 * Recomputes the HMAC (taken as the last 32 bytes) and the checksum of a possibly
 * malformed VRLS message, so tests can hand hostile bodies to a receiver that will
 * authenticate them. Never use on received data.
 */
export function resealVrls(bytes: Uint8Array, options: VrlsCodecOptions): Uint8Array {
  const out = bytes.slice();
  if (out.length < 8 + VRLS_HMAC_LENGTH) return out;
  const macOffset = out.length - VRLS_HMAC_LENGTH;
  out[6] = 0;
  out[7] = 0;
  out.set(hmac(options.key, out.subarray(0, macOffset)), macOffset);
  const version = out[0]! >> 4;
  if (version === 2 || version === 3) {
    const sum = vrrpChecksum(out, version, {
      src: options.src,
      dst: options.dst,
      mode: options.checksumMode ?? "rfc",
    });
    out[6] = sum >> 8;
    out[7] = sum & 0xff;
  }
  return out;
}
