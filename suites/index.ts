import { natlbCases } from "./natlb/cases.ts";
import type { CaseDef } from "./support/cases.ts";
import { vrlsCases } from "./vrls/cases.ts";
import { vrrpCases } from "./vrrp/cases.ts";

/** Every suite's case table, for the catalogue cross-check and the certification summary. */
export const SUITE_CASES: Readonly<Record<"vrrp" | "vrls" | "natlb", Readonly<Record<string, CaseDef>>>> = {
  vrrp: vrrpCases,
  vrls: vrlsCases,
  natlb: natlbCases,
};
