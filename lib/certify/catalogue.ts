import { join } from "node:path";
import { z } from "zod";
import { repoRoot } from "../remote/repo-root.ts";
import { ConfigError, SourceDocument } from "../topology/errors.ts";

/**
 * The requirement catalogue (suites/catalogue.yaml): every testable requirement with a
 * stable ID, its source, its level and the suite cases that verify it. Parsed with the
 * topology loader's SourceDocument so a bad entry is reported with file, path and line.
 */

export const SUITE_NAMES = ["vrrp", "vrls", "natlb"] as const;
export const SuiteName = z.enum(SUITE_NAMES);
export type SuiteNameT = z.infer<typeof SuiteName>;

export const Level = z.enum(["MUST", "SHOULD", "MAY"]);
export type LevelT = z.infer<typeof Level>;

/** e.g. VRRP-TMR-003, VRLS-HANDOFF-EO-002, NATLB-MOVE-004 */
export const RequirementId = z
  .string()
  .regex(/^(VRRP|VRLS|NATLB)(-[A-Z0-9]+)+-\d{3}$/, "expected an ID like VRRP-TMR-003 (PREFIX-GROUP-NNN)");
/** e.g. vrrp.tmr-master-down */
export const CaseId = z
  .string()
  .regex(/^(vrrp|vrls|natlb)\.[a-z0-9]+(-[a-z0-9]+)*$/, "expected a case ID like vrrp.tmr-master-down");

export const RequirementSpec = z
  .object({
    id: RequirementId,
    suite: SuiteName,
    /** The requirement group: the Allure "feature". */
    group: z.string().min(1),
    level: Level,
    /** RFC section, or seed and figure. */
    source: z.string().min(1),
    text: z.string().min(1),
    cases: z.array(CaseId).min(1, "a requirement needs at least one verifying case"),
    retired: z.boolean().default(false),
  })
  .strict();
export type Requirement = z.infer<typeof RequirementSpec>;

export const CatalogueSpec = z
  .object({
    version: z.literal(1),
    suites: z.partialRecord(
      SuiteName,
      z.object({ title: z.string().min(1), description: z.string().min(1) }).strict(),
    ),
    requirements: z.array(RequirementSpec),
  })
  .strict();
export type Catalogue = z.infer<typeof CatalogueSpec> & { file: string };

export function defaultCataloguePath(): string {
  return join(repoRoot(), "suites", "catalogue.yaml");
}

/** Loads and validates the catalogue; throws ConfigError naming file, path, line and value. */
export function loadCatalogue(file = defaultCataloguePath()): Catalogue {
  return parseCatalogue(SourceDocument.read(file));
}

export function parseCatalogueText(text: string, file = "<inline>"): Catalogue {
  return parseCatalogue(new SourceDocument(file, text));
}

function parseCatalogue(source: SourceDocument): Catalogue {
  const data = source.parse(CatalogueSpec, source.toJS());
  const issues = [];
  const seen = new Map<string, number>();
  for (const [i, r] of data.requirements.entries()) {
    const first = seen.get(r.id);
    if (first !== undefined)
      issues.push(source.issue(["requirements", i, "id"], `duplicate ID (first at requirements[${first}])`));
    else seen.set(r.id, i);
    if (!r.id.startsWith(r.suite.toUpperCase()))
      issues.push(
        source.issue(
          ["requirements", i, "id"],
          `an ID of suite ${r.suite} must start with ${r.suite.toUpperCase()}-`,
        ),
      );
    for (const [j, c] of r.cases.entries()) {
      if (!c.startsWith(`${r.suite}.`))
        issues.push(
          source.issue(
            ["requirements", i, "cases", j],
            `a case of suite ${r.suite} must start with "${r.suite}."`,
          ),
        );
    }
    if (!data.suites[r.suite])
      issues.push(
        source.issue(["requirements", i, "suite"], `suite ${r.suite} is not declared under suites:`),
      );
  }
  if (issues.length > 0) throw new ConfigError(source.file, issues);
  return { ...data, file: source.file };
}

export function requirementsOf(catalogue: Catalogue, suite: SuiteNameT): Requirement[] {
  return catalogue.requirements.filter((r) => r.suite === suite && !r.retired);
}

/** Requirement IDs that name `caseId` among their verifying cases. */
export function requirementsVerifiedBy(catalogue: Catalogue, caseId: string): Requirement[] {
  return catalogue.requirements.filter((r) => r.cases.includes(caseId));
}

/** Allure severity for a level: a failed MUST blocks certification. */
export function severityOf(level: LevelT): "blocker" | "normal" | "minor" {
  return level === "MUST" ? "blocker" : level === "SHOULD" ? "normal" : "minor";
}
