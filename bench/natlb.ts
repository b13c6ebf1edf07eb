import { type Lab, upLab } from "../lib/lab/index.ts";
import { pause } from "../lib/remote/wait.ts";
import type { NatlbConfig } from "../lib/roles/natlb/config.ts";
import {
  holdReportOf,
  loadReport,
  move,
  type NatlbRig,
  startLoad,
  startNatlb,
  status,
  stopNatlb,
  sumReports,
} from "../lib/roles/natlb/lab-harness.ts";
import { loadNatlbSection } from "../lib/roles/natlb/section.ts";
import { loadTopology } from "../lib/topology/load.ts";
import type { BurstReport } from "../lib/traffic/http-load.ts";

/**
 * `tandem bench natlb`: on the seed's Fig. 3 lab, with 1000 TCP connections on one VIP,
 * N planned moves (default 50) of that VIP back and forth: per move the move time (the
 * controller's four steps, from step 1 sent to step 4 acknowledged) and the hold time
 * (how long the new owner held the oldest packet of the VIP in transition mode), p50/p99
 * of both, and the connections still open at the end (preserved %); then connections per
 * second through one balancer vs two; then on the Fig. 13 lab, balancer A killed with 1000
 * connections on its VIPs (connections kept by the failover). A table, then one JSON line.
 */
export interface NatlbBenchResult {
  /** Planned moves sampled. */
  moves: number;
  move_ms_p50: number;
  move_ms_p99: number;
  hold_ms_p50: number;
  hold_ms_p99: number;
  /** Connections open after every planned move, of those established (%). */
  preserved_pct: number;
  planned_preserved_pct: number;
  failover_preserved_pct: number;
  cps_two: number;
  cps_one: number;
}

export interface NatlbBenchOptions {
  moves?: number;
  embodiment?: "dnat" | "fullnat";
  burstMs?: number;
  /** Pause between two moves (ms). */
  gapMs?: number;
  /** Run the connections/s and failover parts (default true). */
  cps?: boolean;
  failover?: boolean;
  log?: (line: string) => void;
}

/** One planned move as the bench saw it. */
export interface NatlbMoveSample {
  n: number;
  from: string;
  to: string;
  moveMs: number;
  holdMs: number;
  held: number;
  entries: number;
  steps: string;
}

const FIG3 = new URL("../labs/natlb-fig3.yaml", import.meta.url).pathname;
const FIG13 = new URL("../labs/natlb-fig13.yaml", import.meta.url).pathname;
const VIP11 = "198.51.100.11";
const VIP12 = "198.51.100.12";

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] as number;
}

async function burst(rig: NatlbRig, vips: string[], durationMs: number): Promise<number> {
  const hosts = [...rig.clients.entries()];
  const reports = await Promise.all(
    hosts.map(([, c], i) =>
      c.call<BurstReport>(
        "burst",
        { target: vips[i % vips.length], port: 80, concurrency: 24, durationMs },
        { timeoutMs: durationMs + 30_000 },
      ),
    ),
  );
  return reports.reduce((a, r) => a + r.perSecond, 0);
}

async function withRig<T>(
  file: string,
  config: (c: NatlbConfig) => NatlbConfig,
  fn: (rig: NatlbRig) => Promise<T>,
) {
  const loaded = loadTopology(file);
  const cfg = config(loadNatlbSection(loaded));
  let lab: Lab | undefined;
  let rig: NatlbRig | undefined;
  try {
    lab = await upLab(loaded);
    rig = await startNatlb(lab, cfg);
    return await fn(rig);
  } finally {
    await stopNatlb(rig);
    await lab?.down();
  }
}

