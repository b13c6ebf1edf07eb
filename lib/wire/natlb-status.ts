import { createHmac, timingSafeEqual } from "node:crypto";
import { ByteReader, ByteWriter } from "./bytes.ts";
import { NATLB_HEADER_LENGTH, NATLB_HMAC_LENGTH, NATLB_VERSION } from "./natlb.ts";
import { type DecodeResult, guardDecode, ok } from "./result.ts";

/**
 * NAT-LB load report (type 7): a balancer tells the control function 52 its per-VIP
 * traffic counters and which VIPs it holds, every report interval. It is how the
 * controller "collects information of a communication amount of each of load balancers"
 * (seed 002) and, by its absence, how it notices a failed balancer. Same header and
 * HMAC-SHA256 trailer as types 1-6 (docs/wire.md), so the same key and replay window
 * apply. Added by the NAT-LB role (natlb.md); body:
 *
 *   balancer id (4) | count N (2) | reserved (2) | invalid rejected (8) |
 *   N x { VIP (4) | flags (1: bit0 owned, bit1 transition) | reserved (3) | packets (8) | bytes (8) }
 */
export const NATLB_TYPE_LOAD_REPORT = 7;
const VIP_RECORD = 24;

export interface VipLoadRecord {
  vip: string;
  owned: boolean;
  transition: boolean;
  packets: bigint;
  bytes: bigint;
}

export interface LoadReport {
  sender: number;
  sequence: bigint;
  balancer: number;
  invalidRejected: bigint;
  vips: VipLoadRecord[];
}

export function encodeLoadReport(m: LoadReport, key: Uint8Array): Uint8Array {
  const w = new ByteWriter(64 + m.vips.length * VIP_RECORD);
  w.u8(NATLB_VERSION).u8(NATLB_TYPE_LOAD_REPORT).u16(0).u32(m.sender).u64(m.sequence).u32(0).u32(0);
  w.u32(m.balancer).u16(m.vips.length).u16(0).u64(m.invalidRejected);
  for (const v of m.vips) {
    w.ipv4(v.vip)
      .u8((v.owned ? 1 : 0) | (v.transition ? 2 : 0))
      .zeros(3)
      .u64(v.packets)
      .u64(v.bytes);
  }
  w.patchU16(2, w.length - NATLB_HEADER_LENGTH);
  w.zeros(NATLB_HMAC_LENGTH);
  const out = w.finish();
  const at = out.length - NATLB_HMAC_LENGTH;
  out.set(createHmac("sha256", key).update(out.subarray(0, at)).digest(), at);
  return out;
}

/** Decodes and authenticates a type 7 datagram. Never throws. */
export function decodeLoadReport(bytes: Uint8Array, key: Uint8Array): DecodeResult<LoadReport> {
  return guardDecode<LoadReport>(() => {
    const r = new ByteReader(bytes);
    const version = r.u8("version");
    if (version !== NATLB_VERSION) r.fail(`unsupported NAT-LB control version ${version}`, 0);
    const type = r.u8("type");
    if (type !== NATLB_TYPE_LOAD_REPORT) r.fail(`not a load report (type ${type})`, 1);
    const bodyLength = r.u16("body length");
    const at = NATLB_HEADER_LENGTH + bodyLength;
    if (at + NATLB_HMAC_LENGTH !== bytes.length)
      r.fail(`body length ${bodyLength} disagrees with datagram length ${bytes.length}`, 2);
    const expected = createHmac("sha256", key).update(bytes.subarray(0, at)).digest();
    if (!timingSafeEqual(expected, bytes.subarray(at))) r.fail("bad HMAC", at);
    const sender = r.u32("sender");
    const sequence = r.u64("sequence");
    r.u32("move id");
    if (r.u32("flags") !== 0) r.fail("reserved flags set", 20);
    const balancer = r.u32("balancer");
    const n = r.u16("count");
    r.u16("reserved");
    const invalidRejected = r.u64("invalid rejected");
    if (bodyLength !== 16 + n * VIP_RECORD) r.fail(`count ${n} disagrees with body length ${bodyLength}`, 28);
    const vips: VipLoadRecord[] = [];
    for (let i = 0; i < n; i++) {
      const vip = r.ipv4("VIP");
      const flags = r.u8("flags");
      r.take(3, "reserved");
      vips.push({
        vip,
        owned: (flags & 1) !== 0,
        transition: (flags & 2) !== 0,
        packets: r.u64("packets"),
        bytes: r.u64("bytes"),
      });
    }
    return ok({ sender, sequence, balancer, invalidRejected, vips });
  });
}
