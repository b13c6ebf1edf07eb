import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { vrlsCases } from "../lib/certify/cases/vrls.ts";
import { type CertifyResult, runCertification } from "../lib/certify/run.ts";
import { registerAdapter } from "../vendor-adapters/index.ts";
import { registration } from "./fixtures/fake-vrls-adapter.ts";

// A VRLS device that declares `vrls` but neither `vrls-review` nor `vrls-substitution`
// (test/fixtures/fake-vrls-adapter.ts), certified the way `tandem certify` does it: the
// suite runs in its own vitest process on the Fig. 7 lab (brought up for real; run under
// the lab lock), loads the adapter module named in TANDEM_ADAPTER_MODULES, and the summary
// is built from what its cases leave. Only the review and substitution cases are selected
// (-t): each must come out "not applicable" with the missing capability as the reason.
const root = join(import.meta.dirname, "..");
const REVIEW_AND_SUBSTITUTION = Object.values(vrlsCases)
  .filter((c) => c.needs?.includes("vrls-review") || c.needs?.includes("vrls-substitution"))
  .map((c) => c.id);

let out: string | undefined;
afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe("certify: a device without a case's capability", () => {
  it("gets not applicable on the review and substitution cases, never fail", {
    timeout: 240_000,
  }, async () => {
    out = await mkdtemp(join(tmpdir(), "tandem-na-"));
    registerAdapter(registration);
    process.env.TANDEM_ADAPTER_MODULES = join(root, "test/fixtures/fake-vrls-adapter.ts");
    let result: CertifyResult;
    try {
      result = await runCertification({
        dut: "fake-vrls",
        suite: "vrls",
        lab: join(root, "labs/vrls-fig7.yaml"),
        out,
        cases: "review|reallocation|substitution",
      });
    } finally {
      delete process.env.TANDEM_ADAPTER_MODULES;
    }
    const s = result.summary;
    expect(REVIEW_AND_SUBSTITUTION.length, "review and substitution cases").toBe(8);
    const selected = s.cases.filter((c) => REVIEW_AND_SUBSTITUTION.includes(c.id));
    expect(
      selected.map((c) => [c.id, c.verdict]),
      "verdicts of the review and substitution cases",
    ).toEqual(REVIEW_AND_SUBSTITUTION.map((id) => [id, "not-applicable"]));
    for (const c of selected) {
      const missing = c.id.includes("substitution") ? "vrls-substitution" : "vrls-review";
      expect(c.reason, `${c.id}: the reason names the missing capability`).toContain(missing);
    }
    expect(s.counts.fail, "failed requirements").toBe(0);
    expect(
      s.cases.filter((c) => c.verdict === "fail").map((c) => c.id),
      "failed cases",
    ).toEqual([]);
    expect(s.device.adapter, "the device the summary names").toBe("fake-vrls");
  });
});
