/**
 * Load sharing under capacity limits on the Fig. 7 labs (issue 6), shared by
 * test/vrls-review.test.ts, test/vrls-sharing.test.ts and bench/sharing.ts:
 *
 * - a model of router capacity: each member's far-side egress is limited with `tc tbf`,
 *   so what a member cannot forward is dropped at its qdisc (an overflow the flow
 *   monitor counts) and load sharing shows as throughput;
 * - skewed load: every LAN end system sends one unit of UDP to the far-side server; one
 *   end system sends ten units (nine more flows to extra server addresses, chosen so that
 *   their hash buckets, `jhash ip saddr . ip daddr`, belong to one member: the skew);
 * - the figures come from a capture on the far segment (frames per forwarding MAC per
 *   time window: the analyzer's attribution), never from the agents.
 */
import type { Lab } from "../lab/index.ts";
import { pause } from "../remote/wait.ts";
import { bucketOf } from "../roles/vrls/conditions.ts";
import { analyzeCapture, type CaptureAnalysis } from "../traffic/analyzer.ts";
import { Capture, type CaptureStats } from "../traffic/capture.ts";
import { type L2Path, type NativeSenderTotals, resolveL2Path, sendUdpStream } from "../traffic/udp.ts";
import { virtualMac } from "../wire/vrrp.ts";

export const LAN_END_SYSTEMS = ["es1", "es2", "es3", "es4"] as const;
export const LAN_END_SYSTEM_ADDRESSES: Record<string, string> = {
  es1: "198.18.1.11",
  es2: "198.18.1.12",
  es3: "198.18.1.13",
  es4: "198.18.1.14",
};
export const SERVER = "198.18.100.10";
/** Extra server addresses the skewed end system sends to (one flow each). */
export const EXTRA_SERVER_ADDRESSES = Array.from({ length: 80 }, (_, i) => `198.18.100.${100 + i}`);

export interface Flow {
  host: string;
  dst: string;
  streamId: number;
}

/** Limits each member's egress toward the far side (tbf: rate, a small burst, short queue). */
export async function limitCapacity(
  lab: Lab,
  hosts: readonly string[],
  mbit: number,
  dev = "eth1",
): Promise<void> {
  for (const h of hosts)
    await lab
      .host(h)
      .exec(
        `tc qdisc replace dev ${dev} root tbf rate ${mbit}mbit burst 12kb latency 20ms && tc qdisc show dev ${dev}`,
      );
}

export async function clearCapacity(lab: Lab, hosts: readonly string[], dev = "eth1"): Promise<void> {
  for (const h of hosts) await lab.host(h).exec(`tc qdisc del dev ${dev} root 2>/dev/null; true`);
}

/** Gives the far-side server the extra addresses (routers reach them on the connected far subnet). */
export async function addServerAddresses(lab: Lab): Promise<void> {
  await lab
    .host("server")
    .exec(
      EXTRA_SERVER_ADDRESSES.map((a) => `ip addr add ${a}/32 dev eth0 2>/dev/null`).join("; ") + "; true",
    );
}

/**
 * Destinations for the skewed end system's extra flows whose buckets belong to `owner` in
 * `allocation`, one flow per bucket where possible, avoiding the buckets of `avoid` flows.
 */
export function skewDestinations(opts: {
  src: string;
  owner: string;
  allocation: Record<string, string>;
  buckets: number;
  seed: number;
  flows: number;
  avoid: readonly { src: string; dst: string }[];
}): string[] {
  const key = (b: number) => `src+dst#${b}/${opts.buckets}@${opts.seed}`;
  const used = new Set(opts.avoid.map((f) => bucketOf("src+dst", f.src, f.dst, opts.buckets, opts.seed)));
  const out: string[] = [];
  for (const pass of [0, 1]) {
    for (const dst of EXTRA_SERVER_ADDRESSES) {
      if (out.length >= opts.flows) return out;
      if (out.includes(dst)) continue;
      const b = bucketOf("src+dst", opts.src, dst, opts.buckets, opts.seed);
      if (opts.allocation[key(b)] !== opts.owner) continue;
      if (pass === 0 && used.has(b)) continue;
      used.add(b);
      out.push(dst);
    }
  }
  if (out.length < opts.flows) throw new Error(`only ${out.length} skew destinations for ${opts.owner}`);
  return out;
}

/** Each LAN end system's path with the virtual MAC as next hop (fixed for the run). */
export async function lanPaths(lab: Lab, vrid: number): Promise<Map<string, L2Path>> {
  const out = new Map<string, L2Path>();
  for (const h of LAN_END_SYSTEMS) {
    const p = await resolveL2Path(lab.host(h).remote, SERVER);
    out.set(h, { ...p, nextHopMac: virtualMac(vrid) });
  }
  return out;
}

export interface LoadRun {
  startedAt: number;
  endedAt: number;
  sent: number;
  /** What each flow's generator says it sent (per stream: count, first and last send). */
  senders: NativeSenderTotals[];
  analysis: CaptureAnalysis;
  /** tcpdump's closing statistics of the far-side capture the analysis comes from. */
  capture: CaptureStats;
}

