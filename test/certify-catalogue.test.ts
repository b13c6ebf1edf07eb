import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadCatalogue, parseCatalogueText } from "../lib/certify/catalogue.ts";
import { SUITE_CASES } from "../lib/certify/suites.ts";
import { ConfigError } from "../lib/topology/errors.ts";

const catalogue = loadCatalogue();

describe("requirement catalogue (suites/catalogue.yaml)", () => {
  it("every case a requirement names exists in its suite, and names that requirement back", () => {
    const problems: string[] = [];
    for (const r of catalogue.requirements) {
      for (const c of r.cases) {
        const def = SUITE_CASES[r.suite][c];
        if (!def) problems.push(`${r.id}: case ${c} does not exist in lib/certify/cases/${r.suite}.ts`);
        else if (!def.requirements.includes(r.id)) problems.push(`${r.id}: case ${c} does not name ${r.id}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("every case names at least one requirement, each in the catalogue and listing the case", () => {
    const problems: string[] = [];
    for (const [suite, cases] of Object.entries(SUITE_CASES)) {
      for (const def of Object.values(cases)) {
        if (def.requirements.length === 0) problems.push(`${def.id}: names no requirement`);
        for (const id of def.requirements) {
          const r = catalogue.requirements.find((x) => x.id === id);
          if (!r) problems.push(`${def.id}: ${id} is not in the catalogue`);
          else if (r.suite !== suite) problems.push(`${def.id}: ${id} belongs to suite ${r.suite}`);
          else if (!r.cases.includes(def.id)) problems.push(`${def.id}: ${id} does not list it`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("every case is run by its suite file (by name, or in the not-yet-available loop)", () => {
    for (const [suite, cases] of Object.entries(SUITE_CASES)) {
      const source = readFileSync(`suites/${suite}/${suite}.suite.ts`, "utf8");
      const loop = /Object\.values\(C\)\.filter\(\(d\) => d\.notYetAvailable\)/.test(source);
      for (const [id, def] of Object.entries(cases)) {
        const named = source.includes(`C["${id}"]`);
        expect(
          named || (loop && Boolean(def.notYetAvailable)),
          `${id} in suites/${suite}/${suite}.suite.ts`,
        ).toBe(true);
        expect(named && Boolean(def.notYetAvailable), `${id} is driven and marked not yet available`).toBe(
          false,
        );
      }
    }
  });

  it("covers RFC 5798 at least as widely as the UNH-IOL VRRP groups, and both seeds", () => {
    const ids = catalogue.requirements.map((r) => r.id);
    for (const group of [
      "VRRP-ADV",
      "VRRP-TMR",
      "VRRP-STM",
      "VRRP-PRE",
      "VRRP-PRI0",
      "VRRP-RX",
      "VRRP-ARP",
    ]) {
      expect(
        ids.some((id) => id.startsWith(group)),
        group,
      ).toBe(true);
    }
    // Seed 000 procedures and message types 2..8; seed 002's four steps and copy keeping.
    for (const id of [
      "VRLS-RESP-001",
      "VRLS-DISC-001",
      "VRLS-ALLOC-002",
      "VRLS-HANDOFF-SEQ-001",
      "VRLS-REVIEW-002",
      "VRLS-SUB-001",
    ]) {
      expect(ids).toContain(id);
    }
    for (const step of [1, 2, 3, 4]) expect(ids).toContain(`NATLB-MOVE-00${step}`);
    expect(ids).toContain("NATLB-FAIL-002");
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("reports a bad entry with file, path, line and value", () => {
    const text = [
      "version: 1",
      "suites:",
      "  vrrp: { title: t, description: d }",
      "requirements:",
      "  - id: VRRP-TMR-001",
      "    suite: vrrp",
      "    group: Timers",
      "    level: MUSTN'T",
      "    source: RFC 5798 6.1",
      "    text: x",
      "    cases: [vrrp.a]",
    ].join("\n");
    let error: unknown;
    try {
      parseCatalogueText(text, "bad.yaml");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(
      /^bad\.yaml:8:\d+: requirements\[0\]\.level: .*\(value: "MUSTN'T"\)/,
    );
  });

  it("rejects duplicate IDs and cases of another suite, naming the line", () => {
    const entry = (id: string, c: string) => [
      `  - id: ${id}`,
      "    suite: vrrp",
      "    group: g",
      "    level: MUST",
      "    source: s",
      "    text: t",
      `    cases: [${c}]`,
    ];
    const text = [
      "version: 1",
      "suites:",
      "  vrrp: { title: t, description: d }",
      "requirements:",
      ...entry("VRRP-X-001", "vrrp.a"),
      ...entry("VRRP-X-001", "vrls.b"),
    ].join("\n");
    expect(() => parseCatalogueText(text, "dup.yaml")).toThrow(
      /dup\.yaml:12:\d+: requirements\[1\]\.id: duplicate ID/,
    );
    expect(() => parseCatalogueText(text, "dup.yaml")).toThrow(
      /requirements\[1\]\.cases\[0\]: a case of suite vrrp/,
    );
  });
});
