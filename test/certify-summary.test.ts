import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseCatalogueText } from "../lib/certify/catalogue.ts";
import { renderCertificationPage } from "../lib/certify/html.ts";
import { buildSummary, exitCodeOf } from "../lib/certify/summary.ts";

// Verdict rules of the certification summary, on the files a suite run leaves behind.
const catalogue = parseCatalogueText(
  [
    "version: 1",
    "suites:",
    "  vrrp: { title: VRRP, description: d }",
    "requirements:",
    ...[
      ["VRRP-A-001", "MUST", "[vrrp.one]"],
      ["VRRP-A-002", "MUST", "[vrrp.one, vrrp.two]"],
      ["VRRP-A-003", "SHOULD", "[vrrp.three]"],
      ["VRRP-A-004", "MUST", "[vrrp.four]"],
    ].flatMap(([id, level, cases]) => [
      `  - id: ${id}`,
      "    suite: vrrp",
      "    group: G",
      `    level: ${level}`,
      "    source: RFC 5798 6.1",
      "    text: t <b>",
      `    cases: ${cases}`,
    ]),
  ].join("\n"),
);

let out: string | undefined;
afterEach(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

async function run(
  statuses: Record<string, string>,
  records: Record<string, { status: string; reason?: string; error?: string }>,
  extra: { interrupted?: string; deviceReached?: boolean } = {},
) {
  out = await mkdtemp(join(tmpdir(), "tandem-summary-"));
  mkdirSync(join(out, "cases"));
  for (const [id, r] of Object.entries(records)) {
    writeFileSync(
      join(out, "cases", `${id}.json`),
      JSON.stringify({
        id,
        suite: "vrrp",
        title: id,
        requirements: [],
        evidence: [],
        startedAt: "",
        durationMs: 5,
        ...r,
      }),
    );
  }
  writeFileSync(
    join(out, "vitest.json"),
    JSON.stringify({
      testResults: [
        {
          assertionResults: Object.entries(statuses).map(([id, status]) => ({
            title: `[${id}] t`,
            status,
            failureMessages: status === "failed" ? ["boom"] : [],
          })),
        },
      ],
    }),
  );
  return buildSummary({
    catalogue,
    suite: "vrrp",
    caseTitles: {
      "vrrp.one": { title: "1" },
      "vrrp.two": { title: "2" },
      "vrrp.three": { title: "3" },
      "vrrp.four": { title: "4" },
    },
    out,
    device: { adapter: "x", vendor: "v", product: "p", version: "1" },
    lab: { file: "f", name: "n" },
    mode: "default",
    startedAt: new Date(0),
    finishedAt: new Date(1000),
    explanations: { "vrrp.two": "because" },
    ...extra,
  });
}

describe("certification summary", () => {
  it("a failed case fails every requirement it verifies, and a failed MUST blocks certification", async () => {
    const s = await run(
      { "vrrp.one": "passed", "vrrp.two": "failed", "vrrp.three": "passed", "vrrp.four": "passed" },
      { "vrrp.two": { status: "failed" } },
    );
    expect(Object.fromEntries(s.requirements.map((r) => [r.id, r.verdict]))).toEqual({
      "VRRP-A-001": "pass",
      "VRRP-A-002": "fail",
      "VRRP-A-003": "pass",
      "VRRP-A-004": "pass",
    });
    expect(s.verdict).toBe("not certified");
    expect(s.verdictReason).toMatch(/VRRP-A-002/);
    expect(s.cases.find((c) => c.id === "vrrp.two")).toMatchObject({
      verdict: "fail",
      error: "boom",
      explanation: "because",
    });
  });

  it("not applicable does not block; a MUST that did not run leaves the run not judged", async () => {
    const na = await run(
      { "vrrp.one": "passed", "vrrp.two": "passed", "vrrp.three": "skipped", "vrrp.four": "skipped" },
      {
        "vrrp.three": { status: "not-applicable", reason: "lacks x" },
        "vrrp.four": { status: "not-applicable", reason: "lacks y" },
      },
    );
    expect(na.verdict).toBe("certified");
    expect(na.counts).toMatchObject({ pass: 2, "not-applicable": 2, fail: 0, "not-run": 0 });
    const unrun = await run(
      { "vrrp.one": "passed", "vrrp.two": "passed", "vrrp.three": "passed", "vrrp.four": "skipped" },
      { "vrrp.four": { status: "not-available", reason: "later" } },
    );
    expect(unrun.verdict).toBe("not judged");
    expect(exitCodeOf(unrun)).toBe(3);
    expect(unrun.requirements.find((r) => r.id === "VRRP-A-004")?.verdict).toBe("not-run");
    expect(unrun.cases.find((c) => c.id === "vrrp.four")?.reason).toBe("later");
  });

  it("an inconclusive case (incomplete evidence) is neither pass nor fail; a MUST left inconclusive is not judged", async () => {
    const reason = "inconclusive: incomplete evidence, no verdict - capture on sink:eth0: 3 packets missing";
    const s = await run(
      { "vrrp.one": "passed", "vrrp.two": "failed", "vrrp.three": "failed", "vrrp.four": "passed" },
      {
        "vrrp.two": { status: "inconclusive", reason },
        "vrrp.three": { status: "inconclusive", reason },
      },
    );
    expect(Object.fromEntries(s.requirements.map((r) => [r.id, r.verdict]))).toEqual({
      "VRRP-A-001": "pass",
      "VRRP-A-002": "inconclusive",
      "VRRP-A-003": "inconclusive",
      "VRRP-A-004": "pass",
    });
    expect(s.cases.find((c) => c.id === "vrrp.two")).toMatchObject({ verdict: "inconclusive", reason });
    expect(s.cases.find((c) => c.id === "vrrp.two")?.explanation).toBeUndefined();
    expect(s.counts).toMatchObject({ pass: 2, fail: 0, inconclusive: 2, "not-run": 0 });
    expect(s.verdict).toBe("not judged");
    expect(exitCodeOf(s)).toBe(3);
    expect(s.verdictReason).toBe("1 MUST requirement(s) inconclusive (incomplete evidence): VRRP-A-002");
    // A failure among a requirement's cases still makes it fail.
    const failed = await run(
      { "vrrp.one": "failed", "vrrp.two": "failed", "vrrp.three": "passed", "vrrp.four": "passed" },
      { "vrrp.two": { status: "inconclusive", reason } },
    );
    expect(failed.requirements.find((r) => r.id === "VRRP-A-002")?.verdict).toBe("fail");
    expect(failed.verdict).toBe("not certified");
    expect(exitCodeOf(failed)).toBe(1);
    // Only the SHOULD inconclusive: certified, and the page lists it apart.
    const should = await run(
      { "vrrp.one": "passed", "vrrp.two": "passed", "vrrp.three": "failed", "vrrp.four": "passed" },
      { "vrrp.three": { status: "inconclusive", reason } },
    );
    expect(should.verdict).toBe("certified");
    const html = renderCertificationPage(should, []);
    expect(html).toContain('data-case="vrrp.three" data-verdict="inconclusive"');
    expect(html).toContain("<h2>Inconclusive: incomplete evidence, no verdict</h2>");
  });

  it("a suite that never ran leaves every case not run, and nothing passes", async () => {
    const s = await run({}, {});
    expect(s.counts["not-run"]).toBe(4);
    expect(s.verdict).toBe("not judged");
    expect(s.cases[0]?.reason).toMatch(/did not run/);
  });

  it("a run whose lab or device never came up judges nothing: its failed tests are cases that did not run", async () => {
    const error = "the suite's device was not set up (see the beforeAll error)";
    const s = await run(
      { "vrrp.one": "failed", "vrrp.two": "failed", "vrrp.three": "failed", "vrrp.four": "failed" },
      { "vrrp.one": { status: "failed", error } },
      { deviceReached: false },
    );
    expect(s.cases.map((c) => c.verdict)).toEqual(["not-run", "not-run", "not-run", "not-run"]);
    expect(s.counts).toMatchObject({ fail: 0, "not-run": 4 });
    expect(s.verdict).toBe("not judged");
    expect(s.verdictReason).toBe("the lab or the device did not come up: boom; no requirement is judged");
    expect(exitCodeOf(s)).toBe(3);
  });

  it("an interrupted run judges no requirement, whatever its finished cases showed", async () => {
    const s = await run(
      { "vrrp.one": "passed", "vrrp.two": "failed" },
      { "vrrp.one": { status: "passed" }, "vrrp.two": { status: "failed" } },
      { interrupted: "SIGINT" },
    );
    expect(s.requirements.map((r) => r.verdict)).toEqual(["not-run", "not-run", "not-run", "not-run"]);
    expect(s.cases.find((c) => c.id === "vrrp.two")?.verdict).toBe("fail");
    expect(s.verdict).toBe("not judged");
    expect(s.interrupted).toBe("SIGINT");
    expect(s.verdictReason).toBe("interrupted by SIGINT after 2 of 4 cases; no requirement is judged");
    expect(exitCodeOf(s)).toBe(3);
  });

  it("the page escapes what it shows", async () => {
    const s = await run(
      { "vrrp.one": "passed", "vrrp.two": "passed", "vrrp.three": "passed", "vrrp.four": "passed" },
      {},
    );
    const html = renderCertificationPage(s, []);
    expect(html).toContain("t &lt;b&gt;");
    expect(html).not.toContain("t <b>");
    expect(html).toContain('data-requirement="VRRP-A-001" data-verdict="pass"');
  });
});
