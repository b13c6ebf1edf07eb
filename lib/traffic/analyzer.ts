import { decodeTaggedFrame } from "./frame.ts";
import type { PcapReader } from "./pcap-reader.ts";
import { type Interruption, TallyBook, type TallySummary, type Timeline } from "./stream-tally.ts";

/**
 * The analyzer: pure functions from what the sender says it sent, what the receiver's
 * socket counted and what a capture on the far segment saw, to one result per stream.
 * Wire attribution: on the far segment each forwarded frame carries the forwarding
 * router's source MAC, and the stream header identifies the packet, so the same
 * (stream, seq) seen twice on the wire is a duplicate forward even when both copies
 * also reached the receiver.
 */
export interface SenderTotals {
  streamId: number;
  /** Datagrams handed to the kernel, sequence numbers 0..sent-1. */
  sent: number;
  /** Send errors (EAGAIN/ENOBUFS) the sender saw; those sequence numbers were skipped, not resent. */
  sendErrors?: number;
  firstSendMs?: number;
  lastSendMs?: number;
}

export interface AnalyzerResult {
  streamId: number;
  sent: number;
  received: number;
  /** Sent sequence numbers that never reached the receiver (or the wire, when there is no receiver). */
  lost: number;
  lostRanges: [number, number][];
  duplicated: { receiver: number; wire: number };
  reordered: number;
  /**
   * The longest time without an arrival while the stream was sent, its tail included: a
   * stream that stops and never resumes is interrupted until the end of the run
   * (`untilEnd`), one that never arrived for all of it.
   */
  longestInterruption: Interruption | null;
  /** Frames on the far segment per source MAC (the forwarding router). */
  attribution: Record<string, number>;
  /** Second copies on the wire per source MAC. */
  wireDuplicatesByMac: Record<string, number>;
  latencyMs: { min: number; mean: number; max: number } | null;
  /** Per 10 ms bin: "received" (socket) and one series per forwarding MAC (wire). */
  timeline: Timeline;
}

export interface CaptureAnalysis {
  streams: TallySummary[];
  frames: number;
  /** Frames without a stream header (ARP, other traffic) or malformed: counted and dropped. */
  untagged: number;
  problem: { offset: number; reason: string } | undefined;
}

/** Tallies every tagged frame of a capture by stream, labelled with its source MAC. */
export async function analyzeCapture(
  reader: PcapReader,
  options: {
    binMs?: number;
    streamIds?: ReadonlySet<number>;
    dstPort?: number;
    /**
     * Clock offsets to the controller (host clock minus controller clock, measured at lab
     * start on a physical lab): capture timestamps come from the capturing host's clock,
     * the stream header's send time from the sender's. Both are moved to the controller's
     * clock before latencies and bins are computed. Absent: one clock (a virtual lab).
     */
    clocks?: { captureOffsetMs: number; senderOffsetMs: (streamId: number) => number };
  } = {},
): Promise<CaptureAnalysis> {
  const book = new TallyBook(options.binMs);
  let frames = 0;
  let untagged = 0;
  for await (const record of reader) {
    frames++;
    const frame = decodeTaggedFrame(record.data, reader.header?.linkType);
    if (!frame.ok) {
      untagged++;
      continue;
    }
    const { header, srcMac, dstPort } = frame.value;
    if (options.streamIds && !options.streamIds.has(header.streamId)) continue;
    if (options.dstPort !== undefined && dstPort !== options.dstPort) continue;
    const clocks = options.clocks;
    const arrivalMs = clocks ? record.tsMs - clocks.captureOffsetMs : record.tsMs;
    const sentMs = clocks ? header.sentMs - clocks.senderOffsetMs(header.streamId) : header.sentMs;
    book.tally(header.streamId).observe(header.seq, arrivalMs, sentMs, srcMac);
  }
  return { streams: book.summaries(), frames, untagged, problem: reader.problem };
}

/** Sender totals with their send times moved to the controller's clock (see analyzeCapture's clocks). */
export function senderOnControllerClock(sender: SenderTotals, offsetMs: number): SenderTotals {
  if (offsetMs === 0) return sender;
  return {
    ...sender,
    ...(sender.firstSendMs === undefined ? {} : { firstSendMs: sender.firstSendMs - offsetMs }),
    ...(sender.lastSendMs === undefined ? {} : { lastSendMs: sender.lastSendMs - offsetMs }),
  };
}

