/**
 * The sharing experiment (issue 6), shared by test/vrls-sharing.test.ts and
 * bench/sharing.ts: every member's far-side egress limited to `capacityMbit`; skewed UDP
 * load (es1 sends ten units, es2-es4 one each) of `offeredFactor` x one member's capacity,
 * the extra flows of es1 landing on the master's hash buckets; the reference router with
 * N members reviews and reallocates by rate. Goodput = unique frames the far-side capture
 * saw in the last `steadyMs` of the run (each datagram once: a duplicate adds nothing; see
 * sharing-run.ts goodput); imbalance = largest deviation of a member's
 * forwarded rate from the mean (far-side frames per forwarding MAC).
 * keepalived (standard VRRP active/standby) runs the same load on the switched variant
 * of the lab (on the hub its backup would forward every frame too).
 */
import type { Lab } from "../lab/index.ts";
import { waitUntil } from "../remote/wait.ts";
import { startKeepalived } from "../roles/vrls/keepalived.ts";
import { startVirtualRouter, virtualRouterConfig } from "../roles/vrls/lab-harness.ts";
import { ReviewSpec, type ReviewSpecT } from "../roles/vrls/review-config.ts";
import type { LoadedTopology } from "../topology/load.ts";
import {
  addServerAddresses,
  balancedSince,
  clearCapacity,
  deviationPct,
  type Flow,
  goodput,
  LAN_END_SYSTEM_ADDRESSES,
  LAN_END_SYSTEMS,
  type LoadRun,
  lanPaths,
  limitCapacity,
  mbpsByMac,
  runLoad,
  SERVER,
  skewDestinations,
  wireDuplicates,
} from "./sharing-run.ts";

export const MEMBER_HOSTS = ["ra", "rb", "rd"] as const;
export const MEMBER_ADDRESS: Record<string, string> = {
  ra: "198.18.1.2",
  rb: "198.18.1.3",
  rd: "198.18.1.5",
};
export const FAR_MAC: Record<string, string> = {
  ra: "02:00:00:00:64:02",
  rb: "02:00:00:00:64:03",
  rd: "02:00:00:00:64:05",
};
const BUCKETS = 32;
const FRAME = 1000;

export interface SharingOptions {
  capacityMbit: number;
  /** Offered load in units of one member's capacity. */
  offeredFactor: number;
  durationMs: number;
  steadyMs: number;
  review: Partial<ReviewSpecT>;
}

export const DEFAULT_SHARING: SharingOptions = {
  capacityMbit: 4,
  offeredFactor: 3.3,
  durationMs: 9000,
  steadyMs: 3000,
  review: { imbalancePct: 30, overflowsPerUnit: 20, holdDownMs: 3000, collectMs: 300, minRateBps: 100_000 },
};

export interface SharingOutcome {
  members: number;
  implementation: "reference" | "keepalived";
  goodputMbps: number;
  offeredMbps: number;
  /** Per forwarding MAC in the steady window. */
  perMemberMbps: Record<string, number>;
  imbalanceBeforePct: number | null;
  imbalanceAfterPct: number | null;
  balanceTimeMs: number | null;
  duplicates: number;
  reviews: unknown;
}

function ppsPerFlow(o: SharingOptions, flows: number): number {
  return Math.round((o.offeredFactor * o.capacityMbit * 1e6) / (FRAME * 8) / flows);
}

function baseFlows(): Flow[] {
  return LAN_END_SYSTEMS.map((h, i) => ({ host: h, dst: SERVER, streamId: 1 + i }));
}

function steadyGoodput(run: LoadRun, o: SharingOptions): { total: number; byMac: Record<string, number> } {
  return goodput(run.analysis, run.endedAt - o.steadyMs, run.endedAt, FRAME, Object.values(FAR_MAC));
}

