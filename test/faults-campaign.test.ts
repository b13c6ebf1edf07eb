// `tandem faults` end to end (issue 13): the natlb campaign with one seeded fault
// (natlb-no-garp: the receiving balancer announces nothing) on the real lab: the clean run
// certifies, the fault's restricted run fails NATLB-MOVE-002 from the wire (no gratuitous
// ARP from lbb), and the matrix page, opened in chromium, links the failing case's
// evidence and is linked from the clean run's certification page.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { type FaultsEvent, runFaultCampaign, type SuiteCampaign } from "../lib/certify/faults.ts";
import { launchChromium } from "../lib/report/browser.ts";
import { type ServedReport, serveReport } from "../lib/report/serve.ts";

const OUT = join(tmpdir(), `tandem-faults-test-${process.pid}`);
const SHOTS = process.env.TANDEM_SCREENSHOTS ?? join(tmpdir(), "tandem-report-shots");
let browser: Browser | undefined;
let served: ServedReport | undefined;

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await rm(OUT, { recursive: true, force: true });
});

describe("tandem faults --suite natlb --fault natlb-no-garp", () => {
  let campaign: SuiteCampaign | undefined;

  it("certifies the clean run and catches the fault by NATLB-MOVE-002, judged from the wire", async () => {
    const lines: string[] = [];
    const events: FaultsEvent[] = [];
    const [c] = await runFaultCampaign({
      suite: "natlb",
      out: OUT,
      only: ["natlb-no-garp"],
      onProgress: (l) => lines.push(l),
      onEvent: (e) => events.push(e),
    });
    campaign = c;
    expect(c?.clean.verdict, `clean run: ${c?.clean.reason}`).toBe("certified");
    const f = c?.faults[0];
    expect(f?.fault).toBe("natlb-no-garp");
    expect(f?.expected).toEqual(["NATLB-MOVE-002"]);
    expect(f?.failed, "requirements failed under natlb-no-garp").toContain("NATLB-MOVE-002");
    expect(f?.verdict).toBe("caught");
    expect(f?.failingCase["NATLB-MOVE-002"]).toBe("natlb.move");
    // The failing case says why, from the wire.
    const failing = JSON.parse(readFileSync(join(OUT, "natlb", f!.dir, "summary.json"), "utf8")) as {
      cases: { id: string; error?: string }[];
    };
    expect(failing.cases.find((x) => x.id === "natlb.move")?.error).toMatch(
      /gratuitous ARP for 198\.51\.100\.11/,
    );
    // Progress: one line per run.
    expect(lines.filter((l) => /natlb-no-garp: CAUGHT/.test(l))).toHaveLength(1);
    expect(
      lines.filter((l) => /fault 1\/1 natlb-no-garp: CAUGHT .* so far 1 caught, 0 missed$/.test(l)),
    ).toHaveLength(1);
    // Live progress for the CLI's bar: each run's start and end, each finished case in between.
    expect(events.filter((e) => e.type !== "case-end").map((e) => [e.type, e.run, e.index])).toEqual([
      ["run-start", "clean", 0],
      ["run-end", "clean", 0],
      ["run-start", "natlb-no-garp", 1],
      ["run-end", "natlb-no-garp", 1],
    ]);
    expect(events.filter((e) => e.type === "case-end" && e.run === "clean").length).toBeGreaterThan(5);
    expect(events.at(-1)).toMatchObject({ verdict: "caught", caught: 1, missed: 0 });
    expect(c?.ok).toBe(true);
    const json = JSON.parse(readFileSync(join(OUT, "natlb", "faults.json"), "utf8")) as SuiteCampaign;
    expect(json.faults.map((x) => [x.fault, x.verdict])).toEqual([["natlb-no-garp", "caught"]]);
  }, 600_000);

  it("shows the matrix in chromium, linked from the clean certification page, cells linking the evidence", async () => {
    expect(campaign, "the campaign ran").toBeDefined();
    served = await serveReport(join(OUT, "natlb"));
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
    await page.goto(`${served.url}clean/index.html`);
    await page.locator("a.extra-link", { hasText: "seeded-fault matrix" }).click();
    await page.waitForURL(/matrix\.html$/);
    expect(await page.locator("#summary").textContent()).toMatch(/1 of 1 faults caught/);
    const row = page.locator('tr[data-fault="natlb-no-garp"]');
    expect(await row.getAttribute("data-verdict")).toBe("caught");
    const cell = row.locator('td[data-requirement="NATLB-MOVE-002"]');
    expect(await cell.getAttribute("class")).toBe("caught");
    await mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, "fault-matrix-natlb.png"), fullPage: true });
    await cell.locator("a").click();
    await page.waitForURL(/faults\/natlb-no-garp\/index\.html#case-natlb-move$/);
    const section = page.locator('section[data-case="natlb.move"]');
    expect(await section.getAttribute("data-verdict")).toBe("fail");
    const arpHref = await section.locator("a", { hasText: "ARP capture internet side" }).getAttribute("href");
    expect(arpHref).toBeTruthy();
    expect(existsSync(join(OUT, "natlb", "faults", "natlb-no-garp", arpHref!))).toBe(true);
  }, 120_000);
});
