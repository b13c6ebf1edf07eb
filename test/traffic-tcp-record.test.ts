import { describe, expect, it } from "vitest";
import type { StreamHeader } from "../lib/traffic/stream-header.ts";
import {
  decodeReceipt,
  encodeHello,
  encodeReceipt,
  encodeRecords,
  type TcpHello,
  TcpRecordParser,
} from "../lib/traffic/tcp-record.ts";
import { TcpSink } from "../lib/traffic/tcp-sink.ts";
import { compareTcpStreams, TcpLongStreams, TcpShortConnections } from "../lib/traffic/tcp-streams.ts";

function collect() {
  const seen = { hellos: [] as TcpHello[], records: [] as StreamHeader[], malformed: [] as string[] };
  const parser = new TcpRecordParser({
    hello: (h) => seen.hellos.push(h),
    record: (r) => seen.records.push(r),
    malformed: (reason) => seen.malformed.push(reason),
  });
  return { parser, seen };
}

describe("TCP record stream codec", () => {
  it("parses a hello and records split at every possible byte boundary", () => {
    const hello: TcpHello = { runId: 0xdeadbeef, connIndex: 7, recordBytes: 48, kind: "long" };
    const stream = Buffer.concat([encodeHello(hello), encodeRecords(7, 48, 0, 5, 1_700_000_000_123.5)]);
    for (let cut = 1; cut < stream.length; cut++) {
      const { parser, seen } = collect();
      parser.push(stream.subarray(0, cut));
      parser.push(stream.subarray(cut));
      expect(seen.hellos).toEqual([hello]);
      expect(seen.records.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
      expect(
        seen.records.every((r) => r.streamId === 7 && Math.abs(r.sentMs - 1_700_000_000_123.5) < 1e-3),
      ).toBe(true);
      expect(seen.malformed).toEqual([]);
      expect(parser.trailingBytes).toBe(0);
    }
  });

  it("keeps a cut-off record as trailing bytes", () => {
    const { parser, seen } = collect();
    const stream = Buffer.concat([
      encodeHello({ runId: 1, connIndex: 0, recordBytes: 20, kind: "short" }),
      encodeRecords(0, 20, 0, 2, 1000),
    ]);
    parser.push(stream.subarray(0, stream.length - 3));
    expect(seen.records).toHaveLength(1);
    expect(parser.trailingBytes).toBe(17);
  });

  it("reports foreign bytes, a bad record and a record of another connection, and stops", () => {
    const bad = collect();
    bad.parser.push(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    expect(bad.seen.malformed).toEqual(["no hello (bad magic)"]);
    bad.parser.push(Buffer.alloc(100));
    expect(bad.seen.malformed).toHaveLength(1);

    const corrupt = collect();
    const records = encodeRecords(3, 32, 0, 3, 1000);
    records[32] = 0; // second record's magic
    corrupt.parser.push(
      Buffer.concat([encodeHello({ runId: 1, connIndex: 3, recordBytes: 32, kind: "long" }), records]),
    );
    expect(corrupt.seen.records).toHaveLength(1);
    expect(corrupt.seen.malformed).toEqual(["record at stream byte offset +48: bad magic"]);

    const other = collect();
    other.parser.push(
      Buffer.concat([
        encodeHello({ runId: 1, connIndex: 3, recordBytes: 20, kind: "long" }),
        encodeRecords(4, 20, 0, 1, 1),
      ]),
    );
    expect(other.seen.malformed).toEqual(["record names connection 4, hello said 3"]);

    const small = collect();
    const hello = encodeHello({ runId: 1, connIndex: 3, recordBytes: 20, kind: "long" });
    hello.writeUInt16BE(8, 12);
    small.parser.push(hello);
    expect(small.seen.malformed).toEqual(["hello: record size 8 < 20"]);
  });

  it("round-trips receipts and rejects anything else", () => {
    expect(decodeReceipt(encodeReceipt(12345))).toBe(12345);
    expect(decodeReceipt(Buffer.alloc(8))).toBeUndefined();
    expect(decodeReceipt(encodeReceipt(1).subarray(0, 7))).toBeUndefined();
  });

  it("rejects bad options naming the field", () => {
    expect(
      () => new TcpLongStreams({ dstIp: "127.0.0.1", ports: [], connections: 1, recordsPerSecond: 1 }),
    ).toThrow(/ports: give at least one port/);
    expect(
      () =>
        new TcpLongStreams({
          dstIp: "127.0.0.1",
          ports: [1],
          connections: 1,
          recordsPerSecond: 1,
          recordBytes: 10,
        }),
    ).toThrow(/recordBytes: must be an integer in 20\.\.65535, got 10/);
    expect(() => new TcpShortConnections({ dstIp: "127.0.0.1", ports: [1], ratePerSecond: 10 })).toThrow(
      /give count or durationMs/,
    );
  });
});

// Loopback only (allowed in the machine's namespace): the sink and both clients end to end.
describe("TCP sink and clients over loopback", () => {
  it("long streams arrive exactly; short connections complete and count refused connects", async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const sink = await TcpSink.start({ ports: [port], host: "127.0.0.1" });
    try {
      const long = new TcpLongStreams({
        dstIp: "127.0.0.1",
        ports: [port],
        connections: 50,
        recordsPerSecond: 100,
      });
      long.start();
      await new Promise((r) => setTimeout(r, 700));
      const short = new TcpShortConnections({
        dstIp: "127.0.0.1",
        ports: [port, port + 1], // nothing listens on port + 1: refused
        ratePerSecond: 200,
        count: 40,
        recordsPerConnection: 3,
      });
      short.start();
      const shortReport = await short.finished;
      const client = await long.stop();
      await new Promise((r) => setTimeout(r, 100));
      const sinkReport = sink.report({ connections: true });
      const comparison = compareTcpStreams(client, sinkReport);
      expect(client.totals).toMatchObject({ established: 50, closed: 50, resets: 0, connectFailures: 0 });
      expect(client.totals.recordsWritten).toBeGreaterThan(50 * 50);
      expect(comparison).toMatchObject({ connections: 50, exact: 50, lostRecords: 0, discontinuities: 0 });
      expect(shortReport).toMatchObject({ attempted: 40, completed: 20, connectFailures: 20, incomplete: 0 });
      expect(shortReport.connectFailuresByCode).toEqual({ ECONNREFUSED: 20 });
      expect(sinkReport.totals).toMatchObject({ short: { connections: 20, receipts: 20 }, resets: 0 });
      expect(sinkReport.totals.records).toBe(client.totals.recordsWritten + 20 * 3);
      const timeline = sink.timeline();
      expect(timeline.series.records?.reduce((a, b) => a + b, 0)).toBe(sinkReport.totals.records);
    } finally {
      await sink.stop();
    }
  });
});
