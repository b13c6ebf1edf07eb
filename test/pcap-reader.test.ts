import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { decodeTaggedFrame } from "../lib/traffic/frame.ts";
import { PcapReader, type PcapRecord, writePcap } from "../lib/traffic/pcap-reader.ts";

const dir = mkdtempSync(join(tmpdir(), "tandem-pcap-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function* chunked(data: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let offset = 0;
  let i = 0;
  while (offset < data.length) {
    const size = Math.max(1, sizes[i++ % sizes.length] ?? 1);
    yield data.subarray(offset, offset + size);
    offset += size;
  }
}

async function readAll(reader: PcapReader): Promise<PcapRecord[]> {
  const out: PcapRecord[] = [];
  for await (const r of reader) out.push({ ...r, data: Uint8Array.from(r.data) });
  return out;
}

/** Writes a pcap with Debian's scapy: an independent writer for both magics and byte orders. */
function scapyPcap(path: string, nano: boolean, endianness: "<" | ">"): void {
  const script = `
from scapy.all import Ether, IP, UDP, Raw
from scapy.utils import RawPcapWriter
import struct
w = RawPcapWriter(${JSON.stringify(path)}, linktype=1, nano=${nano ? "True" : "False"}, endianness=${JSON.stringify(endianness)})
w._write_header(None)
for seq in range(5):
    hdr = struct.pack(">IIIII", 0x54444d31, 7, seq, 1700000000 + seq, 123456789)
    pkt = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")/IP(src="198.18.0.1", dst="198.18.1.1")/UDP(sport=4000, dport=5000)/Raw(hdr + b"x" * 22)
    w._write_packet(bytes(pkt), sec=1700000000 + seq, usec=(123456789 if ${nano ? "True" : "False"} else 123456))
w.close()
`;
  execFileSync("/usr/bin/python3", ["-c", script]);
}

describe("pcap reader", () => {
  for (const nano of [false, true]) {
    for (const endianness of ["<", ">"] as const) {
      it(`reads scapy's ${nano ? "nanosecond" : "microsecond"} ${endianness === "<" ? "little" : "big"}-endian file`, async () => {
        const path = join(dir, `s-${nano}-${endianness === "<" ? "le" : "be"}.pcap`);
        scapyPcap(path, nano, endianness);
        const reader = PcapReader.fromFile(path);
        const records = await readAll(reader);
        expect(reader.problem).toBeUndefined();
        expect(reader.header).toMatchObject({
          nanosecond: nano,
          littleEndian: endianness === "<",
          linkType: 1,
        });
        expect(records).toHaveLength(5);
        records.forEach((r, seq) => {
          expect(r.tsMs).toBeCloseTo((1700000000 + seq) * 1000 + (nano ? 123.456789 : 123.456), 4);
          const frame = decodeTaggedFrame(r.data);
          expect(frame.ok).toBe(true);
          if (!frame.ok) return;
          expect(frame.value).toMatchObject({
            srcMac: "02:00:00:00:00:0a",
            srcIp: "198.18.0.1",
            dstIp: "198.18.1.1",
            srcPort: 4000,
            dstPort: 5000,
            header: { streamId: 7, seq },
          });
          expect(frame.value.header.sentMs).toBeCloseTo((1700000000 + seq) * 1000 + 123.456789, 4);
        });
      });
    }
  }

  it("yields the same records whatever the chunking", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 80 }), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 10 }),
        fc.boolean(),
        fc.boolean(),
        async (payloads, sizes, nanosecond, littleEndian) => {
          const input = payloads.map((data, i) => ({ tsMs: 1_700_000_000_000 + i * 1.5, data }));
          const file = writePcap(input, { nanosecond, littleEndian });
          const records = await readAll(new PcapReader(chunked(file, sizes)));
          expect(records.map((r) => Array.from(r.data))).toEqual(payloads.map((p) => Array.from(p)));
          records.forEach((r, i) => {
            expect(r.tsMs).toBeCloseTo(input[i]!.tsMs, 3);
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("stops cleanly at a truncated record and keeps the complete ones", async () => {
    const file = writePcap([
      { tsMs: 1000, data: new Uint8Array(40) },
      { tsMs: 2000, data: new Uint8Array(40) },
    ]);
    const cut = file.subarray(0, file.length - 10);
    const reader = new PcapReader(chunked(cut, [7, 33]));
    const records = await readAll(reader);
    expect(records).toHaveLength(1);
    expect(reader.problem).toEqual({ offset: 24 + 56, reason: "truncated record: 46 trailing bytes" });
  });

  it("rejects a file that is not a pcap, and a corrupt caplen, without throwing", async () => {
    const notPcap = new PcapReader(chunked(Buffer.from("this is not a pcap file at all, no"), [100]));
    expect(await readAll(notPcap)).toEqual([]);
    expect(notPcap.problem?.reason).toMatch(/not a pcap file \(magic 0x74686973\)/);

    const file = writePcap([{ tsMs: 1000, data: new Uint8Array(4) }]);
    file.writeUInt32LE(0x7fffffff, 24 + 8);
    const corrupt = new PcapReader(chunked(file, [1000]));
    expect(await readAll(corrupt)).toEqual([]);
    expect(corrupt.problem).toEqual({ offset: 24, reason: "record caplen 2147483647 exceeds snap length" });

    const empty = new PcapReader(chunked(new Uint8Array(10), [10]));
    expect(await readAll(empty)).toEqual([]);
    expect(empty.problem?.reason).toMatch(/shorter than the 24-byte/);
  });

  it("streams a large file without loading it whole", async () => {
    const path = join(dir, "big.pcap");
    const data = new Uint8Array(1400).fill(7);
    const file = writePcap(Array.from({ length: 20_000 }, (_, i) => ({ tsMs: i, data })));
    execFileSync("dd", ["of=" + path, "status=none"], { input: file });
    expect(readFileSync(path).length).toBe(file.length);
    const reader = PcapReader.fromFile(path);
    let count = 0;
    let bytes = 0;
    for await (const r of reader) {
      count++;
      bytes += r.caplen;
    }
    expect(count).toBe(20_000);
    expect(bytes).toBe(20_000 * 1400);
    expect(reader.problem).toBeUndefined();
  });
});
