// The vrls cases' wire judgements (suites/vrls/wire-judge.ts, issue 13) on pcaps of real
// VRLS messages encoded with lib/wire (HMAC and checksums included) and decoded back the
// way the cases read their captures: the timer-mode hand-off's first forwarded packet
// against the allocation (VRLS-HANDOFF-TMR-001) and "biggest first" against the rates of
// the flow rate responses (VRLS-REVIEW-003). The lab runs: the vrls suite.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writePcap } from "../lib/traffic/pcap-reader.ts";
import {
  type Condition,
  ETHERTYPE,
  encodeEthernet,
  encodeIpv4,
  encodeUdp,
  encodeVrlsIpv4,
  IP_PROTOCOL,
  type VrlsBody,
} from "../lib/wire/index.ts";
import { decodeVrlsCapture, forwardedPackets, rateOrder, timerHandoffs } from "../suites/vrls/wire-judge.ts";

const KEY = "wire-judge-test-key";
const RA = "198.18.1.2";
const RB = "198.18.1.3";
const dir = mkdtempSync(join(tmpdir(), "tandem-wire-judge-"));

function vrls(tsMs: number, src: string, dst: string, body: VrlsBody, sequence: number) {
  const ip = encodeVrlsIpv4(
    {
      vrid: 51,
      priority: src === RA ? 200 : 100,
      maxAdverIntCs: 10,
      addresses: ["198.18.1.1"],
      sender: src,
      senderIncarnation: 1,
      sequence,
      masterEpoch: 1,
      inReplyTo: 0,
      ...body,
    },
    { key: new TextEncoder().encode(KEY), src, dst },
  );
  return {
    tsMs,
    data: encodeEthernet({
      dst: "01:00:5e:00:00:12",
      src: "02:00:00:00:00:01",
      etherType: ETHERTYPE.ipv4,
      payload: ip,
    }),
  };
}

function udp(tsMs: number, src: string) {
  const payload = encodeUdp(
    { srcPort: 4000, dstPort: 5200, payload: new Uint8Array(20) },
    src,
    "198.18.100.10",
  );
  const ip = encodeIpv4({ src, dst: "198.18.100.10", protocol: IP_PROTOCOL.udp, ttl: 63, payload });
  return {
    tsMs,
    data: encodeEthernet({
      dst: "02:00:00:00:64:0a",
      src: "02:00:00:00:64:03",
      etherType: ETHERTYPE.ipv4,
      payload: ip,
    }),
  };
}

const prefix = (address: string): Condition => ({ kind: "prefix", address, prefixLength: 32 });
const bucket = (b: number): Condition => ({
  kind: "bucket",
  hashInput: "src+dst",
  bucketCount: 32,
  bucket: b,
});

function pcap(name: string, records: { tsMs: number; data: Uint8Array }[]): string {
  const path = join(dir, name);
  writeFileSync(path, writePcap(records));
  return path;
}

describe("timer-mode hand-off on the new owner's wire", () => {
  it("measures the first forwarded packet of each condition handed over, from the allocation", async () => {
    const t0 = 1_000_000;
    const alloc = (ts: number, serial: number, moved: string, seq: number) =>
      vrls(
        ts,
        RA,
        "224.0.0.18",
        {
          type: 3,
          allocationSerial: serial,
          mode: "timer",
          timerDelayMs: 0,
          assignments: [
            { router: RB, previousRouter: RA, conditions: [prefix(moved)] },
            { router: RA, conditions: [prefix("198.18.1.14")] },
          ],
        },
        seq,
      );
    const lan = pcap("timer-lan.pcap", [
      alloc(t0, 4, "198.18.1.11", 1),
      alloc(t0 + 0.5, 4, "198.18.1.11", 2), // a retransmission: the same allocation
      vrls(t0 + 0.8, RB, RA, { type: 4, allocationSerial: 4, accepted: true, conditions: [] }, 1),
      alloc(t0 + 400, 5, "198.18.1.12", 3),
    ]);
    const far = pcap("timer-far.pcap", [
      udp(t0 - 50, "198.18.1.11"), // before the hand-off: not counted
      udp(t0 + 205.3, "198.18.1.11"),
      udp(t0 + 206.3, "198.18.1.11"),
      udp(t0 + 400 + 12.5, "198.18.1.12"), // 12.5 ms: a new owner that did not wait
    ]);
    const decoded = await decodeVrlsCapture(lan, KEY);
    expect(decoded.map((m) => m.message.type)).toEqual([3, 3, 4, 3]);
    const { packets, undecodable } = await forwardedPackets(far);
    expect(undecodable).toBe(0);
    const h = timerHandoffs(RB, decoded, packets);
    expect(
      h.map((x) => [x.serial, x.condition, x.from, x.firstForwardAfterMs, x.confirmationAfterMs]),
    ).toEqual([
      [4, "198.18.1.11/32", RA, 205.3, 0.8],
      [5, "198.18.1.12/32", RA, 12.5, null],
    ]);
    // Authentication: with another key nothing decodes.
    expect(await decodeVrlsCapture(lan, "another key")).toEqual([]);
  });
});

describe("reallocation by rate: biggest first against the reported rates", () => {
  const t0 = 2_000_000;
  const round = (order: number[]) =>
    pcap(`rate-${order.join("-")}.pcap`, [
      vrls(t0, RA, RB, { type: 7, allocationSerial: 0, conditions: [] }, 1),
      vrls(
        t0 + 2,
        RB,
        RA,
        {
          type: 8,
          allocationSerial: 1,
          timeUnitMs: 1000,
          overflowCount: 0,
          rates: [
            { condition: bucket(1), rateBps: 0n, overflows: 0 },
            { condition: bucket(2), rateBps: 640_000n, overflows: 0 },
            { condition: bucket(3), rateBps: 650_000n, overflows: 0 },
          ],
        },
        1,
      ),
      vrls(
        t0 + 25,
        RA,
        "224.0.0.18",
        {
          type: 3,
          allocationSerial: 2,
          mode: "exactly-once",
          timerDelayMs: 0,
          assignments: [
            { router: RA, previousRouter: RB, conditions: order.map(bucket) },
            { router: RB, conditions: [bucket(9)] },
          ],
        },
        2,
      ),
    ]);

  it("passes a reallocation that lists the reported conditions biggest first", async () => {
    const [r] = rateOrder(await decodeVrlsCapture(round([3, 2, 1]), KEY), RA, 300);
    expect(r?.allocationSerial).toBe(2);
    expect(r?.orderByRouter[0]?.rates).toEqual([650_000, 640_000, 0]);
    expect(r?.inversions).toEqual([]);
  });

  it("names each condition placed after one with a lower reported rate (smallest first)", async () => {
    const [r] = rateOrder(await decodeVrlsCapture(round([1, 2, 3]), KEY), RA, 300);
    expect(r?.inversions.map((i) => [i.before, i.after])).toEqual([
      ["src+dst#1/32", "src+dst#2/32"],
      ["src+dst#2/32", "src+dst#3/32"],
    ]);
  });
});
