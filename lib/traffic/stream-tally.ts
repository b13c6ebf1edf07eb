/**
 * Per-stream counting shared by the receiver (socket arrivals) and the capture analyzer
 * (frames on the wire): unique/duplicate/reordered packets by sequence number, the longest
 * gap between arrivals, latency from the header's send time, and 10 ms bins per label
 * (the label is the forwarding router's MAC on the wire, or "received" at a socket).
 * Memory: one bit per sequence number plus one counter per bin and label.
 */
export const DEFAULT_BIN_MS = 10;

export interface Interruption {
  /** Arrival time of the last packet before the gap (ms since epoch). */
  startMs: number;
  /** Arrival time of the first packet after the gap. */
  endMs: number;
  ms: number;
  /** Sequence numbers on either side of the gap (-1: none; firstSeqAfter -1 with `untilEnd`). */
  lastSeqBefore: number;
  firstSeqAfter: number;
  /** The stream never resumed: the interruption runs from its last arrival to the end of the run. */
  untilEnd?: true;
}

export interface Timeline {
  binMs: number;
  /** Start of bin 0, ms since epoch (a multiple of binMs). */
  startMs: number;
  /** Packets per bin, per label; every series has the same length. */
  series: Record<string, number[]>;
}

export interface TallySummary {
  streamId: number;
  /** Packets observed, duplicates included. */
  packets: number;
  unique: number;
  duplicates: number;
  /** Packets that arrived after a higher sequence number of the same stream (first copies only). */
  reordered: number;
  highestSeq: number;
  /** Sequence number of the packet that arrived last (-1: none). */
  lastSeq: number;
  firstArrivalMs: number | null;
  lastArrivalMs: number | null;
  longestInterruption: Interruption | null;
  latencyMs: { min: number; mean: number; max: number } | null;
  /** Packets per label (first copies and duplicates). */
  perLabel: Record<string, number>;
  /** Second and later copies, by the label of the copy. */
  duplicatesPerLabel: Record<string, number>;
  timeline: Timeline;
  /**
   * First copies per bin, whatever label carried them (each packet counted once), on the
   * timeline's axis (same startMs, binMs and length): what goodput counts.
   */
  uniqueSeries: number[];
  /** Sequence numbers in [0, highestSeq] never seen, as inclusive ranges, capped at 1000 ranges. */
  missingRanges: [number, number][];
  missingRangesTruncated: boolean;
}

export class StreamTally {
  packets = 0;
  unique = 0;
  duplicates = 0;
  reordered = 0;
  highestSeq = -1;
  private seen = new Uint8Array(1024);
  private firstArrival = Number.NaN;
  private lastArrival = Number.NaN;
  private lastSeq = -1;
  private longest: Interruption | null = null;
  private latencySum = 0;
  private latencyMin = Number.POSITIVE_INFINITY;
  private latencyMax = Number.NEGATIVE_INFINITY;
  private latencyCount = 0;
  private perLabel = new Map<string, number>();
  private duplicatesPerLabel = new Map<string, number>();
  private bins = new Map<string, Map<number, number>>();
  private uniqueBins = new Map<number, number>();

  constructor(
    readonly streamId: number,
    readonly binMs = DEFAULT_BIN_MS,
  ) {}

  /** Records one packet; `sentMs` is the header's send time (NaN to skip latency). */
  observe(seq: number, arrivalMs: number, sentMs: number, label = "received"): void {
    this.packets++;
    this.perLabel.set(label, (this.perLabel.get(label) ?? 0) + 1);
    let labelBins = this.bins.get(label);
    if (!labelBins) {
      labelBins = new Map();
      this.bins.set(label, labelBins);
    }
    const bin = Math.floor(arrivalMs / this.binMs);
    labelBins.set(bin, (labelBins.get(bin) ?? 0) + 1);

    if (this.isSeen(seq)) {
      this.duplicates++;
      this.duplicatesPerLabel.set(label, (this.duplicatesPerLabel.get(label) ?? 0) + 1);
    } else {
      this.markSeen(seq);
      this.unique++;
      this.uniqueBins.set(bin, (this.uniqueBins.get(bin) ?? 0) + 1);
      if (seq < this.highestSeq) this.reordered++;
      if (seq > this.highestSeq) this.highestSeq = seq;
    }

    if (Number.isNaN(this.firstArrival)) this.firstArrival = arrivalMs;
    else {
      const gap = arrivalMs - this.lastArrival;
      if (this.longest === null || gap > this.longest.ms) {
        this.longest = {
          startMs: this.lastArrival,
          endMs: arrivalMs,
          ms: gap,
          lastSeqBefore: this.lastSeq,
          firstSeqAfter: seq,
        };
      }
    }
    if (!(arrivalMs < this.lastArrival)) this.lastArrival = arrivalMs;
    this.lastSeq = seq;

    if (!Number.isNaN(sentMs)) {
      const latency = arrivalMs - sentMs;
      this.latencySum += latency;
      this.latencyCount++;
      if (latency < this.latencyMin) this.latencyMin = latency;
      if (latency > this.latencyMax) this.latencyMax = latency;
    }
  }

