import type { Lab } from "../../lib/lab/index.ts";
import {
  type AnalyzerResult,
  analyzeCapture,
  analyzeStream,
  mergeTimelines,
  senderOnControllerClock,
} from "../../lib/traffic/analyzer.ts";
import { Capture, type CaptureStats } from "../../lib/traffic/capture.ts";
import { decodeTaggedFrame } from "../../lib/traffic/frame.ts";
import { PcapReader } from "../../lib/traffic/pcap-reader.ts";
import type { Timeline } from "../../lib/traffic/stream-tally.ts";
import { sendUdpStream, UdpReceiver } from "../../lib/traffic/udp.ts";

/** One UDP stream per end system through the virtual router, judged by lib/traffic's analyzer. */
export interface StreamsRun {
  results: { host: string; result: AnalyzerResult }[];
  totals: { sent: number; received: number; lost: number; dupReceiver: number; dupWire: number };
  timeline: Timeline;
  capturePath: string;
  /** tcpdump's closing statistics of the far-side capture. */
  captures: CaptureStats[];
}

export async function runStreams(
  lab: Lab,
  hosts: readonly string[],
  options: { port: number; pps: number; durationMs: number; during?: () => Promise<void> },
): Promise<StreamsRun> {
  const server = lab.host("server").remote;
  // Server and senders run on their own clocks on a physical lab: timestamps are moved to the controller's.
  const offsetOf = (streamId: number) => lab.clockOffsetMs(hosts[streamId - options.port * 10] ?? "server");
  const receiver = await UdpReceiver.start(server, {
    port: options.port,
    clocks: { receiverOffsetMs: lab.clockOffsetMs("server"), senderOffsetMs: offsetOf },
  });
  const capture = await Capture.start(server, { interface: "eth0", filter: `udp dst port ${options.port}` });
  const senders = Promise.all(
    hosts.map((h, i) =>
      sendUdpStream(lab.host(h).remote, {
        streamId: options.port * 10 + i,
        dstIp: "198.18.100.10",
        dstPort: options.port,
        pps: options.pps,
        durationMs: options.durationMs,
      }),
    ),
  );
  let duringError: unknown;
  if (options.during) {
    await new Promise((r) => setTimeout(r, 300));
    await options.during().catch((e) => {
      duringError = e;
    });
  }
  const sent = await senders;
  await new Promise((r) => setTimeout(r, 400));
  const report = await receiver.stop();
  const captureStats = await capture.stop();
  const wire = await analyzeCapture(capture.reader(), {
    clocks: { captureOffsetMs: lab.clockOffsetMs("server"), senderOffsetMs: offsetOf },
  });
  if (duringError) throw duringError;
  const results = sent.map((s, i) => ({
    host: hosts[i]!,
    result: analyzeStream({
      sender: senderOnControllerClock(s, lab.clockOffsetMs(hosts[i]!)),
      receiver: report.streams.find((x) => x.streamId === s.streamId),
      wire: wire.streams.find((x) => x.streamId === s.streamId),
    }),
  }));
  const totals = { sent: 0, received: 0, lost: 0, dupReceiver: 0, dupWire: 0 };
  let timeline: Timeline | undefined;
  for (const { result } of results) {
    totals.sent += result.sent;
    totals.received += result.received;
    totals.lost += result.lost;
    totals.dupReceiver += result.duplicated.receiver;
    totals.dupWire += result.duplicated.wire;
    const wireOnly: Timeline = {
      ...result.timeline,
      series: Object.fromEntries(Object.entries(result.timeline.series).filter(([k]) => k !== "received")),
    };
    timeline = timeline ? sumTimelines(timeline, wireOnly) : wireOnly;
  }
  return {
    results,
    totals,
    timeline: timeline ?? { binMs: 10, startMs: 0, series: {} },
    capturePath: capture.path,
    captures: [captureStats],
  };
}

/** Adds two timelines bin by bin, series by series (same bin width). */
export function sumTimelines(a: Timeline, b: Timeline): Timeline {
  const merged = mergeTimelines(a, { ...b, series: {} });
  const startMs = Math.min(a.startMs, b.startMs);
  const end = Math.max(a.startMs + binsOf(a) * a.binMs, b.startMs + binsOf(b) * b.binMs);
  const bins = Math.max(1, Math.round((end - startMs) / a.binMs));
  const series: Record<string, number[]> = {};
  for (const t of [a, b]) {
    const offset = Math.round((t.startMs - startMs) / t.binMs);
    for (const [k, counts] of Object.entries(t.series)) {
      const s = series[k] ?? new Array<number>(bins).fill(0);
      counts.forEach((c, i) => {
        s[offset + i] = (s[offset + i] ?? 0) + c;
      });
      series[k] = s;
    }
  }
  return { binMs: merged.binMs, startMs, series };
}

function binsOf(t: Timeline): number {
  return Math.max(0, ...Object.values(t.series).map((s) => s.length));
}

/**
 * Per stream, the longest time between two consecutive frames on the far side within
 * [fromMs, toMs] (the capture's own timestamps; frames decoded by lib/traffic's stream
 * header). Lets a case judge an interruption around an event (a kill) apart from what the
 * senders do when they start. Each stream's tail counts: a stream that stops and never
 * resumes is interrupted from its last frame to the end of the window, or to its last
 * send (`ends`, ms since epoch per stream id) when that comes first.
 */
export async function longestGapsIn(
  path: string,
  streamIds: readonly number[],
  fromMs: number,
  toMs: number,
  ends?: ReadonlyMap<number, number | undefined>,
): Promise<{ stream: number; ms: number; fromMs: number | null }[]> {
  const last = new Map<number, number>();
  const worst = new Map<number, { ms: number; fromMs: number | null }>(
    streamIds.map((s) => [s, { ms: 0, fromMs: null }]),
  );
  const reader = PcapReader.fromFile(path);
  for await (const rec of reader) {
    if (rec.tsMs < fromMs || rec.tsMs > toMs) continue;
    const f = decodeTaggedFrame(rec.data, reader.header?.linkType);
    if (!f.ok) continue;
    const id = f.value.header.streamId;
    const w = worst.get(id);
    if (!w) continue;
    const prev = last.get(id);
    if (prev !== undefined && rec.tsMs - prev > w.ms) worst.set(id, { ms: rec.tsMs - prev, fromMs: prev });
    last.set(id, rec.tsMs);
  }
  return [...worst].map(([stream, w]) => {
    const end = Math.min(toMs, ends?.get(stream) ?? toMs);
    const seen = last.get(stream);
    // A stream with no frame at all in the window was interrupted for all of it.
    if (seen === undefined) return { stream, ms: Math.round((end - fromMs) * 10) / 10, fromMs };
    const tail = end - seen;
    const gap = tail > w.ms ? { ms: tail, fromMs: seen } : w;
    return { stream, ms: Math.round(gap.ms * 10) / 10, fromMs: gap.fromMs };
  });
}
