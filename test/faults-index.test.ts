// `tandem faults --suite all` (issue 13): the combined index (OUT/faults.json) and the one
// matrix page (OUT/matrix.html) over the three suites' campaigns, from campaign results as
// lib/certify/faults.ts writes them per suite. Pure: the campaigns themselves run on the lab
// in test/faults-campaign.test.ts.
import { describe, expect, it } from "vitest";
import { campaignIndex, renderCampaignIndex, type SuiteCampaign } from "../lib/certify/faults.ts";

function campaign(suite: SuiteCampaign["suite"], missed: string[], clean = "certified"): SuiteCampaign {
  const fault = (name: string, expected: string, failed: boolean) => ({
    fault: name,
    expected: [expected],
    failed: failed ? [expected] : [],
    caught: failed ? [expected] : [],
    missed: failed ? [] : [expected],
    collateral: [],
    verdict: failed ? ("caught" as const) : ("missed" as const),
    cases: [],
    wallTimeMs: 10_000,
    dir: `faults/${name}`,
    failingCase: failed ? { [expected]: `${suite}.case` } : {},
  });
  const faults = [fault(`${suite}-a`, `${suite.toUpperCase()}-1`, !missed.includes(`${suite}-a`))];
  faults.push(fault(`${suite}-b`, `${suite.toUpperCase()}-2`, !missed.includes(`${suite}-b`)));
  const ok = clean === "certified" && faults.every((f) => f.verdict === "caught");
  return {
    suite,
    clean: {
      verdict: clean as SuiteCampaign["clean"]["verdict"],
      reason: "",
      wallTimeMs: 60_000,
      dir: "clean",
    },
    requirements: [`${suite.toUpperCase()}-1`, `${suite.toUpperCase()}-2`],
    faults,
    wallTimeMs: 100_000,
    ok,
  };
}

describe("faults --suite all: one index and one matrix page", () => {
  it("totals the suites; ok only when every fault is caught and every clean run certifies", () => {
    const all = [campaign("vrrp", []), campaign("vrls", []), campaign("natlb", [])];
    const index = campaignIndex(all);
    expect(index.totals).toEqual({ faults: 6, caught: 6, missed: 0, wallTimeMs: 300_000 });
    expect(index.suites.map((s) => [s.suite, s.faults, s.caught, s.clean])).toEqual([
      ["vrrp", 2, 2, "certified"],
      ["vrls", 2, 2, "certified"],
      ["natlb", 2, 2, "certified"],
    ]);
    expect(index.ok).toBe(true);
    expect(
      campaignIndex([campaign("vrrp", []), campaign("vrls", ["vrls-b"]), campaign("natlb", [])]).ok,
    ).toBe(false);
    expect(
      campaignIndex([campaign("vrrp", []), campaign("vrls", []), campaign("natlb", [], "not certified")]).ok,
    ).toBe(false);
    expect(campaignIndex([]).ok).toBe(false);
  });

  it("renders every suite's matrix on one page, links into each suite's directory", () => {
    const html = renderCampaignIndex(
      campaignIndex([campaign("vrrp", []), campaign("vrls", ["vrls-b"]), campaign("natlb", [])]),
    );
    expect(html).toMatch(/5 of 6 faults caught/);
    expect(html).toMatch(/NOT OK/);
    for (const s of ["vrrp", "vrls", "natlb"]) {
      expect(html).toContain(`<section id="suite-${s}"`);
      expect(html).toContain(`href="${s}/clean/index.html"`);
    }
    // A caught cell links to the failing case's evidence in that suite's run directory.
    expect(html).toContain('href="vrrp/faults/vrrp-a/index.html#case-vrrp-case"');
    // The missed fault's cell is marked missed.
    expect(html).toMatch(
      /<tr data-fault="vrls-b" data-verdict="missed">.*<td class="missed" data-requirement="VRLS-2">\?<\/td>/,
    );
  });
});
