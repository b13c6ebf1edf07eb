import type { Capability } from "../../../vendor-adapters/types.ts";

/**
 * A suite case as declared in lib/certify/cases/<suite>.ts: its stable ID, what it shows,
 * the catalogue requirements it verifies and the device capabilities it needs (without
 * them the case is "not applicable" for that device).
 */
export interface CaseDef {
  id: string;
  title: string;
  requirements: readonly string[];
  needs?: readonly Capability[];
  /**
   * Set where the case cannot apply to any device of this run (e.g. a VRRPv2 case on the
   * IPv6 variant of the vrrp suite: VRRPv2 is IPv4 only): "not applicable" with this reason.
   */
  notApplicable?: string;
  /** Set while the reference role a case drives is not built yet: the case is skipped with this reason. */
  notYetAvailable?: string;
  /**
   * The case moves traffic through the forwarding devices (load through a hand-off, a
   * failover, a VIP move): it must attach a chart of packets per second per forwarding
   * device with the events marked (issue 17; test/natlb-charts.test.ts checks natlb's).
   */
  movesTraffic?: boolean;
}

export type CaseTable = Readonly<Record<string, CaseDef>>;

export function defineCases<const T extends Record<string, Omit<CaseDef, "id">>>(
  suite: string,
  table: T,
): { [K in keyof T]: CaseDef } {
  const out: Record<string, CaseDef> = {};
  for (const [id, def] of Object.entries(table)) {
    if (!id.startsWith(`${suite}.`)) throw new Error(`case ${id} must start with "${suite}."`);
    out[id] = { id, ...def };
  }
  return out as { [K in keyof T]: CaseDef };
}

/** The per-case record a suite run leaves in OUT/cases/<id>.json for the summary. */
export interface CaseRecord {
  id: string;
  suite: string;
  title: string;
  requirements: string[];
  /** "inconclusive": the case could not judge (incomplete evidence, see suites/support/evidence.ts). */
  status: "passed" | "failed" | "inconclusive" | "not-applicable" | "not-available";
  reason?: string;
  error?: string;
  evidence: { name: string; file: string; contentType: string }[];
  startedAt: string;
  durationMs: number;
}