/**
 * Combines sender totals, receiver tally and wire tally of one stream. The run ends at
 * `endMs`, by default the sender's last send.
 */
export function analyzeStream(input: {
  sender: SenderTotals;
  receiver?: TallySummary;
  wire?: TallySummary;
  endMs?: number;
}): AnalyzerResult {
  const { sender, receiver, wire } = input;
  const primary = receiver ?? wire;
  const received = receiver ? receiver.unique : wire ? wire.unique : 0;
  const lostRanges: [number, number][] = primary
    ? lostWithin(primary, sender.sent)
    : sender.sent > 0
      ? [[0, sender.sent - 1]]
      : [];
  const lost = lostRanges.reduce((sum, [a, b]) => sum + (b - a + 1), 0);
  const timeline = mergeTimelines(receiver?.timeline, wire?.timeline, Boolean(receiver));
  return {
    streamId: sender.streamId,
    sent: sender.sent,
    received,
    lost,
    lostRanges,
    duplicated: { receiver: receiver?.duplicates ?? 0, wire: wire?.duplicates ?? 0 },
    reordered: primary?.reordered ?? 0,
    longestInterruption: interruptionUntil(primary, input.endMs ?? sender.lastSendMs, sender),
    attribution: wire?.perLabel ?? {},
    wireDuplicatesByMac: wire?.duplicatesPerLabel ?? {},
    latencyMs: primary?.latencyMs ?? null,
    timeline,
  };
}

/**
 * A tally's longest interruption with its tail counted: from the last arrival to `endMs`
 * (the end of the run: a stream that stopped and never resumed stays interrupted until
 * then), or from the first send to `endMs` when nothing arrived. Without `endMs` the
 * tally's own longest gap between two arrivals.
 */
export function interruptionUntil(
  tally: TallySummary | undefined,
  endMs: number | undefined,
  sender?: Pick<SenderTotals, "sent" | "firstSendMs">,
): Interruption | null {
  const longest = tally?.longestInterruption ?? null;
  if (endMs === undefined) return longest;
  const last = tally?.lastArrivalMs ?? null;
  if (tally === undefined || last === null) {
    const from = sender?.firstSendMs;
    if (!sender?.sent || from === undefined || endMs <= from) return longest;
    return { startMs: from, endMs, ms: endMs - from, lastSeqBefore: -1, firstSeqAfter: -1, untilEnd: true };
  }
  const tail = endMs - last;
  if (tail <= 0 || (longest !== null && longest.ms >= tail)) return longest;
  return { startMs: last, endMs, ms: tail, lastSeqBefore: tally.lastSeq, firstSeqAfter: -1, untilEnd: true };
}

/** Missing ranges clipped to [0, sent), plus the tail the tally never reached. */
function lostWithin(tally: TallySummary, sent: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of tally.missingRanges) {
    if (a >= sent) break;
    out.push([a, Math.min(b, sent - 1)]);
  }
  if (tally.highestSeq + 1 < sent) out.push([tally.highestSeq + 1, sent - 1]);
  return out;
}

/** Aligns two timelines of the same bin width onto one time axis. */
export function mergeTimelines(a: Timeline | undefined, b: Timeline | undefined, keepA = true): Timeline {
  const parts = [keepA ? a : undefined, b].filter((t): t is Timeline => t !== undefined);
  const nonEmpty = parts.filter((t) => Object.keys(t.series).length > 0);
  const binMs = parts[0]?.binMs ?? 10;
  if (nonEmpty.length === 0) return { binMs, startMs: 0, series: {} };
  for (const t of nonEmpty) if (t.binMs !== binMs) throw new Error("mergeTimelines: bin widths differ");
  const startMs = Math.min(...nonEmpty.map((t) => t.startMs));
  const endMs = Math.max(...nonEmpty.map((t) => t.startMs + seriesLength(t) * binMs));
  const length = Math.round((endMs - startMs) / binMs);
  const series: Record<string, number[]> = {};
  for (const t of nonEmpty) {
    const shift = Math.round((t.startMs - startMs) / binMs);
    for (const [label, counts] of Object.entries(t.series)) {
      const target = series[label] ?? new Array<number>(length).fill(0);
      counts.forEach((count, i) => {
        target[shift + i] = (target[shift + i] ?? 0) + count;
      });
      series[label] = target;
    }
  }
  return { binMs, startMs, series };
}

function seriesLength(t: Timeline): number {
  const first = Object.values(t.series)[0];
  return first ? first.length : 0;
}
