import type { CaseTable } from "./cases/define.ts";
import { natlbCases } from "./cases/natlb.ts";
import { vrlsCases } from "./cases/vrls.ts";
import { vrrpCases } from "./cases/vrrp.ts";
import type { SuiteNameT } from "./catalogue.ts";

/**
 * The suite registry, the way vendor-adapters/index.ts registers device families: a suite
 * is its vitest files in suites/<name>/, its case table in lib/certify/cases/<name>.ts and
 * one line below. lib/certify never imports suites/ (it runs them as vitest files); the
 * suites import their case table and the catalogue from here, so the dependency runs one
 * way (issue 12).
 */
export const SUITE_CASES: Readonly<Record<SuiteNameT, CaseTable>> = {
  vrrp: vrrpCases,
  vrls: vrlsCases,
  natlb: natlbCases,
};
