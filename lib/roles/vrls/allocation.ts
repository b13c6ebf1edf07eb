/**
 * Allocation of packet conditions to the healthy members of the virtual router
 * (seed, Initial Operation: "the number of total end systems divided by the
 * number of routers ... is allocated for each router"; a router in fault
 * condition gets nothing). Both algorithms are deterministic, so a new master
 * that learns the same conditions rebuilds the same allocation, and stable:
 * a condition stays with its current router unless the balance needs it moved.
 */

/** conditionKey -> member id (the member's registered address). */
export type Assignment = ReadonlyMap<string, string>;

export interface AllocationInput {
  /** Condition keys, in the order to hand them out (see compareConditions). */
  conditions: readonly string[];
  /** Healthy members, in priority order (master first). */
  members: readonly string[];
  /** The allocation in force, kept where it does not upset the balance. */
  current?: Assignment;
}

/** Equal counts: every member gets floor(n/m) or ceil(n/m) conditions, moving as few as possible. */
export function allocateEqualCounts(input: AllocationInput): Map<string, string> {
  const { conditions, members } = input;
  const out = new Map<string, string>();
  if (members.length === 0) return out;
  const base = Math.floor(conditions.length / members.length);
  let extra = conditions.length % members.length;
  const currentCount = new Map<string, number>(members.map((m) => [m, 0]));
  for (const c of conditions) {
    const owner = input.current?.get(c);
    if (owner !== undefined && currentCount.has(owner))
      currentCount.set(owner, (currentCount.get(owner) ?? 0) + 1);
  }
  // The members already holding more than the base keep the extra ones (fewer moves).
  const target = new Map<string, number>();
  const byLoad = [...members].sort((a, b) => (currentCount.get(b) ?? 0) - (currentCount.get(a) ?? 0));
  for (const m of byLoad) {
    target.set(m, base + (extra > 0 && (currentCount.get(m) ?? 0) > base ? 1 : 0));
    if ((target.get(m) ?? 0) > base) extra--;
  }
  for (const m of members) {
    if (extra > 0 && target.get(m) === base) {
      target.set(m, base + 1);
      extra--;
    }
  }
  const count = new Map<string, number>(members.map((m) => [m, 0]));
  const unplaced: string[] = [];
  for (const c of conditions) {
    const owner = input.current?.get(c);
    if (owner !== undefined && target.has(owner) && (count.get(owner) ?? 0) < (target.get(owner) ?? 0)) {
      out.set(c, owner);
      count.set(owner, (count.get(owner) ?? 0) + 1);
    } else unplaced.push(c);
  }
  for (const c of unplaced) {
    const m = members.find((x) => (count.get(x) ?? 0) < (target.get(x) ?? 0));
    if (m === undefined) break;
    out.set(c, m);
    count.set(m, (count.get(m) ?? 0) + 1);
  }
  return out;
}

/**
 * By flow rate (seed, Allocation reviewing: "place each condition in order of
 * the flow rate, and then ... allocate to each router substantially equal
 * amount"): biggest first, each to the least loaded member; a new end system
 * counts as rate zero. Ties go to the member listed first.
 */
export function allocateByRate(
  /** smallestFirst: the seeded fault vrls-realloc-smallest-first (the order inverted). */
  input: AllocationInput & { rateBps: ReadonlyMap<string, number>; smallestFirst?: boolean },
): Map<string, string> {
  const out = new Map<string, string>();
  if (input.members.length === 0) return out;
  const load = new Map<string, number>(input.members.map((m) => [m, 0]));
  const sign = input.smallestFirst ? -1 : 1;
  const order = [...input.conditions].sort(
    (a, b) =>
      sign * ((input.rateBps.get(b) ?? 0) - (input.rateBps.get(a) ?? 0)) ||
      input.conditions.indexOf(a) - input.conditions.indexOf(b),
  );
  for (const c of order) {
    let best = input.members[0] as string;
    for (const m of input.members) if ((load.get(m) ?? 0) < (load.get(best) ?? 0)) best = m;
    out.set(c, best);
    load.set(best, (load.get(best) ?? 0) + (input.rateBps.get(c) ?? 0));
  }
  return out;
}

/** Conditions whose router in charge differs between two allocations. */
export function movedConditions(
  before: Assignment,
  after: Assignment,
): { key: string; from: string | null; to: string }[] {
  const moves: { key: string; from: string | null; to: string }[] = [];
  for (const [key, to] of after) {
    const from = before.get(key) ?? null;
    if (from !== to) moves.push({ key, from, to });
  }
  return moves;
}