/**
 * Sends every flow at `ppsPerFlow` for `durationMs` while capturing on the far segment;
 * `during` runs once the flows have started (kills, measurements).
 */
export async function runLoad(
  lab: Lab,
  flows: readonly Flow[],
  opts: {
    ppsPerFlow: number;
    durationMs: number;
    frameBytes: number;
    port: number;
    paths: Map<string, L2Path>;
  },
  during?: (startedAt: number) => Promise<void>,
): Promise<LoadRun> {
  const capture = await Capture.start(lab.host("server").remote, {
    interface: "eth0",
    filter: `udp dst port ${opts.port}`,
  });
  try {
    const startedAt = Date.now();
    const sending = Promise.all(
      flows.map((f) =>
        sendUdpStream(
          lab.host(f.host).remote,
          {
            streamId: f.streamId,
            dstIp: f.dst,
            dstPort: opts.port,
            pps: opts.ppsPerFlow,
            durationMs: opts.durationMs,
            frameBytes: opts.frameBytes,
          },
          opts.paths.get(f.host),
        ),
      ),
    );
    if (during) await during(startedAt);
    const sent = await sending;
    const endedAt = Date.now();
    // Time is the subject: frames still queued get 200 ms to arrive before the capture stops
    // (what is missing after that counts as lost).
    await pause(200);
    const stats = await capture.stop();
    const analysis = await analyzeCapture(capture.reader(), { binMs: 50 });
    return {
      startedAt,
      endedAt,
      sent: sent.reduce((a, s) => a + s.sent, 0),
      senders: sent,
      analysis,
      capture: stats,
    };
  } finally {
    await capture.stop();
    await capture.remove().catch(() => undefined);
  }
}

/** Frames per forwarding MAC in [fromMs, toMs) over all streams (unique and duplicate copies). */
export function framesByMac(a: CaptureAnalysis, fromMs: number, toMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of a.streams) {
    const t = s.timeline;
    for (const [mac, bins] of Object.entries(t.series)) {
      if (mac === "received") continue;
      bins.forEach((n, i) => {
        const at = t.startMs + i * t.binMs;
        if (at >= fromMs && at < toMs && n > 0) out[mac] = (out[mac] ?? 0) + n;
      });
    }
  }
  return out;
}

/** Mbit/s per MAC (frame bytes incl. Ethernet header) in the window. */
export function mbpsByMac(
  a: CaptureAnalysis,
  fromMs: number,
  toMs: number,
  frameBytes: number,
  macs: readonly string[],
): Record<string, number> {
  const frames = framesByMac(a, fromMs, toMs);
  const secs = (toMs - fromMs) / 1000;
  return Object.fromEntries(
    macs.map((m) => [m, Math.round((((frames[m] ?? 0) * frameBytes * 8) / secs / 1e6) * 100) / 100]),
  );
}

/**
 * Goodput in [fromMs, toMs): each datagram once, whoever forwarded it and however often
 * (first copies on the far segment; a duplicate adds nothing), in Mbit/s of `frameBytes`
 * frames. Next to it, the forwarded rate per MAC (every copy: what each member carried).
 */
export function goodput(
  a: CaptureAnalysis,
  fromMs: number,
  toMs: number,
  frameBytes: number,
  macs: readonly string[],
): { total: number; byMac: Record<string, number> } {
  let unique = 0;
  for (const s of a.streams) {
    const t = s.timeline;
    s.uniqueSeries.forEach((n, i) => {
      const at = t.startMs + i * t.binMs;
      if (at >= fromMs && at < toMs) unique += n;
    });
  }
  const secs = (toMs - fromMs) / 1000;
  const byMac = mbpsByMac(a, fromMs, toMs, frameBytes, macs);
  return {
    total: Math.round(((unique * frameBytes * 8) / secs / 1e6) * 100) / 100,
    byMac: Object.fromEntries(Object.entries(byMac).filter(([, v]) => v > 0)),
  };
}

/** Largest deviation from the mean, in percent of the mean. */
export function deviationPct(values: readonly number[]): number {
  const mean = values.reduce((x, y) => x + y, 0) / Math.max(1, values.length);
  if (mean <= 0) return 0;
  return Math.round((Math.max(...values.map((v) => Math.abs(v - mean))) / mean) * 1000) / 10;
}

/** First time from `fromMs` after which every `windowMs` window stays within `pct` (or null). */
export function balancedSince(
  a: CaptureAnalysis,
  fromMs: number,
  toMs: number,
  frameBytes: number,
  macs: readonly string[],
  pct: number,
  windowMs = 500,
): number | null {
  let since: number | null = null;
  for (let t = fromMs; t + windowMs <= toMs; t += windowMs) {
    const r = mbpsByMac(a, t, t + windowMs, frameBytes, macs);
    const ok = deviationPct(macs.map((m) => r[m] ?? 0)) <= pct;
    if (ok && since === null) since = t;
    if (!ok) since = null;
  }
  return since;
}

/** Duplicated frames on the far segment (the same packet forwarded twice), all streams. */
export function wireDuplicates(a: CaptureAnalysis): number {
  return a.streams.reduce((n, s) => n + s.duplicates, 0);
}
