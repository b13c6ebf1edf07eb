import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { analyzeCapture, analyzeStream } from "../lib/traffic/analyzer.ts";
import { renderTimelineSvg } from "../lib/traffic/chart.ts";
import { PcapReader, writePcap } from "../lib/traffic/pcap-reader.ts";
import {
  decodeStreamHeader,
  encodeStreamHeader,
  STREAM_HEADER_LENGTH,
} from "../lib/traffic/stream-header.ts";
import { StreamTally } from "../lib/traffic/stream-tally.ts";

const T0 = 1_700_000_000_000;

function frame(srcMac: number, streamId: number, seq: number, sentMs: number): Uint8Array {
  const data = new Uint8Array(14 + 20 + 8 + 22);
  data.set([2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0, srcMac, 0x08, 0x00], 0);
  data.set([0x45, 0, 0, 50, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 1, 1], 14);
  data.set([0x0f, 0xa0, 0x13, 0x88, 0, 30, 0, 0], 34);
  encodeStreamHeader({ streamId, seq, sentMs }, data, 42);
  return data;
}

describe("stream header", () => {
  it("round-trips any stream id, sequence number and microsecond timestamp", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffffffff }),
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        (streamId, seq, micros) => {
          const buf = new Uint8Array(STREAM_HEADER_LENGTH + 3);
          encodeStreamHeader({ streamId, seq, sentMs: micros / 1000 }, buf, 3);
          const decoded = decodeStreamHeader(buf, 3);
          expect(decoded.ok).toBe(true);
          if (!decoded.ok) return;
          expect(decoded.value.streamId).toBe(streamId);
          expect(decoded.value.seq).toBe(seq);
          expect(Math.abs(decoded.value.sentMs - micros / 1000)).toBeLessThan(0.001);
        },
      ),
    );
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: -2, max: 45 }), (bytes, offset) => {
        const r = decodeStreamHeader(bytes, offset);
        if (!r.ok) expect(r.error.reason).toBeTruthy();
      }),
    );
    expect(decodeStreamHeader(new Uint8Array(20))).toEqual({
      ok: false,
      error: { offset: 0, reason: "bad magic" },
    });
  });
});

describe("stream tally", () => {
  it("counts duplicates, reordering, missing ranges and the longest gap", () => {
    const t = new StreamTally(1);
    const arrivals: [number, number][] = [
      [0, 0],
      [1, 1],
      [3, 2],
      [2, 3], // reordered
      [3, 4], // duplicate
      [7, 504], // gap of 500 ms, 4..6 missing
      [8, 505],
    ];
    for (const [seq, at] of arrivals) t.observe(seq, T0 + at, T0 + at - 0.1);
    const s = t.summary();
    expect(s).toMatchObject({ packets: 7, unique: 6, duplicates: 1, reordered: 1, highestSeq: 8 });
    expect(s.missingRanges).toEqual([[4, 6]]);
    expect(s.longestInterruption).toEqual({
      startMs: T0 + 4,
      endMs: T0 + 504,
      ms: 500,
      lastSeqBefore: 3,
      firstSeqAfter: 7,
    });
    expect(s.latencyMs?.mean).toBeCloseTo(0.1, 3);
    expect(s.timeline.series.received?.reduce((a, b) => a + b, 0)).toBe(7);
    expect(s.timeline.series.received).toHaveLength(51);
  });

  it("agrees with a naive model on random arrival orders", () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 300 }), { maxLength: 400 }), (seqs) => {
        const t = new StreamTally(1);
        seqs.forEach((seq, i) => {
          t.observe(seq, T0 + i, Number.NaN);
        });
        const unique = new Set(seqs);
        let max = -1;
        let reordered = 0;
        const seen = new Set<number>();
        for (const s of seqs) {
          if (!seen.has(s) && s < max) reordered++;
          seen.add(s);
          max = Math.max(max, s);
        }
        const missing: number[] = [];
        for (let s = 0; s <= max; s++) if (!unique.has(s)) missing.push(s);
        const summary = t.summary();
        expect(summary.unique).toBe(unique.size);
        expect(summary.duplicates).toBe(seqs.length - unique.size);
        expect(summary.reordered).toBe(reordered);
        expect(
          summary.missingRanges.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, k) => a + k)),
        ).toEqual(missing);
      }),
    );
  });
});

describe("analyzer", () => {
  it("attributes frames to forwarding MACs, counts wire duplicates and loss from a capture", async () => {
    const records: { tsMs: number; data: Uint8Array }[] = [];
    // 100 packets, routers 0x01 and 0x02 alternate every 10; seq 50 forwarded by both; seq 90..99 lost.
    for (let seq = 0; seq < 90; seq++) {
      const mac = Math.floor(seq / 10) % 2 === 0 ? 1 : 2;
      records.push({ tsMs: T0 + seq, data: frame(mac, 9, seq, T0 + seq - 0.05) });
      if (seq === 50) records.push({ tsMs: T0 + seq + 0.01, data: frame(2, 9, seq, T0 + seq - 0.05) });
    }
    records.push({ tsMs: T0 + 95, data: new Uint8Array([1, 2, 3]) }); // malformed: counted, dropped
    const capture = await analyzeCapture(new PcapReader(toChunks(writePcap(records, { nanosecond: true }))));
    expect(capture).toMatchObject({ frames: 92, untagged: 1, problem: undefined });
    const wire = capture.streams[0]!;
    const result = analyzeStream({ sender: { streamId: 9, sent: 100 }, wire });
    expect(result).toMatchObject({
      sent: 100,
      received: 90,
      lost: 10,
      lostRanges: [[90, 99]],
      duplicated: { receiver: 0, wire: 1 },
      reordered: 0,
      attribution: { "02:00:00:00:00:01": 50, "02:00:00:00:00:02": 41 },
      wireDuplicatesByMac: { "02:00:00:00:00:02": 1 },
    });
    expect(result.latencyMs?.max).toBeCloseTo(0.06, 3);
    expect(Object.keys(result.timeline.series).sort()).toEqual(["02:00:00:00:00:01", "02:00:00:00:00:02"]);
  });

  it("renders a timeline with event markers to SVG", async () => {
    const t = new StreamTally(1);
    for (let i = 0; i < 1000; i++) t.observe(i, T0 + i, Number.NaN, i < 500 ? "r1" : "r2");
    const svg = await renderTimelineSvg(t.timeline(), {
      title: "test chart",
      events: [{ atMs: T0 + 500, label: "master killed" }],
    });
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("master killed");
    expect(svg).toContain("test chart");
    expect(svg).toContain("r1");
    expect(svg).toContain("r2");
  });
});

async function* toChunks(data: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += 100) yield data.subarray(i, i + 100);
}
