import { describe, expect, it } from "vitest";
import { goodput, mbpsByMac } from "../lib/experiments/sharing-run.ts";
import { analyzeCapture } from "../lib/traffic/analyzer.ts";
import { PcapReader, writePcap } from "../lib/traffic/pcap-reader.ts";
import { encodeStreamHeader } from "../lib/traffic/stream-header.ts";

// The sharing experiment's goodput (lib/experiments/sharing-run.ts) on a far-side capture
// where a second member forwards some datagrams again: each datagram counts once.
const T0 = 1_700_000_000_000;
const FRAME = 1000;
const A = "02:00:00:00:64:02";
const B = "02:00:00:00:64:03";

function frame(srcMacLastByte: number, streamId: number, seq: number, sentMs: number): Uint8Array {
  const data = new Uint8Array(FRAME);
  data.set([2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0x64, srcMacLastByte, 0x08, 0x00], 0);
  const ipLength = FRAME - 14;
  data.set(
    [0x45, 0, ipLength >> 8, ipLength & 0xff, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 1, 11, 198, 18, 100, 10],
    14,
  );
  const udpLength = ipLength - 20;
  data.set([0x18, 0x9c, 0x18, 0x9c, udpLength >> 8, udpLength & 0xff, 0, 0], 34);
  encodeStreamHeader({ streamId, seq, sentMs }, data, 42);
  return data;
}

describe("sharing goodput", () => {
  it("counts each datagram once: duplicated datagrams add nothing", async () => {
    const records: { tsMs: number; data: Uint8Array }[] = [];
    // Two streams, 100 datagrams each, one every 10 ms from T0 (1 s), forwarded by member A.
    for (let seq = 0; seq < 100; seq++)
      for (const stream of [1, 2])
        records.push({ tsMs: T0 + seq * 10 + stream, data: frame(2, stream, seq, T0) });
    // Member B forwards stream 1's datagrams 40..59 a second time (a hand-off gone wrong).
    for (let seq = 40; seq < 60; seq++) records.push({ tsMs: T0 + seq * 10 + 5, data: frame(3, 1, seq, T0) });
    // ... and stream 2's datagram 0 again inside the window, its first copy having come before it.
    records.push({ tsMs: T0 - 30, data: frame(2, 2, 1000, T0) });
    records.push({ tsMs: T0 + 500, data: frame(3, 2, 1000, T0) });
    records.sort((x, y) => x.tsMs - y.tsMs);
    const analysis = await analyzeCapture(
      new PcapReader(
        (async function* () {
          yield writePcap(records, { nanosecond: true });
        })(),
      ),
      { binMs: 50 },
    );
    const from = T0;
    const to = T0 + 1000;
    // 200 distinct datagrams of 1000 bytes in 1 s: 1.6 Mbit/s.
    const g = goodput(analysis, from, to, FRAME, [A, B]);
    expect(g.total).toBe(1.6);
    // What each member carried still counts every copy it forwarded.
    expect(g.byMac).toEqual({ [A]: 1.6, [B]: 0.17 });
    // The forwarded total (every copy) is more than the goodput by the 21 second copies.
    const forwarded = Object.values(mbpsByMac(analysis, from, to, FRAME, [A, B])).reduce((x, y) => x + y, 0);
    expect(forwarded).toBeCloseTo(1.77, 5);
  });
});