/** The reference router with the first `n` members of ra, rb, rd (labs/vrls-fig7x3.yaml). */
export async function referenceSharing(
  lab: Lab,
  loaded: LoadedTopology,
  n: number,
  o: SharingOptions = DEFAULT_SHARING,
): Promise<SharingOutcome> {
  const hosts = MEMBER_HOSTS.slice(0, n);
  await addServerAddresses(lab);
  await limitCapacity(lab, hosts, o.capacityMbit);
  const cfg = virtualRouterConfig(loaded, "vr1", {
    advertIntervalMs: 100,
    mode: "exactly-once",
    discoveryMs: 100,
    conditions: { kind: "bucket", over: "src+dst", count: BUCKETS, seed: 0 },
    review: ReviewSpec.parse({ ...o.review, sampleMs: 250, windowMs: 1000, timeUnitMs: 1000 }),
    members: hosts.map((h, i) => ({ host: h, priority: 200 - i * 50, implementation: "reference" as const })),
  });
  const vr = await startVirtualRouter(lab, cfg);
  try {
    await vr.waitForMaster(15_000, "ra");
    const allocation = await vr.waitAllocated(BUCKETS);
    const paths = await lanPaths(lab, cfg.spec.vrid);
    const base = baseFlows();
    const skew = skewDestinations({
      src: LAN_END_SYSTEM_ADDRESSES.es1 as string,
      owner: MEMBER_ADDRESS.ra as string,
      allocation,
      buckets: BUCKETS,
      seed: 0,
      flows: 9,
      avoid: base.map((f) => ({ src: LAN_END_SYSTEM_ADDRESSES[f.host] as string, dst: f.dst })),
    }).map((dst, i) => ({ host: "es1", dst, streamId: 11 + i }));
    const flows = [...base, ...skew];
    const pps = ppsPerFlow(o, flows.length);
    const run = await runLoad(lab, flows, {
      ppsPerFlow: pps,
      durationMs: o.durationMs,
      frameBytes: FRAME,
      port: 6300 + n,
      paths,
    });
    const g = steadyGoodput(run, o);
    const macs = hosts.map((h) => FAR_MAC[h] as string);
    const before = mbpsByMac(run.analysis, run.startedAt + 100, run.startedAt + 700, FRAME, macs);
    const since = n > 1 ? balancedSince(run.analysis, run.startedAt, run.endedAt, FRAME, macs, 15) : null;
    const status = await vr.status("ra");
    return {
      members: n,
      implementation: "reference",
      goodputMbps: g.total,
      offeredMbps: Math.round(((pps * flows.length * FRAME * 8) / 1e6) * 100) / 100,
      perMemberMbps: g.byMac,
      imbalanceBeforePct: n > 1 ? deviationPct(macs.map((m) => before[m] ?? 0)) : null,
      imbalanceAfterPct: n > 1 ? deviationPct(macs.map((m) => g.byMac[m] ?? 0)) : null,
      balanceTimeMs: since === null ? null : since - run.startedAt,
      duplicates: wireDuplicates(run.analysis),
      reviews: (status as { review?: { decisions?: unknown } }).review?.decisions,
    };
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await vr.diagnostics()}`);
  } finally {
    await vr.stop();
    await clearCapacity(lab, hosts);
  }
}

/** keepalived active/standby (ra master, rb backup) on the switched Fig. 7 lab, same load and limits. */
export async function keepalivedSharing(
  lab: Lab,
  loaded: LoadedTopology,
  o: SharingOptions = DEFAULT_SHARING,
): Promise<SharingOutcome> {
  const hosts = ["ra", "rb"];
  await addServerAddresses(lab);
  await limitCapacity(lab, hosts, o.capacityMbit);
  const cfg = virtualRouterConfig(loaded, undefined, {
    advertIntervalMs: 100,
    members: [
      { host: "ra", priority: 200, implementation: "keepalived" },
      { host: "rb", priority: 100, implementation: "keepalived" },
    ],
  });
  for (const h of hosts)
    await lab
      .host(h)
      .exec("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
  const ka = await startKeepalived(lab, cfg, "ra");
  const kb = await startKeepalived(lab, cfg, "rb");
  try {
    await waitUntil(
      async () => (await ka.state())?.state === "MASTER" && (await kb.state())?.state === "BACKUP",
      {
        timeoutMs: 15_000,
        what: "keepalived to settle (ra MASTER, rb BACKUP)",
        everyMs: 50,
        last: () => `${ka.log()}\n${kb.log()}`,
      },
    );
    const paths = await lanPaths(lab, cfg.spec.vrid);
    const base = baseFlows();
    const skew = [...Array(9).keys()].map((i) => ({
      host: "es1",
      dst: `198.18.100.${100 + i}`,
      streamId: 11 + i,
    }));
    const flows = [...base, ...skew];
    const pps = ppsPerFlow(o, flows.length);
    const run = await runLoad(lab, flows, {
      ppsPerFlow: pps,
      durationMs: o.durationMs,
      frameBytes: FRAME,
      port: 6400,
      paths,
    });
    const g = steadyGoodput(run, o);
    return {
      members: 2,
      implementation: "keepalived",
      goodputMbps: g.total,
      offeredMbps: Math.round(((pps * flows.length * FRAME * 8) / 1e6) * 100) / 100,
      perMemberMbps: g.byMac,
      imbalanceBeforePct: null,
      imbalanceAfterPct: null,
      balanceTimeMs: null,
      duplicates: wireDuplicates(run.analysis),
      reviews: null,
    };
  } finally {
    await ka.kill();
    await kb.kill();
    await clearCapacity(lab, hosts);
    for (const h of hosts) await lab.host(h).exec("ip link del vrrp51 2>/dev/null; true");
  }
}
