import { percentile, primeDiscovery, runHandoffs } from "../lib/experiments/handoff-run.ts";
import { upLab } from "../lib/lab/index.ts";
import { startVirtualRouter, virtualRouterConfig } from "../lib/roles/vrls/harness/lab-harness.ts";
import type { HandoffMode } from "../lib/roles/vrls/messages.ts";
import { loadTopology } from "../lib/topology/load.ts";

/**
 * `tandem bench handoff`: the VRLS reference on the Fig. 7 lab (two members), per
 * operation mode N reallocations (default 200; VRLS_REALLOCATIONS overrides) while every
 * end system sends UDP at 2000 pps and TCP (2000 segments/s in all). Lost and
 * duplicated packets come from the traffic library (UDP: receiver + far-side capture) and
 * from comparing TCP segments on the LAN with the far segment; hand-off time is the
 * master's, from sending the allocation to every member reporting its hand-offs done.
 */
export interface HandoffModeResult {
  reallocations: number;
  lost: number;
  duplicated: number;
  handoff_ms_p50: number;
  handoff_ms_p99: number;
  /** The moved end system's longest far-side gap per hand-off. */
  gap_ms_p50: number;
  gap_ms_p99: number;
  /** tcpdump's "dropped by kernel" on the far-side capture: must be 0 for the figures to stand. */
  capture_dropped: number | null;
  udp: { sent: number; lost: number; duplicated: number };
  tcp: { sent: number; lost: number; duplicated: number };
  /** Per member: kernel queue drops, socket overflows, hold bounds, marker waits that expired. */
  members: Awaited<ReturnType<typeof runHandoffs>>["members"];
  /** VRRP role changes during the run (should be none). */
  role_changes: string[];
}

export interface HandoffBenchResult {
  modes: Record<HandoffMode, HandoffModeResult>;
}

const ALL_MODES: HandoffMode[] = ["exactly-once", "sequence-number", "timer"];
/** VRLS_MODES=exactly-once,timer runs a subset (diagnosis); the default is all three. */
const MODES: HandoffMode[] = process.env.VRLS_MODES
  ? ALL_MODES.filter((m) => process.env.VRLS_MODES?.split(",").includes(m))
  : ALL_MODES;

export async function runHandoffBench(
  options: { reallocations?: number; labFile?: string } = {},
): Promise<HandoffBenchResult> {
  const reallocations = options.reallocations ?? Number(process.env.VRLS_REALLOCATIONS ?? 200);
  const loaded = loadTopology(options.labFile ?? "labs/vrls-fig7.yaml");
  const lab = await upLab(loaded);
  const modes = {} as Record<HandoffMode, HandoffModeResult>;
  try {
    for (const [k, mode] of MODES.entries()) {
      const vr = await startVirtualRouter(
        lab,
        virtualRouterConfig(loaded, undefined, { mode, advertIntervalMs: 100, discoveryMs: 200 }),
      );
      try {
        await vr.waitForMaster(15_000, "ra");
        await primeDiscovery(lab);
        await vr.waitAllocated(6);
        const r = await runHandoffs(lab, vr, mode, 6100 + k, reallocations);
        const udpDup = r.udp.duplicatedWire;
        console.error(
          `${mode}: udp lost at the receiver ${r.udp.lost}, on the far-side wire ${r.udp.lostOnWire}`,
        );
        console.error(`${mode}: where the hand-off time went (ms after the master's type 3)`);
        console.table(r.phases);
        if (mode === "exactly-once" && r.lossEvents.length > 0)
          console.error(`exactly-once losses: ${JSON.stringify(r.lossEvents.slice(0, 20))}`);
        modes[mode] = {
          reallocations: r.reallocations,
          lost: r.udp.lost + r.tcp.lost,
          duplicated: udpDup + r.tcp.duplicated,
          handoff_ms_p50: round(percentile(r.handoffMs, 50)),
          handoff_ms_p99: round(percentile(r.handoffMs, 99)),
          gap_ms_p50: round(percentile(r.gapsMs, 50)),
          gap_ms_p99: round(percentile(r.gapsMs, 99)),
          capture_dropped: r.captureStats.droppedByKernel,
          udp: { sent: r.udp.sent, lost: r.udp.lost, duplicated: udpDup },
          tcp: { sent: r.tcp.sent, lost: r.tcp.lost, duplicated: r.tcp.duplicated },
          role_changes: r.roleChanges,
          members: r.members,
        };
      } finally {
        await vr.stop();
      }
    }
  } finally {
    await lab.down();
  }
  return { modes };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

export function printHandoffBench(r: HandoffBenchResult): void {
  const rows = Object.entries(r.modes).map(([mode, m]) => ({
    mode,
    reallocations: m.reallocations,
    "udp sent": m.udp.sent,
    "udp lost": m.udp.lost,
    "udp dup": m.udp.duplicated,
    "tcp segs": m.tcp.sent,
    "tcp lost": m.tcp.lost,
    "tcp dup": m.tcp.duplicated,
    "p50 ms": m.handoff_ms_p50,
    "p99 ms": m.handoff_ms_p99,
    "gap p50 ms": m.gap_ms_p50,
    "gap p99 ms": m.gap_ms_p99,
    "capture drops": m.capture_dropped ?? "?",
    "role changes": m.role_changes.join(" ") || "-",
  }));
  console.table(rows);
  console.table(Object.entries(r.modes).flatMap(([mode, m]) => m.members.map((x) => ({ mode, ...x }))));
  const modes = Object.fromEntries(
    Object.entries(r.modes).map(([mode, m]) => [
      mode,
      {
        reallocations: m.reallocations,
        lost: m.lost,
        duplicated: m.duplicated,
        handoff_ms_p50: m.handoff_ms_p50,
        handoff_ms_p99: m.handoff_ms_p99,
        gap_ms_p50: m.gap_ms_p50,
        gap_ms_p99: m.gap_ms_p99,
        capture_dropped: m.capture_dropped,
      },
    ]),
  );
  console.log(JSON.stringify({ modes }));
}
