/**
 * The identity header every generated datagram carries at the start of its UDP payload
 * (the way TRex's latency streams tag packets): the receiver and the capture analyzer
 * identify each packet by (stream id, sequence number) and measure latency from the
 * send timestamp. The native sender (native/pktgen) writes the same 20 bytes.
 *
 *   offset  size  field
 *   0       4     magic 0x54444d31 ("TDM1"), big-endian
 *   4       4     stream id (u32, big-endian)
 *   8       4     sequence number (u32, big-endian, first packet = 0)
 *   12      4     send time, seconds of CLOCK_REALTIME (u32)
 *   16      4     send time, nanoseconds within the second (u32)
 *
 * CLOCK_REALTIME is the clock tcpdump stamps captures with, so send and capture
 * timestamps of one machine are directly comparable.
 */
export const STREAM_MAGIC = 0x54444d31;
export const STREAM_HEADER_LENGTH = 20;
/** Bit offsets inside the transport header for nftables `@th,OFFSET,32` matches (UDP header is 8 bytes). */
export const NFT_TH_BITS = { magic: 64, streamId: 96, seq: 128 } as const;

export interface StreamHeader {
  streamId: number;
  seq: number;
  /** Send time in milliseconds since the epoch (CLOCK_REALTIME), fractional: a double keeps ~0.25 µs here. */
  sentMs: number;
}

export type DecodeResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { offset: number; reason: string } };

export function encodeStreamHeader(header: StreamHeader, target: Uint8Array, offset = 0): void {
  const view = new DataView(target.buffer, target.byteOffset + offset, STREAM_HEADER_LENGTH);
  view.setUint32(0, STREAM_MAGIC);
  view.setUint32(4, header.streamId >>> 0);
  stampView(view, header.seq, header.sentMs);
}

/** Writes only sequence number and send time into a prebuilt payload (the sender's hot path). */
export function stampStreamHeader(target: Buffer, seq: number, sentMs: number, offset = 0): void {
  const seconds = Math.floor(sentMs / 1000);
  const nanos = Math.min(999_999_999, Math.round((sentMs - seconds * 1000) * 1_000_000));
  target.writeUInt32BE(seq >>> 0, offset + 8);
  target.writeUInt32BE(seconds >>> 0, offset + 12);
  target.writeUInt32BE(nanos, offset + 16);
}

function stampView(view: DataView, seq: number, sentMs: number): void {
  const seconds = Math.floor(sentMs / 1000);
  const nanos = Math.min(999_999_999, Math.round((sentMs - seconds * 1000) * 1_000_000));
  view.setUint32(8, seq >>> 0);
  view.setUint32(12, seconds >>> 0);
  view.setUint32(16, nanos);
}

/** Decodes a header at `offset`; never throws. */
export function decodeStreamHeader(data: Uint8Array, offset = 0): DecodeResult<StreamHeader> {
  if (offset < 0 || data.length - offset < STREAM_HEADER_LENGTH) {
    return { ok: false, error: { offset, reason: `payload shorter than ${STREAM_HEADER_LENGTH} bytes` } };
  }
  const view = new DataView(data.buffer, data.byteOffset + offset, STREAM_HEADER_LENGTH);
  if (view.getUint32(0) !== STREAM_MAGIC) return { ok: false, error: { offset, reason: "bad magic" } };
  const nanos = view.getUint32(16);
  if (nanos >= 1_000_000_000)
    return { ok: false, error: { offset: offset + 16, reason: "nanoseconds >= 1e9" } };
  return {
    ok: true,
    value: {
      streamId: view.getUint32(4),
      seq: view.getUint32(8),
      sentMs: view.getUint32(12) * 1000 + nanos / 1e6,
    },
  };
}

/** CLOCK_REALTIME now in fractional milliseconds (same clock as tcpdump's timestamps). */
export function realtimeMs(): number {
  return performance.timeOrigin + performance.now();
}
