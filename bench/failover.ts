import {
  type FailoverOutcome,
  keepalivedFailover,
  referenceFailover,
} from "../lib/experiments/failover-run.ts";
import { upLab } from "../lib/lab/index.ts";
import { loadTopology } from "../lib/topology/load.ts";

/**
 * `tandem bench failover`: on the Fig. 7 lab, with the same advertisement interval and the
 * same streams (every end system 1000 pps UDP to the virtual MAC), the master dies (links
 * down, process killed): first the VRLS reference (two members sharing the load, on the
 * hub lab), then keepalived (standard VRRPv3, the master forwards everything, on the same
 * topology with a learning switch: on a hub keepalived's backup would forward too). Interruption = the longest
 * gap per stream at the receiver. Each failure starts right after the master's next
 * advertisement leaves it (lib/experiments/failover-run.ts, afterNextAdvertisement), so both
 * face a whole Master_Down_Interval and the comparison is of what each does after detection;
 * keepalived's silent failure is one nft transaction (input and output dropped at once). The reference separates the dead member's end systems
 * from the others (which a load-sharing router keeps serving); keepalived has only one kind.
 */
export interface FailoverBenchResult {
  advert_ms: number;
  reference: { dead_router_interruption_ms: number; other_interruption_ms: number };
  /** interruption_ms: links-down failure (as specified); silent_failure_interruption_ms: links up, box dead. */
  keepalived: { interruption_ms: number; silent_failure_interruption_ms: number };
  details: { reference: FailoverOutcome; keepalived: FailoverOutcome; keepalivedSilent: FailoverOutcome };
}

export async function runFailoverBench(
  options: { advertMs?: number; labFile?: string; switchedLabFile?: string } = {},
): Promise<FailoverBenchResult> {
  const advertMs = options.advertMs ?? Number(process.env.VRLS_ADVERT_MS ?? 10);
  const loaded = loadTopology(options.labFile ?? "labs/vrls-fig7.yaml");
  // keepalived has no per-packet filter: on the hub its backup forwards every frame too
  // (measured: every packet twice). It runs on the same topology with a learning switch.
  const switched = loadTopology(options.switchedLabFile ?? "labs/vrls-fig7sw.yaml");
  let keepalived: FailoverOutcome;
  let keepalivedSilent: FailoverOutcome;
  let reference: FailoverOutcome = { advertMs, takeoverMs: Number.NaN, endSystems: [], baselineMs: [] };
  if (process.env.VRLS_BENCH_ONLY !== "keepalived") {
    const lab = await upLab(loaded);
    try {
      console.error("failover bench: reference run");
      reference = await referenceFailover(lab, loaded, advertMs);
    } finally {
      await lab.down();
    }
  }
  const labSw = await upLab(switched);
  try {
    console.error("failover bench: keepalived run (links down)");
    keepalived = await keepalivedFailover(labSw, switched, advertMs);
    console.error("failover bench: keepalived run (silent failure)");
    // The same with a silent failure (links stay up), where the switch does not help.
    keepalivedSilent = await keepalivedFailover(labSw, switched, advertMs, 5500, "silent");
  } finally {
    await labSw.down();
  }
  {
    const dead = reference.endSystems.filter((e) => e.owner === "198.18.1.2");
    const others = reference.endSystems.filter((e) => e.owner !== "198.18.1.2");
    return {
      advert_ms: advertMs,
      reference: {
        dead_router_interruption_ms: Math.max(0, ...dead.map((e) => e.interruptionMs)),
        other_interruption_ms: Math.max(0, ...others.map((e) => e.interruptionMs)),
      },
      keepalived: {
        interruption_ms: Math.max(0, ...keepalived.endSystems.map((e) => e.interruptionMs)),
        silent_failure_interruption_ms: Math.max(
          0,
          ...keepalivedSilent.endSystems.map((e) => e.interruptionMs),
        ),
      },
      details: { reference, keepalived, keepalivedSilent },
    };
  }
}

export function printFailoverBench(r: FailoverBenchResult): void {
  const rows = [
    ...r.details.reference.endSystems.map((e) => ({
      run: "reference",
      host: e.host,
      served_by: e.owner,
      "interruption ms": e.interruptionMs,
      lost: e.lost,
      dup: e.duplicated,
      "before: by MAC": JSON.stringify(e.forwardedBy.before),
      "after: by MAC": JSON.stringify(e.forwardedBy.after),
    })),
    ...r.details.keepalivedSilent.endSystems.map((e) => ({
      run: "keepalived, silent failure",
      host: e.host,
      served_by: e.owner,
      "interruption ms": e.interruptionMs,
      lost: e.lost,
      dup: e.duplicated,
      "before: by MAC": JSON.stringify(e.forwardedBy.before),
      "after: by MAC": JSON.stringify(e.forwardedBy.after),
    })),
    ...r.details.keepalived.endSystems.map((e) => ({
      run: "keepalived",
      host: e.host,
      served_by: e.owner,
      "interruption ms": e.interruptionMs,
      lost: e.lost,
      dup: e.duplicated,
      "before: by MAC": JSON.stringify(e.forwardedBy.before),
      "after: by MAC": JSON.stringify(e.forwardedBy.after),
    })),
  ];
  console.table(rows);
  console.log(
    `takeover: reference ${r.details.reference.takeoverMs} ms, keepalived ${r.details.keepalived.takeoverMs} ms; ` +
      `quiet-baseline longest gap: reference ${Math.max(...r.details.reference.baselineMs)} ms, keepalived ${Math.max(...r.details.keepalived.baselineMs)} ms`,
  );
  console.log(JSON.stringify({ advert_ms: r.advert_ms, reference: r.reference, keepalived: r.keepalived }));
}
