import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { analyzeCapture, analyzeStream, senderOnControllerClock } from "../lib/traffic/analyzer.ts";
import { renderTimelineSvg } from "../lib/traffic/chart.ts";
import { PcapReader, writePcap } from "../lib/traffic/pcap-reader.ts";
import {
  decodeStreamHeader,
  encodeStreamHeader,
  STREAM_HEADER_LENGTH,
} from "../lib/traffic/stream-header.ts";
import { StreamTally } from "../lib/traffic/stream-tally.ts";
import { longestGapsIn } from "../suites/vrls/traffic.ts";

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

  it("a stream that dies mid-run counts as interrupted until the end of the run", async () => {
    // 1000 pps for 4 s (seq 0..3999); the wire carries seq 0..1499 with one 30 ms gap at
    // 500, then nothing: the stream died at 1.5 s and never came back.
    const records: { tsMs: number; data: Uint8Array }[] = [];
    for (let seq = 0; seq < 1500; seq++) {
      if (seq >= 500 && seq < 530) continue;
      records.push({ tsMs: T0 + seq + 0.2, data: frame(1, 7, seq, T0 + seq) });
    }
    const capture = await analyzeCapture(new PcapReader(toChunks(writePcap(records, { nanosecond: true }))));
    const wire = capture.streams[0]!;
    // The tally alone knows only the gap between two arrivals.
    expect(wire.longestInterruption?.ms).toBeCloseTo(31, 3);
    const sender = { streamId: 7, sent: 4000, firstSendMs: T0, lastSendMs: T0 + 3999 };
    const result = analyzeStream({ sender, wire });
    expect(result.longestInterruption).toEqual({
      startMs: T0 + 1499.2,
      endMs: T0 + 3999,
      ms: expect.closeTo(2499.8, 3),
      lastSeqBefore: 1499,
      firstSeqAfter: -1,
      untilEnd: true,
    });
    expect(result.lostRanges).toEqual([
      [500, 529],
      [1500, 3999],
    ]);
    // An explicit end of the run (e.g. the last send of all streams) moves the tail's end.
    expect(analyzeStream({ sender, wire, endMs: T0 + 5000 }).longestInterruption?.ms).toBeCloseTo(3500.8, 3);
    // A stream that resumed keeps its longest inner gap (its tail is shorter).
    const healthy = analyzeStream({ sender: { ...sender, sent: 1500, lastSendMs: T0 + 1499 }, wire });
    expect(healthy.longestInterruption).toMatchObject({ lastSeqBefore: 499, firstSeqAfter: 530 });
    expect(healthy.longestInterruption?.untilEnd).toBeUndefined();
    // A stream of which nothing arrived was interrupted for the whole run.
    expect(analyzeStream({ sender }).longestInterruption).toMatchObject({ ms: 3999, untilEnd: true });
  });

  it("far-side gaps around an event count a stream's silent tail (longestGapsIn)", async () => {
    // Streams 1 and 2 at 1000 pps from T0 to T0 + 2000; stream 2 dies at T0 + 800.
    const records: { tsMs: number; data: Uint8Array }[] = [];
    for (let seq = 0; seq < 2000; seq++) {
      records.push({ tsMs: T0 + seq + 0.1, data: frame(1, 1, seq, T0 + seq) });
      if (seq < 800) records.push({ tsMs: T0 + seq + 0.2, data: frame(1, 2, seq, T0 + seq) });
    }
    const dir = await mkdtemp(join(tmpdir(), "tandem-gaps-"));
    try {
      const path = join(dir, "far.pcap");
      await writeFile(path, writePcap(records, { nanosecond: true }));
      const ends = new Map([
        [1, T0 + 1999],
        [2, T0 + 1999],
      ]);
      const gaps = await longestGapsIn(path, [1, 2], T0 + 500, T0 + 2050, ends);
      expect(gaps.find((g) => g.stream === 1)?.ms).toBeCloseTo(1, 3);
      expect(gaps.find((g) => g.stream === 2)).toEqual({ stream: 2, ms: 1199.8, fromMs: T0 + 799.2 });
      // Without the senders' ends the window's end counts.
      const toWindowEnd = await longestGapsIn(path, [1, 2], T0 + 500, T0 + 2050);
      expect(toWindowEnd.find((g) => g.stream === 2)?.ms).toBeCloseTo(1250.8, 3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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

describe("clock offsets of a physical lab (issue 14)", () => {
  it("moves capture and send timestamps to the controller's clock before latencies and interruptions", async () => {
    // The sender's clock runs 40 ms ahead of the controller, the capturing host's 15 ms behind:
    // each datagram really takes 2 ms; stream 5 stops at seq 49, the run ends at seq 99's send time.
    const senderOffset = 40;
    const captureOffset = -15;
    const records = Array.from({ length: 50 }, (_, seq) => ({
      tsMs: T0 + seq * 10 + 2 + captureOffset,
      data: frame(1, 5, seq, T0 + seq * 10 + senderOffset),
    }));
    const pcap = () => new PcapReader(toChunks(writePcap(records, { nanosecond: true })));
    const naive = (await analyzeCapture(pcap())).streams[0]!;
    expect(naive.latencyMs?.min).toBeCloseTo(2 + captureOffset - senderOffset, 3); // -53 ms: impossible
    const corrected = (
      await analyzeCapture(pcap(), {
        clocks: { captureOffsetMs: captureOffset, senderOffsetMs: () => senderOffset },
      })
    ).streams[0]!;
    expect(corrected.latencyMs).toMatchObject({ min: expect.closeTo(2, 3), max: expect.closeTo(2, 3) });
    const sender = senderOnControllerClock(
      { streamId: 5, sent: 100, firstSendMs: T0 + senderOffset, lastSendMs: T0 + 990 + senderOffset },
      senderOffset,
    );
    const result = analyzeStream({ sender, wire: corrected });
    // Last arrival at T0 + 492 (controller clock), the run ends at T0 + 990.
    expect(result.longestInterruption).toMatchObject({ ms: expect.closeTo(498, 3), untilEnd: true });
  });
});
