import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CertifyResult, runCertification } from "../lib/certify/run.ts";
import { launchChromium } from "../lib/report/browser.ts";
import { type ServedReport, serveReport } from "../lib/report/serve.ts";

/**
 * One real certification run: the vrrp suite against keepalived on the default lab, then
 * the published report opened in Debian's chromium. keepalived (2.2.7) forwards frames
 * sent to the virtual MAC while it is BACKUP on a hub, so VRRP-FWD-002 fails for real:
 * that is the failed case whose pcap the browser must find.
 */
const SHOTS = process.env.TANDEM_SCREENSHOTS ?? join(tmpdir(), "tandem-report-shots");

let out: string;
let first: CertifyResult;
let served: ServedReport | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "tandem-certify-"));
  first = await runCertification({ dut: "keepalived", suite: "vrrp", out });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await served?.close();
  if (out && !process.env.TANDEM_KEEP_REPORT) await rm(out, { recursive: true, force: true });
});

describe("tandem certify --dut keepalived --suite vrrp", () => {
  it("gives a verdict per requirement, explains the failure and exits non-zero", () => {
    const s = first.summary;
    expect(s.device).toMatchObject({ adapter: "keepalived", product: "keepalived" });
    expect(s.device.version).toMatch(/^v2\./);
    expect(s.counts.requirements).toBe(33);
    expect(s.counts["not-run"]).toBe(0);
    expect(s.requirements.every((r) => ["pass", "fail", "not-applicable"].includes(r.verdict))).toBe(true);
    const failed = s.requirements.filter((r) => r.verdict === "fail").map((r) => r.id);
    expect(failed).toContain("VRRP-FWD-002");
    expect(s.verdict).toBe("not certified");
    expect(first.exitCode).toBe(1);
    const fwd = s.cases.find((c) => c.id === "vrrp.fwd-backup-silent")!;
    expect(fwd.verdict).toBe("fail");
    expect(fwd.explanation).toMatch(/use_vmac/);
    // Every case that ran carries its captures, chart, device log and config.
    for (const c of s.cases.filter((x) => x.verdict === "pass" || x.verdict === "fail")) {
      const types = c.evidence.map((e) => e.contentType);
      expect(types, c.id).toContain("application/vnd.tcpdump.pcap");
      expect(types, c.id).toContain("image/svg+xml");
      for (const e of c.evidence) expect(existsSync(join(out, e.href)), e.href).toBe(true);
    }
    const onDisk = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
    expect(onDisk.verdict).toBe(s.verdict);
    expect(first.allureError).toBeUndefined();
    expect(existsSync(join(out, "allure", "index.html"))).toBe(true);
  });

  it("shows the certification page and the Allure report in chromium", async () => {
    served = await serveReport(out);
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

    await page.goto(served.url);
    await expect.poll(() => page.locator("#verdict").textContent()).toMatch(/NOT CERTIFIED.*VRRP-FWD-002/);
    expect(await page.locator('tr[data-requirement="VRRP-FWD-002"]').getAttribute("data-verdict")).toBe(
      "fail",
    );
    const failedCase = page.locator('section[data-case="vrrp.fwd-backup-silent"]');
    expect(await failedCase.getAttribute("data-verdict")).toBe("fail");
    const pcapHref = await failedCase
      .locator('a[data-type="application/vnd.tcpdump.pcap"]')
      .first()
      .getAttribute("href");
    const pcap = await page.request.get(new URL(pcapHref!, served.url).href);
    expect(pcap.status()).toBe(200);
    expect((await pcap.body()).readUInt32LE(0)).toBe(0xa1b2c3d4); // a real pcap file
    const chart = failedCase.locator("img.chart").first();
    await chart.scrollIntoViewIfNeeded();
    await expect.poll(() => chart.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(100);
    await failedCase.screenshot({ path: join(SHOTS, "certification-failed-case.png") });
    await page.screenshot({ path: join(SHOTS, "certification-page.png") });

    await page.goto(`${served.url}allure/index.html#suites`);
    for (const suite of ["vrrp: backup state", "vrrp: receive checks", "vrrp: preemption"]) {
      await page.getByText(suite, { exact: true }).waitFor({ timeout: 30_000 });
    }
    await page.getByText("vrrp: backup state", { exact: true }).click();
    await page.getByText("[vrrp.fwd-backup-silent]", { exact: false }).first().click();
    await page.getByText("capture LAN (backup)").first().waitFor({ timeout: 30_000 });
    await page.getByText("advertisement timeline").first().waitFor();
    await page.screenshot({ path: join(SHOTS, "allure-failed-case.png") });
    await page.getByText("advertisement timeline").first().click();
    await page
      .locator("img, object, svg")
      .filter({ hasNot: page.locator("nav") })
      .last()
      .waitFor();
    await page.screenshot({ path: join(SHOTS, "allure-chart.png") });
  }, 120_000);

  it("carries history into the next run so trends show", async () => {
    const second = await runCertification({ dut: "keepalived", suite: "vrrp", out, cases: "rx-vrid" });
    expect(second.summary.cases.find((c) => c.id === "vrrp.rx-vrid")?.verdict).toBe("pass");
    const history = JSON.parse(readFileSync(join(out, "history.json"), "utf8")) as unknown[];
    expect(history.length).toBe(2);
    const trend = JSON.parse(
      readFileSync(join(out, "allure", "history", "history-trend.json"), "utf8"),
    ) as unknown[];
    expect(trend.length).toBe(2);
  }, 300_000);
});