export async function runNatlbBench(options: NatlbBenchOptions = {}): Promise<NatlbBenchResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const moves = options.moves ?? 50;
  const embodiment = options.embodiment ?? "dnat";
  const burstMs = options.burstMs ?? 5000;
  const gapMs = options.gapMs ?? 300;
  const samples: NatlbMoveSample[] = [];
  let plannedPreserved = 0;
  let cpsOne = 0;
  let cpsTwo = 0;

  await withRig(
    FIG3,
    (c) => ({ ...c, embodiment }),
    async (rig) => {
      await startLoad(rig, "bench", VIP11, { connections: 960, downloads: 40 });
      await pause(1500); // time is the subject: the load runs 1.5 s before the first move
      let owner = "lba";
      for (const b of rig.balancers.values()) await b.call("kernel", { reset: true });
      log("move  from -> to   move ms  hold ms  held  entries  steps (ms)");
      for (let i = 0; i < moves; i++) {
        const to = owner === "lba" ? "lbb" : "lba";
        const m = await move(rig, VIP11, to, "planned");
        if (m.outcome !== "completed") throw new Error(`move ${i + 1} ${m.outcome}: ${m.error}`);
        const hold = await holdReportOf(rig, to, m.id);
        const s: NatlbMoveSample = {
          n: i + 1,
          from: owner,
          to,
          moveMs: m.totalMs,
          holdMs: hold?.holdMs ?? 0,
          held: hold?.held ?? 0,
          entries: m.entriesMoved,
          steps: m.steps.map((x) => `${x.step} ${x.ms}`).join(", "),
        };
        samples.push(s);
        log(
          `${String(s.n).padStart(4)}  ${s.from} -> ${s.to}  ${String(s.moveMs).padStart(7)}  ${String(s.holdMs).padStart(7)}  ${String(s.held).padStart(4)}  ${String(s.entries).padStart(7)}  ${s.steps}`,
        );
        owner = to;
        await pause(gapMs); // time is the subject: the gap between two moves
      }
      for (const [name, b] of rig.balancers) {
        const k = await b.call<{ loopDelayMs: unknown; jobs: unknown; events: { enobufs: number } }>(
          "kernel",
        );
        log(
          `${name}: event loop delay ${JSON.stringify(k.loopDelayMs)} ms, jobs ${JSON.stringify(k.jobs)}, events lost ${k.events.enobufs}`,
        );
      }
      await pause(1500); // time is the subject: 1.5 s after the last move before the connections are judged
      const load = await loadReport(rig, "bench", true);
      plannedPreserved = load.established > 0 ? (100 * load.open) / load.established : 0;
      log(
        `planned moves: ${load.open}/${load.established} connections open, ${load.resets} reset, ${load.stalls} stalls > 1 s, longest request ${load.maxLatencyMs} ms`,
      );
      if (options.cps === false) return;

      // Connections per second: both VIPs on one balancer, then one VIP on each.
      const st = await status(rig);
      for (const v of [VIP11, VIP12]) {
        if (st.vips.find((x) => x.vip === v)?.owner !== "lba") await move(rig, v, "lba", "planned");
      }
      cpsOne = await burst(rig, [VIP11, VIP12], burstMs);
      await move(rig, VIP12, "lbb", "planned");
      cpsTwo = await burst(rig, [VIP11, VIP12], burstMs);
      log(`short connections: ${cpsOne}/s through one balancer, ${cpsTwo}/s through two`);
    },
  );

  let failoverPreserved = 0;
  if (options.failover !== false) {
    await withRig(
      FIG13,
      (c) => ({ ...c, embodiment }),
      async (rig) => {
        await rig.controller.call("startAuto", { everyMs: 50 });
        await Promise.all([
          startLoad(rig, "fo-11", VIP11, { connections: 480, downloads: 20 }),
          startLoad(rig, "fo-12", VIP12, { connections: 480, downloads: 20 }),
        ]);
        await pause(2000); // time is the subject: the load runs 2 s before the failure
        const ping = await rig.balancers.get("lba")?.call<{ pid: number }>("ping");
        await rig.lab
          .host("lba")
          .exec(["sh", "-c", `ip link set eth0 down; ip link set eth1 down; kill -9 ${ping?.pid}`]);
        await pause(5000); // time is the subject: 5 s after the failure before the connections are judged
        const load = sumReports(
          await Promise.all([loadReport(rig, "fo-11", true), loadReport(rig, "fo-12", true)]),
        );
        failoverPreserved = load.established > 0 ? (100 * load.open) / load.established : 0;
        log(
          `failover: ${load.open}/${load.established} connections kept, longest interruption ${load.maxLatencyMs} ms`,
        );
      },
    );
  }

  const moveMs = samples.map((s) => s.moveMs);
  const holdMs = samples.map((s) => s.holdMs);
  const preserved = Math.round(plannedPreserved * 10) / 10;
  const result: NatlbBenchResult = {
    moves: samples.length,
    move_ms_p50: percentile(moveMs, 50),
    move_ms_p99: percentile(moveMs, 99),
    hold_ms_p50: percentile(holdMs, 50),
    hold_ms_p99: percentile(holdMs, 99),
    preserved_pct: preserved,
    planned_preserved_pct: preserved,
    failover_preserved_pct: Math.round(failoverPreserved * 10) / 10,
    cps_two: cpsTwo,
    cps_one: cpsOne,
  };
  printNatlbBench(result, log);
  return result;
}

export function printNatlbBench(r: NatlbBenchResult, log: (line: string) => void = console.log): void {
  const rows: [string, string][] = [
    ["planned moves sampled", String(r.moves)],
    ["planned move, p50 (ms)", String(r.move_ms_p50)],
    ["planned move, p99 (ms)", String(r.move_ms_p99)],
    ["transition hold, p50 (ms)", String(r.hold_ms_p50)],
    ["transition hold, p99 (ms)", String(r.hold_ms_p99)],
    ["connections kept, planned moves (%)", String(r.preserved_pct)],
    ["connections kept, failover (%)", String(r.failover_preserved_pct)],
    ["short connections/s, one balancer", String(r.cps_one)],
    ["short connections/s, two balancers", String(r.cps_two)],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) log(`${k.padEnd(w)}  ${v}`);
  log(JSON.stringify(r));
}

// Direct run (the CLI wires `tandem bench natlb --json`).
if (import.meta.url === `file://${process.argv[1]}`) {
  await runNatlbBench();
}
