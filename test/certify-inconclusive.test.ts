import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CaseRecord } from "../lib/certify/cases/define.ts";
import { vrrpCases } from "../lib/certify/cases/vrrp.ts";
import { loadCatalogue } from "../lib/certify/catalogue.ts";
import { renderCertificationPage } from "../lib/certify/html.ts";
import { buildSummary, type CertificationSummary } from "../lib/certify/summary.ts";

// A case whose capture really dropped packets comes out inconclusive: the fixture suite
// (test/fixtures/inconclusive) runs two certCase cases under vitest as `tandem certify`
// runs a suite, with real tcpdump captures; the summary is built from what they leave.
let out: string;
let summary: CertificationSummary;
let log = "";

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "tandem-inconclusive-"));
  const root = join(import.meta.dirname, "..");
  const child = spawn(
    process.execPath,
    [
      join(root, "node_modules", "vitest", "vitest.mjs"),
      "run",
      "--config",
      join(root, "test/fixtures/inconclusive/vitest.config.ts"),
    ],
    {
      cwd: root,
      env: { ...process.env, TANDEM_OUT: out, FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout.on("data", (c: Buffer) => {
    log += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    log += c.toString();
  });
  await new Promise<void>((resolve) => child.on("close", () => resolve()));
  const catalogue = loadCatalogue();
  summary = buildSummary({
    catalogue,
    suite: "vrrp",
    caseTitles: {
      "vrrp.adv-format": vrrpCases["vrrp.adv-format"],
      "vrrp.fwd-master": vrrpCases["vrrp.fwd-master"],
    },
    out,
    device: { adapter: "stub", vendor: "v", product: "p", version: "1" },
    lab: { file: "scratch", name: "scratch" },
    mode: "default",
    startedAt: new Date(0),
    finishedAt: new Date(1000),
  });
}, 120_000);

afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe("a case whose capture dropped packets", () => {
  it("is inconclusive, never a pass: in its record, the summary and the certification page", () => {
    const record = JSON.parse(readFileSync(join(out, "cases", "vrrp.fwd-master.json"), "utf8")) as CaseRecord;
    expect(record.status, log).toBe("inconclusive");
    expect(record.reason).toMatch(
      /^inconclusive: incomplete evidence, no verdict - capture on dut:lo \(udp dst port 9\), \/tmp\/tandem-capture-\S+\.pcap: tcpdump dropped \d+ packets \(\d+ dropped by kernel, 0 dropped by interface; \d+ captured of 200000 received by filter\)$/,
    );
    const why = record.evidence.find((e) => e.name === "why inconclusive");
    expect(why, "the capture statistics are attached").toBeDefined();
    const stats = JSON.parse(readFileSync(why!.file, "utf8")) as { droppedByKernel: number }[];
    expect(stats[0]!.droppedByKernel).toBeGreaterThan(0);

    // vitest itself reports the case failed, not passed.
    const vitest = JSON.parse(readFileSync(join(out, "vitest.json"), "utf8")) as {
      testResults: { assertionResults: { title: string; status: string }[] }[];
    };
    const statuses = Object.fromEntries(
      vitest.testResults.flatMap((f) => f.assertionResults.map((a) => [a.title.split("]")[0], a.status])),
    );
    expect(statuses).toEqual({ "[vrrp.adv-format": "passed", "[vrrp.fwd-master": "failed" });

    const c = summary.cases.find((x) => x.id === "vrrp.fwd-master")!;
    expect(c.verdict).toBe("inconclusive");
    expect(c.reason).toBe(record.reason);
    expect(summary.cases.find((x) => x.id === "vrrp.adv-format")?.verdict).toBe("pass");
    expect(summary.requirements.find((r) => r.id === "VRRP-FWD-001")?.verdict).toBe("inconclusive");
    expect(summary.counts.inconclusive).toBe(1);
    expect(summary.counts.pass).toBe(5);
    expect(summary.verdict).toBe("not judged");
    expect(summary.verdictReason).toMatch(
      /1 MUST requirement\(s\) inconclusive \(incomplete evidence\): VRRP-FWD-001/,
    );

    const html = renderCertificationPage(summary, []);
    expect(html).toContain('data-requirement="VRRP-FWD-001" data-verdict="inconclusive"');
    expect(html).toContain("<h2>Inconclusive: incomplete evidence, no verdict</h2>");
    expect(html).toContain("1 inconclusive");

    // Allure: not passed either.
    const results = readdirSync(join(out, "allure-results"))
      .filter((f) => f.endsWith("-result.json"))
      .map(
        (f) =>
          JSON.parse(readFileSync(join(out, "allure-results", f), "utf8")) as {
            name: string;
            status: string;
          },
      );
    const allure = results.find((r) => r.name.startsWith("[vrrp.fwd-master]"));
    expect(allure?.status).not.toBe("passed");
    expect(existsSync(join(out, "cases", "vrrp.adv-format.json"))).toBe(true);
  });
});
