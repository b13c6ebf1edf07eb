import {
  decodeStreamHeader,
  encodeStreamHeader,
  STREAM_HEADER_LENGTH,
  type StreamHeader,
} from "./stream-header.ts";

/**
 * The byte stream of one generated TCP connection: a 16-byte hello naming the
 * connection, then fixed-size records, each the 20-byte stream header (magic, stream id
 * = connection index, record sequence number, send time; see stream-header.ts) padded
 * with zeros to the record size. The receiver checks that every record's sequence number
 * follows the previous one, so any loss, duplication or corruption of the byte stream
 * (which TCP must never let through) shows as a discontinuity.
 *
 *   hello   offset  size  field
 *           0       4     magic 0x54444331 ("TDC1"), big-endian
 *           4       4     run id (u32): one client run, so several clients can share a sink
 *           8       4     connection index within the run (u32)
 *           12      2     record size in bytes (u16, >= 20)
 *           14      1     kind: 1 = long-lived stream, 2 = short connection
 *           15      1     reserved, 0
 *
 * A short connection's sender half-closes after its records; the sink answers with an
 * 8-byte receipt (magic 0x54444131 "TDA1", records received u32) and closes.
 */
export const TCP_HELLO_MAGIC = 0x54444331;
export const TCP_RECEIPT_MAGIC = 0x54444131;
export const TCP_HELLO_LENGTH = 16;
export const TCP_RECEIPT_LENGTH = 8;
export const MIN_RECORD_BYTES = STREAM_HEADER_LENGTH;
export const MAX_RECORD_BYTES = 65_535;

export type ConnectionKind = "long" | "short";

export interface TcpHello {
  runId: number;
  connIndex: number;
  recordBytes: number;
  kind: ConnectionKind;
}

export function encodeHello(hello: TcpHello): Buffer {
  const out = Buffer.alloc(TCP_HELLO_LENGTH);
  out.writeUInt32BE(TCP_HELLO_MAGIC, 0);
  out.writeUInt32BE(hello.runId >>> 0, 4);
  out.writeUInt32BE(hello.connIndex >>> 0, 8);
  out.writeUInt16BE(hello.recordBytes, 12);
  out.writeUInt8(hello.kind === "long" ? 1 : 2, 14);
  return out;
}

export function encodeReceipt(records: number): Buffer {
  const out = Buffer.alloc(TCP_RECEIPT_LENGTH);
  out.writeUInt32BE(TCP_RECEIPT_MAGIC, 0);
  out.writeUInt32BE(records >>> 0, 4);
  return out;
}

/** Decodes a receipt; undefined when the bytes are not one. */
export function decodeReceipt(data: Buffer): number | undefined {
  if (data.length !== TCP_RECEIPT_LENGTH || data.readUInt32BE(0) !== TCP_RECEIPT_MAGIC) return undefined;
  return data.readUInt32BE(4);
}

/** `count` consecutive records starting at `firstSeq`, stamped with `sentMs`, in one buffer. */
export function encodeRecords(
  connIndex: number,
  recordBytes: number,
  firstSeq: number,
  count: number,
  sentMs: number,
): Buffer {
  const out = Buffer.alloc(recordBytes * count);
  for (let i = 0; i < count; i++) {
    encodeStreamHeader({ streamId: connIndex, seq: firstSeq + i, sentMs }, out, i * recordBytes);
  }
  return out;
}

export function checkRecordBytes(recordBytes: number, field = "recordBytes"): number {
  if (!Number.isInteger(recordBytes) || recordBytes < MIN_RECORD_BYTES || recordBytes > MAX_RECORD_BYTES) {
    throw new Error(
      `${field}: must be an integer in ${MIN_RECORD_BYTES}..${MAX_RECORD_BYTES}, got ${JSON.stringify(recordBytes)}`,
    );
  }
  return recordBytes;
}

export interface RecordSink {
  hello(hello: TcpHello): void;
  record(header: StreamHeader): void;
  /** The stream is not ours or is corrupt; parsing stops for this connection. */
  malformed(reason: string): void;
}

/** Incremental parser of one connection's byte stream; never throws, stops at the first malformed byte. */
export class TcpRecordParser {
  private pending: Buffer = Buffer.alloc(0);
  private helloSeen: TcpHello | undefined;
  private failed = false;

  constructor(private readonly sink: RecordSink) {}

  get hello(): TcpHello | undefined {
    return this.helloSeen;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let offset = 0;
    if (!this.helloSeen) {
      if (data.length < TCP_HELLO_LENGTH) {
        this.pending = Buffer.from(data);
        return;
      }
      const hello = decodeHello(data);
      if (typeof hello === "string") {
        this.fail(hello);
        return;
      }
      this.helloSeen = hello;
      this.sink.hello(hello);
      offset = TCP_HELLO_LENGTH;
    }
    const size = this.helloSeen.recordBytes;
    const connIndex = this.helloSeen.connIndex;
    while (data.length - offset >= size) {
      const decoded = decodeStreamHeader(data, offset);
      if (!decoded.ok) {
        this.fail(`record at stream byte offset +${offset}: ${decoded.error.reason}`);
        return;
      }
      if (decoded.value.streamId !== connIndex) {
        this.fail(`record names connection ${decoded.value.streamId}, hello said ${connIndex}`);
        return;
      }
      this.sink.record(decoded.value);
      offset += size;
    }
    data = data.subarray(offset);
    // Copy the tail so the (possibly large) chunk it came from can be freed.
    this.pending = data.length > 0 ? Buffer.from(data) : Buffer.alloc(0);
  }

  /** Bytes received after the last whole record (a cut-off record at close). */
  get trailingBytes(): number {
    return this.pending.length;
  }

  private fail(reason: string): void {
    this.failed = true;
    this.pending = Buffer.alloc(0);
    this.sink.malformed(reason);
  }
}

function decodeHello(data: Buffer): TcpHello | string {
  if (data.readUInt32BE(0) !== TCP_HELLO_MAGIC) return "no hello (bad magic)";
  const recordBytes = data.readUInt16BE(12);
  if (recordBytes < MIN_RECORD_BYTES) return `hello: record size ${recordBytes} < ${MIN_RECORD_BYTES}`;
  const kind = data.readUInt8(14);
  if (kind !== 1 && kind !== 2) return `hello: unknown kind ${kind}`;
  return {
    runId: data.readUInt32BE(4),
    connIndex: data.readUInt32BE(8),
    recordBytes,
    kind: kind === 1 ? "long" : "short",
  };
}
