import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCatalogueText } from "../lib/certify/catalogue.ts";
import { renderJunit } from "../lib/certify/junit.ts";
import { buildSummary, type CertificationSummary } from "../lib/certify/summary.ts";
import { validateJunit } from "./junit-schema.ts";

/**
 * `tandem certify --junit`: the XML is validated with xmllint against
 * test/fixtures/junit.xsd (test/junit-schema.ts), the JUnit structure CI servers read. test/certify-cli.test.ts validates the file of a real keepalived run too.
 */
const catalogue = parseCatalogueText(
  [
    "version: 1",
    "suites:",
    "  vrrp: { title: VRRP, description: d }",
    "requirements:",
    ...[
      ["VRRP-A-001", "Timers", "MUST", "[vrrp.one]"],
      ["VRRP-A-002", "Timers", "MUST", "[vrrp.one, vrrp.two]"],
      ["VRRP-B-001", "Forwarding & <ARP>", "SHOULD", "[vrrp.three]"],
      ["VRRP-B-002", "Forwarding & <ARP>", "MUST", "[vrrp.four]"],
    ].flatMap(([id, group, level, cases]) => [
      `  - id: ${id}`,
      "    suite: vrrp",
      `    group: "${group}"`,
      `    level: ${level}`,
      "    source: RFC 5798 6.1",
      "    text: t",
      `    cases: ${cases}`,
    ]),
  ].join("\n"),
);

let dir: string;
let summary: CertificationSummary;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tandem-junit-"));
  const out = join(dir, "report");
  mkdirSync(join(out, "cases"), { recursive: true });
  const record = (id: string, r: object) =>
    writeFileSync(
      join(out, "cases", `${id}.json`),
      JSON.stringify({
        id,
        suite: "vrrp",
        title: id,
        requirements: [],
        startedAt: "",
        durationMs: 1500,
        ...r,
      }),
    );
  record("vrrp.one", {
    status: "passed",
    evidence: [{ name: "capture LAN", file: join(out, "evidence/vrrp.one/lan.pcap"), contentType: "x" }],
  });
  record("vrrp.two", { status: "failed", error: 'expected 10 to be 0 & "<none>"\u0001', evidence: [] });
  record("vrrp.three", { status: "inconclusive", reason: "capture dropped 3 packets", evidence: [] });
  record("vrrp.four", { status: "not-applicable", reason: "lacks ipv6", evidence: [] });
  writeFileSync(
    join(out, "vitest.json"),
    JSON.stringify({
      testResults: [
        {
          assertionResults: [
            { title: "[vrrp.one] 1", status: "passed" },
            { title: "[vrrp.two] 2", status: "failed", failureMessages: ["boom"] },
            { title: "[vrrp.three] 3", status: "failed", failureMessages: ["inc"] },
            { title: "[vrrp.four] 4", status: "skipped" },
          ],
        },
      ],
    }),
  );
  summary = buildSummary({
    catalogue,
    suite: "vrrp",
    caseTitles: {
      "vrrp.one": { title: "one" },
      "vrrp.two": { title: "two <&>" },
      "vrrp.three": { title: "three" },
      "vrrp.four": { title: "four" },
    },
    out,
    device: { adapter: "keepalived", vendor: "v", product: "p", version: "2.2.7 (01/16,2022)" },
    lab: { file: "f", name: "n" },
    mode: "default",
    startedAt: new Date("2026-12-02T10:00:00.123Z"),
    finishedAt: new Date("2026-12-02T10:01:00Z"),
  });
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("JUnit XML of a certification", () => {
  it("validates against the JUnit schema: one testcase per case, requirement group as classname", async () => {
    const file = join(dir, "junit.xml");
    const xml = renderJunit(summary, catalogue, { out: join(dir, "report"), junitFile: file, hostname: "h" });
    await writeFile(file, xml);
    const v = await validateJunit(file);
    expect(v.output).toContain("validates");
    expect(v.ok).toBe(true);
    expect(xml.match(/<testcase /g)).toHaveLength(4);
    expect(xml).toMatch(
      /<testsuite name="tandem.vrrp" tests="4" failures="1" errors="1" skipped="1" time="59.877" timestamp="2026-12-02T10:00:00"/,
    );
    expect(xml).toContain('classname="vrrp.Timers"');
    expect(xml).toContain('classname="vrrp.Forwarding &amp; &lt;ARP&gt;"');
    // Requirement IDs, levels and evidence paths (relative to the JUnit file) as properties.
    expect(xml).toContain('<property name="requirement" value="VRRP-A-002"/>');
    expect(xml).toContain('<property name="level.VRRP-A-002" value="MUST"/>');
    expect(xml).toContain(
      '<property name="evidence.capture LAN" value="report/evidence/vrrp.one/lan.pcap"/>',
    );
    expect(xml).toContain(
      '<failure message="expected 10 to be 0 &amp; &quot;&lt;none&gt;&quot;\uFFFD" type="fail">',
    );
    expect(xml).toContain('<error message="capture dropped 3 packets" type="inconclusive">');
    expect(xml).toContain('<skipped message="not-applicable: lacks ipv6"/>');
    expect(xml).toContain('<property name="verdict" value="not certified"/>');
  });

  it("the schema check can fail: a testcase without classname and a non-numeric count are rejected", async () => {
    const file = join(dir, "broken.xml");
    const xml = renderJunit(summary, catalogue, { out: join(dir, "report"), junitFile: file })
      .replace(/ classname="vrrp.Timers"/, "")
      .replace('tests="4" failures="1"', 'tests="four" failures="1"');
    await writeFile(file, xml);
    const v = await validateJunit(file);
    expect(v.ok).toBe(false);
    expect(v.output).toMatch(/classname.*required|required.*classname/i);
    expect(v.output).toMatch(/'four' is not a valid value/);
  });
});