  isSeen(seq: number): boolean {
    const byte = seq >>> 3;
    return byte < this.seen.length && (this.seen[byte]! & (1 << (seq & 7))) !== 0;
  }

  private markSeen(seq: number): void {
    const byte = seq >>> 3;
    if (byte >= this.seen.length) {
      let size = this.seen.length;
      while (size <= byte) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.seen);
      this.seen = grown;
    }
    this.seen[byte]! |= 1 << (seq & 7);
  }

  /** Sequence numbers in [0, upTo) that never arrived, as inclusive ranges. */
  missingRanges(upTo = this.highestSeq + 1, cap = 1000): { ranges: [number, number][]; truncated: boolean } {
    const ranges: [number, number][] = [];
    let start = -1;
    for (let seq = 0; seq < upTo; seq++) {
      if (this.isSeen(seq)) {
        if (start >= 0) {
          ranges.push([start, seq - 1]);
          start = -1;
          if (ranges.length >= cap) return { ranges, truncated: true };
        }
      } else if (start < 0) start = seq;
    }
    if (start >= 0) ranges.push([start, upTo - 1]);
    return { ranges, truncated: false };
  }

  timeline(): Timeline {
    let minBin = Number.POSITIVE_INFINITY;
    let maxBin = Number.NEGATIVE_INFINITY;
    for (const bins of this.bins.values()) {
      for (const bin of bins.keys()) {
        if (bin < minBin) minBin = bin;
        if (bin > maxBin) maxBin = bin;
      }
    }
    const series: Record<string, number[]> = {};
    if (!Number.isFinite(minBin)) return { binMs: this.binMs, startMs: 0, series };
    for (const [label, bins] of this.bins) {
      const counts = new Array<number>(maxBin - minBin + 1).fill(0);
      for (const [bin, count] of bins) counts[bin - minBin] = count;
      series[label] = counts;
    }
    return { binMs: this.binMs, startMs: minBin * this.binMs, series };
  }

  /** First copies per bin on `timeline`'s axis. */
  uniqueSeries(timeline: Timeline = this.timeline()): number[] {
    const length = Object.values(timeline.series)[0]?.length ?? 0;
    const out = new Array<number>(length).fill(0);
    const firstBin = Math.round(timeline.startMs / this.binMs);
    for (const [bin, count] of this.uniqueBins) out[bin - firstBin] = count;
    return out;
  }

  summary(): TallySummary {
    const missing = this.missingRanges();
    const timeline = this.timeline();
    return {
      streamId: this.streamId,
      packets: this.packets,
      unique: this.unique,
      duplicates: this.duplicates,
      reordered: this.reordered,
      highestSeq: this.highestSeq,
      lastSeq: this.lastSeq,
      firstArrivalMs: Number.isNaN(this.firstArrival) ? null : this.firstArrival,
      lastArrivalMs: Number.isNaN(this.lastArrival) ? null : this.lastArrival,
      longestInterruption: this.longest,
      latencyMs:
        this.latencyCount === 0
          ? null
          : { min: this.latencyMin, mean: this.latencySum / this.latencyCount, max: this.latencyMax },
      perLabel: Object.fromEntries(this.perLabel),
      duplicatesPerLabel: Object.fromEntries(this.duplicatesPerLabel),
      timeline,
      uniqueSeries: this.uniqueSeries(timeline),
      missingRanges: missing.ranges,
      missingRangesTruncated: missing.truncated,
    };
  }
}

/** A set of tallies keyed by stream id. */
export class TallyBook {
  readonly streams = new Map<number, StreamTally>();
  constructor(readonly binMs = DEFAULT_BIN_MS) {}

  tally(streamId: number): StreamTally {
    let tally = this.streams.get(streamId);
    if (!tally) {
      tally = new StreamTally(streamId, this.binMs);
      this.streams.set(streamId, tally);
    }
    return tally;
  }

  summaries(): TallySummary[] {
    return [...this.streams.values()].map((t) => t.summary());
  }
}
