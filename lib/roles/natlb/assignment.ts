/**
 * The computing step of communication load assignment (seed 002: "optimum combination of
 * communication loads and load balancers is computed ... by assigning no communication
 * load to a failed load balancer, failover can be realized"). The seed points to
 * Literature 3 and leaves the algorithm open (Modification 9); this one:
 *
 * 1. VIPs on a failed (or unknown) balancer are placed first, biggest load first, each on
 *    the least loaded healthy balancer (LPT greedy).
 * 2. Then, while it lowers the spread, the most loaded balancer gives one VIP to the least
 *    loaded one, or swaps one VIP with it, choosing the move that best evens the pair.
 *    Starting from the current assignment keeps the number of moves small: a VIP moves
 *    only when that reduces the imbalance.
 */
export interface VipLoad {
  vip: string;
  /** Measured load (bytes/s or packets/s from the balancers' counters). */
  load: number;
  /** Current owner. */
  owner: string | undefined;
}

export interface AssignmentResult {
  assignment: Map<string, string>;
  moves: { vip: string; from: string | undefined; to: string }[];
  loads: Map<string, number>;
  /** max |load - mean| / mean over healthy balancers (0 when the mean is 0). */
  imbalance: number;
}

export function computeAssignment(
  vips: readonly VipLoad[],
  healthy: readonly string[],
  options: { maxIterations?: number } = {},
): AssignmentResult {
  if (healthy.length === 0) throw new Error("no healthy balancer to assign VIPs to");
  const loadOf = new Map(vips.map((v) => [v.vip, Math.max(0, v.load)]));
  const assignment = new Map<string, string>();
  const loads = new Map(healthy.map((b) => [b, 0]));
  const orphans: VipLoad[] = [];
  for (const v of vips) {
    if (v.owner !== undefined && loads.has(v.owner)) {
      assignment.set(v.vip, v.owner);
      loads.set(v.owner, (loads.get(v.owner) ?? 0) + (loadOf.get(v.vip) ?? 0));
    } else orphans.push(v);
  }
  const leastLoaded = () =>
    [...loads.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0]?.[0] as string;
  orphans.sort((a, b) => b.load - a.load || a.vip.localeCompare(b.vip));
  for (const v of orphans) {
    const b = leastLoaded();
    assignment.set(v.vip, b);
    loads.set(b, (loads.get(b) ?? 0) + (loadOf.get(v.vip) ?? 0));
  }

  const vipsOf = (b: string) => [...assignment.entries()].filter(([, o]) => o === b).map(([v]) => v);
  const maxIterations = options.maxIterations ?? 10 * vips.length + 10;
  for (let it = 0; it < maxIterations && healthy.length > 1; it++) {
    const sorted = [...loads.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const [hi, hiLoad] = sorted[0] as [string, number];
    const [lo, loLoad] = sorted[sorted.length - 1] as [string, number];
    const gap = hiLoad - loLoad;
    if (gap <= 0) break;
    // Best single move: the VIP whose load is closest to half the gap (strictly < gap).
    let best: { give: string; take?: string; newGap: number } | undefined;
    for (const v of vipsOf(hi)) {
      const l = loadOf.get(v) ?? 0;
      if (l > 0 && l < gap) {
        const newGap = Math.abs(gap - 2 * l);
        if (!best || newGap < best.newGap) best = { give: v, newGap };
      }
      for (const w of vipsOf(lo)) {
        const d = l - (loadOf.get(w) ?? 0);
        if (d > 0 && d < gap) {
          const newGap = Math.abs(gap - 2 * d);
          if (!best || newGap < best.newGap) best = { give: v, take: w, newGap };
        }
      }
    }
    if (!best || best.newGap >= gap) break;
    const gl = loadOf.get(best.give) ?? 0;
    const tl = best.take ? (loadOf.get(best.take) ?? 0) : 0;
    assignment.set(best.give, lo);
    if (best.take) assignment.set(best.take, hi);
    loads.set(hi, hiLoad - gl + tl);
    loads.set(lo, loLoad + gl - tl);
  }

  const moves = vips
    .filter((v) => assignment.get(v.vip) !== v.owner)
    .map((v) => ({ vip: v.vip, from: v.owner, to: assignment.get(v.vip) as string }));
  const mean = [...loads.values()].reduce((a, b) => a + b, 0) / loads.size;
  const imbalance = mean > 0 ? Math.max(...[...loads.values()].map((l) => Math.abs(l - mean))) / mean : 0;
  return { assignment, moves, loads, imbalance };
}
