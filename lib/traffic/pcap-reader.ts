import { createReadStream } from "node:fs";

/**
 * Streaming reader for classic libpcap files (what `tcpdump -w` writes). Records are
 * yielded one by one from the incoming chunks, so a multi-gigabyte capture never sits in
 * memory. Hand-written because the npm pcap parsers either load the file whole or
 * ignore the nanosecond magic; the format is 24 + 16 bytes of headers.
 *
 * Magic numbers: 0xa1b2c3d4 (microsecond timestamps) and 0xa1b23c4d (nanosecond), each
 * in either byte order.
 */
export interface PcapFileHeader {
  nanosecond: boolean;
  littleEndian: boolean;
  versionMajor: number;
  versionMinor: number;
  snapLength: number;
  linkType: number;
}

export interface PcapRecord {
  /** Capture time in fractional milliseconds since the epoch. */
  tsMs: number;
  caplen: number;
  origlen: number;
  data: Uint8Array;
}

export interface PcapProblem {
  offset: number;
  reason: string;
}

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
/** Larger than any sane snap length; a bigger caplen means the file is corrupt. */
const MAX_CAPLEN = 262_144 * 4;

/**
 * Reads a pcap stream. Iterate it with `for await`; when the input ends inside a record
 * or the file header is invalid, iteration stops and `problem` says where and why (a
 * capture cut short by a killed tcpdump keeps its complete records readable).
 */
export class PcapReader implements AsyncIterable<PcapRecord> {
  header: PcapFileHeader | undefined;
  problem: PcapProblem | undefined;
  records = 0;
  private started = false;

  constructor(private readonly source: AsyncIterable<Uint8Array>) {}

  static fromFile(path: string): PcapReader {
    return new PcapReader(createReadStream(path, { highWaterMark: 1 << 20 }));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<PcapRecord> {
    if (this.started) throw new Error("PcapReader can be iterated only once");
    this.started = true;
    let buffer = new Uint8Array(0);
    let position = 0; // offset in `buffer` of the next unread byte
    let consumed = 0; // file offset of buffer[0]
    let header: PcapFileHeader | undefined;
    let view = new DataView(buffer.buffer);
    for await (const chunk of this.source) {
      const rest = buffer.subarray(position);
      const merged = new Uint8Array(rest.length + chunk.length);
      merged.set(rest, 0);
      merged.set(chunk, rest.length);
      consumed += position;
      buffer = merged;
      position = 0;
      view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      if (!header) {
        if (buffer.length < 24) continue;
        const parsed = parseFileHeader(view);
        if ("reason" in parsed) {
          this.problem = { offset: 0, reason: parsed.reason };
          return;
        }
        header = parsed;
        this.header = header;
        position = 24;
      }
      const le = header.littleEndian;
      const divisor = header.nanosecond ? 1e6 : 1e3;
      while (buffer.length - position >= 16) {
        const seconds = view.getUint32(position, le);
        const fraction = view.getUint32(position + 4, le);
        const caplen = view.getUint32(position + 8, le);
        const origlen = view.getUint32(position + 12, le);
        if (caplen > MAX_CAPLEN || caplen > Math.max(header.snapLength, 65_535)) {
          this.problem = {
            offset: consumed + position,
            reason: `record caplen ${caplen} exceeds snap length`,
          };
          return;
        }
        if (buffer.length - position - 16 < caplen) break;
        const data = buffer.subarray(position + 16, position + 16 + caplen);
        position += 16 + caplen;
        this.records++;
        yield { tsMs: seconds * 1000 + fraction / divisor, caplen, origlen, data };
      }
    }
    if (!header) {
      this.problem = { offset: 0, reason: "file shorter than the 24-byte pcap header" };
    } else if (buffer.length - position > 0) {
      this.problem = {
        offset: consumed + position,
        reason: `truncated record: ${buffer.length - position} trailing bytes`,
      };
    }
  }
}

function parseFileHeader(view: DataView): PcapFileHeader | { reason: string } {
  const big = view.getUint32(0, false);
  const little = view.getUint32(0, true);
  let littleEndian: boolean;
  let nanosecond: boolean;
  if (big === MAGIC_US || big === MAGIC_NS) {
    littleEndian = false;
    nanosecond = big === MAGIC_NS;
  } else if (little === MAGIC_US || little === MAGIC_NS) {
    littleEndian = true;
    nanosecond = little === MAGIC_NS;
  } else {
    return { reason: `not a pcap file (magic 0x${big.toString(16).padStart(8, "0")})` };
  }
  return {
    nanosecond,
    littleEndian,
    versionMajor: view.getUint16(4, littleEndian),
    versionMinor: view.getUint16(6, littleEndian),
    snapLength: view.getUint32(16, littleEndian),
    linkType: view.getUint32(20, littleEndian) & 0x0fffffff,
  };
}

/** Builds a pcap file in memory (tests and fixtures). */
export function writePcap(
  records: readonly { tsMs: number; data: Uint8Array; origlen?: number }[],
  options: { nanosecond?: boolean; littleEndian?: boolean; linkType?: number; snapLength?: number } = {},
): Buffer {
  const le = options.littleEndian ?? true;
  const ns = options.nanosecond ?? false;
  const size = 24 + records.reduce((sum, r) => sum + 16 + r.data.length, 0);
  const out = Buffer.alloc(size);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, ns ? MAGIC_NS : MAGIC_US, le);
  view.setUint16(4, 2, le);
  view.setUint16(6, 4, le);
  view.setUint32(16, options.snapLength ?? 65_535, le);
  view.setUint32(20, options.linkType ?? 1, le);
  let offset = 24;
  for (const r of records) {
    const seconds = Math.floor(r.tsMs / 1000);
    const fraction = Math.round((r.tsMs - seconds * 1000) * (ns ? 1e6 : 1e3));
    view.setUint32(offset, seconds, le);
    view.setUint32(offset + 4, fraction, le);
    view.setUint32(offset + 8, r.data.length, le);
    view.setUint32(offset + 12, r.origlen ?? r.data.length, le);
    out.set(r.data, offset + 16);
    offset += 16 + r.data.length;
  }
  return out;
}
