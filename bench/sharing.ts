import {
  DEFAULT_SHARING,
  keepalivedSharing,
  referenceSharing,
  type SharingOutcome,
} from "../lib/experiments/sharing-experiment.ts";
import { upLab } from "../lib/lab/index.ts";
import { loadTopology } from "../lib/topology/load.ts";

/**
 * `tandem bench sharing`: aggregate goodput of the VRLS reference with 1, 2 and 3 members
 * (labs/vrls-fig7x3.yaml, hub) against keepalived active/standby (labs/vrls-fig7sw.yaml,
 * the same topology with a learning switch, two members), every member's far-side egress
 * limited by tbf to the same capacity, the same skewed load (es1 ten units, es2-es4 one;
 * offered 3.3 x one member's capacity). Figures from the far-side capture (frames per
 * forwarding MAC), never from the agents. Imbalance before/after review and time from
 * skew onset to balanced (every 500 ms window within 15% of the mean) from the 2-member run.
 */
export interface SharingBenchResult {
  goodput_mbps: { reference: Record<"1" | "2" | "3", number>; keepalived: number };
  imbalance_before_pct: number | null;
  imbalance_after_pct: number | null;
  balance_time_ms: number | null;
  details: SharingOutcome[];
}

export async function runSharingBench(options: { json?: boolean } = {}): Promise<SharingBenchResult> {
  const hub = loadTopology("labs/vrls-fig7x3.yaml");
  const switched = loadTopology("labs/vrls-fig7sw.yaml");
  const details: SharingOutcome[] = [];
  const lab = await upLab(hub);
  try {
    for (const n of [1, 2, 3]) details.push(await referenceSharing(lab, hub, n, DEFAULT_SHARING));
  } finally {
    await lab.down();
  }
  const labSw = await upLab(switched);
  try {
    details.push(await keepalivedSharing(labSw, switched, DEFAULT_SHARING));
  } finally {
    await labSw.down();
  }
  const ref = (n: number) => details.find((d) => d.implementation === "reference" && d.members === n);
  const two = ref(2);
  const result: SharingBenchResult = {
    goodput_mbps: {
      reference: { "1": ref(1)?.goodputMbps ?? 0, "2": two?.goodputMbps ?? 0, "3": ref(3)?.goodputMbps ?? 0 },
      keepalived: details.find((d) => d.implementation === "keepalived")?.goodputMbps ?? 0,
    },
    imbalance_before_pct: two?.imbalanceBeforePct ?? null,
    imbalance_after_pct: two?.imbalanceAfterPct ?? null,
    balance_time_ms: two?.balanceTimeMs ?? null,
    details,
  };
  console.table(
    details.map((d) => ({
      implementation: d.implementation,
      members: d.members,
      "offered Mbit/s": d.offeredMbps,
      "goodput Mbit/s": d.goodputMbps,
      "per member Mbit/s": JSON.stringify(d.perMemberMbps),
      "imbalance before %": d.imbalanceBeforePct,
      "imbalance after %": d.imbalanceAfterPct,
      "balance time ms": d.balanceTimeMs,
      duplicates: d.duplicates,
    })),
  );
  console.log(
    `capacity ${DEFAULT_SHARING.capacityMbit} Mbit/s per member (tbf), offered ${DEFAULT_SHARING.offeredFactor} x capacity, steady window ${DEFAULT_SHARING.steadyMs} ms`,
  );
  if (options.json !== false) {
    const { details: _d, ...line } = result;
    console.log(JSON.stringify(line));
  }
  return result;
}
