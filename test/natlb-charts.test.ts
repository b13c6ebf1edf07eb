import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natlbCases } from "../lib/certify/cases/natlb.ts";
import { type CertifyResult, runCertification } from "../lib/certify/run.ts";
import { forwardingTimeline } from "../lib/traffic/forwarding-timeline.ts";

/**
 * Issue 17 item 5 for NAT-LB: one real certification run of the natlb suite on the
 * reference (two Fig. 3 labs, about 45 s), then every case the catalogue marks as moving
 * traffic must carry its chart of packets per second per balancer, in the summary (the
 * certification page) and in the Allure results, with the events at the run's own times.
 */
const SERVER = "198.18.10.11";
const VIP1 = "198.51.100.11";

let out: string;
let run: CertifyResult;

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "tandem-natlb-charts-"));
  run = await runCertification({
    dut: "reference",
    suite: "natlb",
    out,
    allure: false,
    handleSignals: false,
  });
}, 300_000);

afterAll(async () => {
  if (out && !process.env.TANDEM_KEEP_REPORT) await rm(out, { recursive: true, force: true });
});

const moving = Object.values(natlbCases).filter((d) => d.movesTraffic && !d.notYetAvailable);
const caseOf = (id: string) => run.summary.cases.find((c) => c.id === id)!;
const chartOf = (id: string) => {
  const e = caseOf(id).evidence.find((x) => x.contentType === "image/svg+xml");
  return e ? readFileSync(join(out, e.href), "utf8") : undefined;
};
const measured = (id: string, file: string) => {
  const e = caseOf(id).evidence.find((x) => x.href.endsWith(file));
  if (!e) throw new Error(`${id}: no ${file}`);
  return JSON.parse(readFileSync(join(out, e.href), "utf8"));
};

interface AllureStep {
  attachments?: { type: string; source: string }[];
  steps?: AllureStep[];
}
function allureAttachments(s: AllureStep): { type: string; source: string }[] {
  return [...(s.attachments ?? []), ...(s.steps ?? []).flatMap(allureAttachments)];
}

describe("natlb charts (issue 17 item 5)", () => {
  it("the catalogue marks the cases that move traffic", () => {
    expect(moving.map((d) => d.id).sort()).toEqual([
      "natlb.conn-table",
      "natlb.copy-keeping",
      "natlb.dnat",
      "natlb.failover",
      "natlb.failover-no-transition",
      "natlb.fullnat",
      "natlb.move",
      "natlb.rebalance",
    ]);
  });

  it("every case that moves traffic attaches its chart, on the certification page and in Allure", () => {
    expect(run.summary.verdict, run.summary.verdictReason).toBe("certified");
    const results = readdirSync(join(out, "allure-results"))
      .filter((f) => f.endsWith("-result.json"))
      .map((f) => JSON.parse(readFileSync(join(out, "allure-results", f), "utf8")));
    for (const def of moving) {
      expect(caseOf(def.id).verdict, def.id).toBe("pass");
      const svg = chartOf(def.id);
      expect(svg, `${def.id}: chart on the certification page`).toBeDefined();
      expect(svg, def.id).toContain(">forwarded by<");
      expect(svg, `${def.id}: events legend`).toContain(">events<");
      for (const balancer of ["lba", "lbb"])
        expect(svg, `${def.id}: series ${balancer}`).toContain(`>${balancer}<`);
      const result = results.find((r) => r.testCaseId === def.id);
      expect(result, `${def.id}: Allure result`).toBeDefined();
      const charts = allureAttachments(result).filter((a) => a.type === "image/svg+xml");
      expect(charts.length, `${def.id}: chart in Allure`).toBeGreaterThan(0);
      for (const c of charts) expect(existsSync(join(out, "allure-results", c.source))).toBe(true);
    }
  });

  it("the failover chart: lbb forwards until its crash, lba after the takeover, events at the run's times", async () => {
    const svg = chartOf("natlb.failover") ?? "";
    expect(svg, "natlb.failover's chart").not.toBe("");
    const f = measured("natlb.failover", "measurements-failover.json");
    const vip1 = (
      f.moves as { vip: string; startedAt: number; steps: { step: string; at: number }[] }[]
    ).find((m) => m.vip === VIP1)!;
    expect(vip1, "VIP1's failover move").toBeDefined();
    // The controller's times sit between the suite's own: kill < move start < steps < failure reported.
    const times = [f.failedAt, vip1.startedAt, ...vip1.steps.map((s) => s.at), f.reportedAt];
    expect(times, "failedAt, move start, step ends, reportedAt").toEqual([...times].sort((a, b) => a - b));
    expect(svg).toContain(">lbb killed (process, links down)<");
    expect(svg).toContain(`>takeover: ${VIP1} to lba<`);
    expect(svg).toMatch(/>step 3: \d+ entries from the servers' copies</);
    for (const colour of ["#c00000", "#d96c00", "#008b8b"]) expect(svg, colour).toContain(colour);
    // What the chart is drawn from: the server-side capture, by the balancer that sent each packet.
    const pcap = caseOf("natlb.failover").evidence.find(
      (e) => e.contentType === "application/vnd.tcpdump.pcap",
    )!;
    const { timeline, names } = await forwardingTimeline(join(out, pcap.href), SERVER, f.internalMacs);
    const byName = (n: string) =>
      Object.entries(timeline.series).find(([mac]) => names[mac] === n)?.[1] ?? [];
    const sum = (xs: number[], from: number, to: number) =>
      xs.reduce((a, c, i) => {
        const t = timeline.startMs + i * timeline.binMs;
        return t >= from && t < to ? a + c : a;
      }, 0);
    expect(sum(byName("lbb"), 0, f.failedAt), "packets lbb forwarded before the crash").toBeGreaterThan(0);
    expect(sum(byName("lbb"), f.killedAt + timeline.binMs, Number.MAX_SAFE_INTEGER), "after").toBe(0);
    expect(sum(byName("lba"), 0, f.failedAt), "packets lba forwarded before the takeover").toBe(0);
    expect(sum(byName("lba"), vip1.startedAt, Number.MAX_SAFE_INTEGER), "after").toBeGreaterThan(0);
  });

  it("the move chart marks the four steps and the gratuitous ARPs", () => {
    const svg = chartOf("natlb.move") ?? "";
    expect(svg, "natlb.move's chart").not.toBe("");
    for (const label of [
      "step 1: transition mode",
      "step 2: route (GARP)",
      "step 3: entries",
      "step 4: end of transition",
      `GARP ${VIP1} (internet)`,
    ])
      expect(svg, label).toContain(`>${label}<`);
  });
});
