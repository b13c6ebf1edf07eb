import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { failedFigure, renderCertificationPage } from "../lib/certify/html.ts";
import type { CertificationSummary } from "../lib/certify/summary.ts";
import { launchChromium } from "../lib/report/browser.ts";
import { serveReport } from "../lib/report/serve.ts";
import { type ChartEvent, renderTimelineSvg } from "../lib/traffic/chart.ts";
import type { Timeline } from "../lib/traffic/stream-tally.ts";

/**
 * The report side of issue 17 item 5: charts of packets/s per forwarding device mark
 * events by kind, and the certification page shows, per failed requirement, the figure
 * that failed and the case's chart, as chromium renders it.
 */
const SHOTS = process.env.TANDEM_SCREENSHOTS ?? join(tmpdir(), "tandem-report-shots");

/** ra forwards until it crashes at 1 s, rb takes over at 1.3 s (50 ms bins, 1000 pps each). */
const T0 = 1_700_000_000_000;
const timeline: Timeline = {
  binMs: 50,
  startMs: T0,
  series: {
    "02:00:00:00:64:02": Array.from({ length: 40 }, (_, i) => (i < 20 ? 50 : 0)),
    "02:00:00:00:64:03": Array.from({ length: 40 }, (_, i) => (i >= 26 ? 50 : 0)),
  },
};
const names = { "02:00:00:00:64:02": "ra", "02:00:00:00:64:03": "rb" };
const events: ChartEvent[] = [
  { atMs: T0 + 200, label: "allocation 1", kind: "allocation" },
  { atMs: T0 + 1000, label: "ra crashed", kind: "crash" },
  { atMs: T0 + 1300, label: "rb master", kind: "takeover" },
  { atMs: T0 + 1350, label: "hand-off .13 to rb", kind: "hand-off" },
  { atMs: T0 + 1500, label: "VIP step: GARP", kind: "vip-move" },
];

describe("timeline chart with events", () => {
  it("draws one rule and one label per event, coloured by kind, with an events legend", async () => {
    const svg = await renderTimelineSvg(timeline, { names, events, title: "t" });
    for (const e of events) expect(svg).toContain(`>${e.label}<`);
    expect(svg).toContain(">events<");
    expect(svg).toContain(">forwarded by<");
    for (const k of ["allocation", "crash", "takeover", "hand-off", "vip-move"])
      expect(svg).toContain(`>${k}<`);
    // the rule colours (fill of the label, stroke of the rule) of crash and takeover
    expect(svg).toContain("#c00000");
    expect(svg).toContain("#d96c00");
    const plain = await renderTimelineSvg(timeline, { names });
    expect(plain).not.toContain(">events<");
  });

  it("refuses an unknown event kind, naming the event", async () => {
    await expect(
      renderTimelineSvg(timeline, { events: [{ atMs: T0, label: "x", kind: "boom" as never }] }),
    ).rejects.toThrow('chart event "x": unknown kind "boom"');
  });
});

describe("certification page, failed requirement", () => {
  let browser: Browser | undefined;
  let out: string | undefined;
  afterAll(async () => {
    await browser?.close();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it("shows the figure that failed and the chart, in chromium", async () => {
    out = await mkdtemp(join(tmpdir(), "tandem-page-"));
    mkdirSync(join(out, "evidence", "c1"), { recursive: true });
    writeFileSync(
      join(out, "evidence", "c1", "timeline.svg"),
      await renderTimelineSvg(timeline, { names, events, title: "packets/s forwarded per router" }),
    );
    const error =
      "datagrams forwarded twice on the wire: expected 11767 to be 0 // Object.is equality\n\n- Expected\n+ Received";
    const summary: CertificationSummary = {
      tool: "tandem",
      suite: "vrls",
      suiteTitle: "VRLS",
      device: { adapter: "reference", vendor: "Tandem", product: "reference roles", version: "0.1.0" },
      lab: { file: "labs/vrls-fig7.yaml", name: "fig7" },
      mode: "default",
      startedAt: new Date(T0).toISOString(),
      finishedAt: new Date(T0 + 100_000).toISOString(),
      wallTimeMs: 100_000,
      verdict: "not certified",
      verdictReason: "1 MUST requirement(s) failed: VRLS-FAIL-001",
      counts: {
        requirements: 2,
        cases: 2,
        pass: 1,
        fail: 1,
        inconclusive: 0,
        "not-applicable": 0,
        "not-run": 0,
      },
      requirements: [
        {
          id: "VRLS-FAIL-001",
          level: "MUST",
          group: "failure",
          source: "seed 000",
          text: "a new master takes over the dead master's end systems",
          verdict: "fail",
          cases: ["vrls.master-failure"],
        },
        {
          id: "VRLS-ALLOC-001",
          level: "MUST",
          group: "allocation",
          source: "seed 000",
          text: "allocates",
          verdict: "pass",
          cases: ["vrls.election"],
        },
      ],
      cases: [
        {
          id: "vrls.master-failure",
          title: "a new master rebuilds the allocation after a master failure",
          verdict: "fail",
          error,
          durationMs: 8000,
          evidence: [
            { name: "forwarding timeline", href: "evidence/c1/timeline.svg", contentType: "image/svg+xml" },
          ],
        },
        { id: "vrls.election", title: "election", verdict: "pass", durationMs: 4000, evidence: [] },
      ],
      allure: "allure/index.html",
    };
    expect(failedFigure(error)).toBe("datagrams forwarded twice on the wire: expected 11767 to be 0");
    writeFileSync(join(out, "index.html"), renderCertificationPage(summary, []));
    const served = await serveReport(out);
    try {
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(served.url);
      const block = page.locator('section.failed-req[data-requirement="VRLS-FAIL-001"]');
      expect(await block.locator("p.figure").textContent()).toBe(
        "failed on: datagrams forwarded twice on the wire: expected 11767 to be 0",
      );
      expect(await page.locator("section.failed-req").count()).toBe(1); // the passed one has none
      const img = block.locator("img.chart");
      await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.naturalWidth)).toBeGreaterThan(400);
      mkdirSync(SHOTS, { recursive: true });
      await block.screenshot({ path: join(SHOTS, "failed-requirement-synthetic.png") });
    } finally {
      await served.close();
    }
  }, 60_000);
});
