import { join } from "node:path";
import { z } from "zod";
import { repoRoot } from "../remote/repo-root.ts";
import { isSeededFault, SEEDED_FAULTS, type SeededFaultName } from "../roles/seeded-faults.ts";
import { ConfigError, type ConfigIssue, SourceDocument } from "../topology/errors.ts";
import {
  CaseId,
  type Catalogue,
  loadCatalogue,
  RequirementId,
  SuiteName,
  type SuiteNameT,
} from "./catalogue.ts";

/**
 * suites/faults.yaml (issue 13): per seeded fault (lib/roles/seeded-faults.ts) the suite
 * whose campaign runs it and the requirement IDs that must fail under it; the small smoke
 * set of cases every fault run adds; and the few MUST requirements no fault can break in
 * the reference, each with its reason. Validated against the catalogue and the fault
 * switches with file, path and line in every error.
 */

export const FaultEntrySpec = z
  .object({
    name: z.string().min(1),
    suite: SuiteName,
    /** Requirement IDs that must fail under this fault. */
    expect: z.array(RequirementId).min(1, "a fault must name at least one requirement it breaks"),
    /** Why the expected requirements fail (optional prose). */
    note: z.string().min(1).optional(),
  })
  .strict();
export type FaultEntry = z.infer<typeof FaultEntrySpec> & { name: SeededFaultName };

export const FaultsSpec = z
  .object({
    version: z.literal(1),
    /** Cases every fault run of a suite adds to the cases of its expected requirements. */
    smoke: z.partialRecord(SuiteName, z.array(CaseId)),
    exemptions: z
      .array(z.object({ requirement: RequirementId, reason: z.string().min(10) }).strict())
      .default([]),
    faults: z.array(FaultEntrySpec),
  })
  .strict();

export interface FaultsCatalogue {
  file: string;
  smoke: Partial<Record<SuiteNameT, string[]>>;
  exemptions: { requirement: string; reason: string }[];
  faults: FaultEntry[];
}

export function defaultFaultsPath(): string {
  return join(repoRoot(), "suites", "faults.yaml");
}

export function loadFaults(
  file = defaultFaultsPath(),
  catalogue: Catalogue = loadCatalogue(),
): FaultsCatalogue {
  return parseFaults(SourceDocument.read(file), catalogue);
}

export function parseFaultsText(text: string, catalogue: Catalogue, file = "<inline>"): FaultsCatalogue {
  return parseFaults(new SourceDocument(file, text), catalogue);
}

function parseFaults(source: SourceDocument, catalogue: Catalogue): FaultsCatalogue {
  const data = source.parse(FaultsSpec, source.toJS());
  const issues: ConfigIssue[] = [];
  const requirement = (id: string) => catalogue.requirements.find((r) => r.id === id && !r.retired);
  const seen = new Map<string, number>();
  for (const [i, f] of data.faults.entries()) {
    const at = ["faults", i];
    if (!isSeededFault(f.name))
      issues.push(
        source.issue(
          [...at, "name"],
          `no such fault switch in lib/roles/seeded-faults.ts (known: ${Object.keys(SEEDED_FAULTS).join(", ")})`,
        ),
      );
    const first = seen.get(f.name);
    if (first !== undefined)
      issues.push(source.issue([...at, "name"], `fault listed twice (first at faults[${first}])`));
    else seen.set(f.name, i);
    for (const [j, id] of f.expect.entries()) {
      const r = requirement(id);
      if (!r) issues.push(source.issue([...at, "expect", j], `requirement not in ${catalogue.file}`));
      else if (r.suite !== f.suite)
        issues.push(source.issue([...at, "expect", j], `requirement of suite ${r.suite}, not ${f.suite}`));
    }
    if (new Set(f.expect).size !== f.expect.length)
      issues.push(source.issue([...at, "expect"], "a requirement is listed twice"));
  }
  for (const [suite, cases] of Object.entries(data.smoke)) {
    for (const [j, c] of (cases ?? []).entries()) {
      if (!catalogue.requirements.some((r) => r.suite === suite && r.cases.includes(c)))
        issues.push(source.issue(["smoke", suite, j], `no requirement of suite ${suite} names this case`));
    }
  }
  for (const [i, e] of data.exemptions.entries()) {
    if (!requirement(e.requirement))
      issues.push(source.issue(["exemptions", i, "requirement"], `requirement not in ${catalogue.file}`));
  }
  if (issues.length > 0) throw new ConfigError(source.file, issues);
  return {
    file: source.file,
    smoke: data.smoke,
    exemptions: data.exemptions,
    faults: data.faults as FaultEntry[],
  };
}

/** The cases a fault's run executes: those of its expected requirements plus the suite's smoke set. */
export function casesForFault(catalogue: Catalogue, faults: FaultsCatalogue, fault: FaultEntry): string[] {
  const ids = new Set<string>(faults.smoke[fault.suite] ?? []);
  for (const id of fault.expect)
    for (const c of catalogue.requirements.find((r) => r.id === id)?.cases ?? []) ids.add(c);
  return [...ids].sort();
}
