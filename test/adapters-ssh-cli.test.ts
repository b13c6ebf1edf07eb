import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CertifyResult, runCertification } from "../lib/certify/run.ts";
import { ConfigError } from "../lib/topology/errors.ts";
import { adapterNames, findAdapter } from "../vendor-adapters/index.ts";
import { loadCliTemplate, renderTemplate } from "../vendor-adapters/ssh-cli/template.ts";

describe("ssh-cli command templates", () => {
  it("renders variables and boolean sections, and refuses unknown names", () => {
    const t = "vrrp {{vrid}} {{^preempt}}no {{/preempt}}preempt{{#preempt}} (on){{/preempt}}";
    expect(renderTemplate(t, { vrid: 7, preempt: false })).toBe("vrrp 7 no preempt");
    expect(renderTemplate(t, { vrid: 7, preempt: true })).toBe("vrrp 7 preempt (on)");
    expect(() => renderTemplate("{{vird}}", { vrid: 7 })).toThrow(/unknown variable \{\{vird\}\}/);
  });

  it("loads the FRR vtysh family and names file, path and line of a bad template", async () => {
    const frr = loadCliTemplate("frr-vtysh");
    expect(frr.capabilities).toContain("vrrp-v3");
    const dir = await mkdtemp(join(tmpdir(), "tandem-tpl-"));
    try {
      const bad = join(dir, "bad.yaml");
      writeFileSync(
        bad,
        "name: x\ndescription: d\nvendor: v\nproduct: p\nidentity: { command: c }\nstate: { command: c, patterns: {} }\nlogs: l\nconfig: c\n",
      );
      let error: unknown;
      try {
        loadCliTemplate(bad);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/bad\.yaml:5:\d+: identity\.versionPattern/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("is in the registry with the other adapters", () => {
    expect(adapterNames()).toEqual(expect.arrayContaining(["keepalived", "frr", "ssh-cli"]));
    expect(findAdapter("ssh-cli").suites).toContain("vrrp");
    expect(() => findAdapter("nosuch")).toThrow(/unknown device adapter "nosuch" \(known: /);
  });
});

/**
 * For real: FRR's daemons in the DUT namespace, configured only through vtysh command
 * templates over the lab's SSH session, certified on a subset of the vrrp suite
 * (election, advertisement format, preemption off, priority-0 on shutdown).
 */
describe("ssh-cli adapter driving FRR's vtysh in a lab host", () => {
  let out: string;
  let result: CertifyResult;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), "tandem-sshcli-"));
    result = await runCertification({
      dut: "ssh-cli",
      suite: "vrrp",
      out,
      dutOptions: { template: "frr-vtysh" },
      cases: "adv-format|pre-off|pri0-shutdown|tmr-master-down",
    });
  }, 600_000);
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it("configures, starts, stops and reads the router with CLI commands only", () => {
    const s = result.summary;
    expect(s.device).toMatchObject({ adapter: "ssh-cli", vendor: "FRRouting" });
    expect(s.device.version).toMatch(/^\d+\.\d+/);
    const verdicts = Object.fromEntries(
      s.cases.filter((c) => c.verdict !== "not-run").map((c) => [c.id, c.verdict]),
    );
    expect(verdicts).toEqual({
      "vrrp.adv-format": "pass",
      "vrrp.pre-off": "pass",
      "vrrp.pri0-shutdown": "pass",
      "vrrp.tmr-master-down": "pass",
    });
    const config = s.cases
      .find((c) => c.id === "vrrp.pre-off")
      ?.evidence.find((e) => e.name === "device config");
    expect(config).toBeDefined();
  });
});
