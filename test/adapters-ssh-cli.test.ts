import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CertifyResult, runCertification } from "../lib/certify/run.ts";
import { withLab } from "../lib/lab/index.ts";
import { ConfigError } from "../lib/topology/errors.ts";
import { adapterNames, findAdapter } from "../vendor-adapters/index.ts";
import { SshCliAdapter } from "../vendor-adapters/ssh-cli/index.ts";
import { loadCliTemplate, renderTemplate } from "../vendor-adapters/ssh-cli/template.ts";

describe("ssh-cli command templates", () => {
  it("renders variables and boolean sections, and refuses unknown names", () => {
    const t = "vrrp {{vrid}} {{^preempt}}no {{/preempt}}preempt{{#preempt}} (on){{/preempt}}";
    expect(renderTemplate(t, { vrid: 7, preempt: false })).toBe("vrrp 7 no preempt");
    expect(renderTemplate(t, { vrid: 7, preempt: true })).toBe("vrrp 7 preempt (on)");
    expect(() => renderTemplate("{{vird}}", { vrid: 7 })).toThrow(/unknown variable \{\{vird\}\}/);
  });

  it("loads the FRR vtysh family, each command with its line, and names file, path and line of a bad template", async () => {
    const frr = loadCliTemplate("frr-vtysh");
    expect(frr.capabilities).toContain("vrrp-v3");
    expect(frr.cli.argv[0]).toBe("vtysh");
    const lines = readFileSync(frr.file, "utf8").split("\n");
    for (const c of [...frr.deploy, ...frr.start, ...frr.stop, frr.state.command, frr.config])
      expect(lines[c.line - 1], c.text).toContain(c.text.replace(/^"|"$/g, ""));
    const dir = await mkdtemp(join(tmpdir(), "tandem-tpl-"));
    try {
      const bad = join(dir, "bad.yaml");
      const good = readFileSync(frr.file, "utf8");
      writeFileSync(bad, good.replace('  errorPattern: "^% "', '  errorPatern: "^% "'));
      let error: unknown;
      try {
        loadCliTemplate(bad);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      // the cli mapping starts on its first entry (argv): where the unknown field is reported
      const line = good.split("\n").findIndex((l) => l.startsWith("  argv:")) + 1;
      expect((error as Error).message).toContain(`bad.yaml:${line}:3: cli: unknown field(s): errorPatern`);
      expect((error as Error).message).toContain(`bad.yaml:${line}:3: cli.errorPattern:`);
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

/**
 * FRR in the DUT host of the vrrp lab, driven through the adapter directly: the state
 * read back through vtysh, and templates with a typo: a CLI command the device refuses
 * and an unknown variable, each an error naming the template file and line.
 */
describe("ssh-cli adapter errors name the template line", () => {
  it("reads master through vtysh; a refused CLI command and an unknown variable name file and line", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tandem-tpl-"));
    const good = readFileSync(loadCliTemplate("frr-vtysh").file, "utf8");
    const typo = join(dir, "typo.yaml");
    writeFileSync(
      typo,
      good.replace("vrrp {{vrid}} priority {{priority}}", "vrrp {{vrid}} priorty {{priority}}"),
    );
    const unknown = join(dir, "unknown.yaml");
    writeFileSync(unknown, good.replace("vrrp {{vrid}} ip {{vip}}", "vrrp {{vird}} ip {{vip}}"));
    const lineOf = (text: string) => good.split("\n").findIndex((l) => l.includes(text)) + 1;
    const instance = {
      interface: "eth0",
      vrid: 7,
      priority: 200,
      advertIntervalMs: 100,
      preempt: true,
      version: 3 as const,
      virtualAddresses: ["198.18.2.1/24"],
    };
    try {
      await withLab("labs/vrrp-dut.yaml", async (lab) => {
        const target = (template: string) => ({
          hosts: { dut: lab.host("dut") },
          primary: "dut",
          workDir: `/tmp/tandem-dut-${lab.prefix}`,
          options: { template },
        });
        const frr = new SshCliAdapter(target("frr-vtysh"));
        try {
          // asked first, as the suites do: the router boots, then vtysh answers
          expect((await frr.identity()).version).toMatch(/^\d+\.\d+/);
          await frr.deploy({ vrrp: [instance] });
          await frr.start();
          const until = Date.now() + 10_000;
          let state = await frr.readState();
          while (state.vrrp[0]?.state !== "master" && Date.now() < until) {
            await new Promise((r) => setTimeout(r, 200));
            state = await frr.readState();
          }
          expect(state).toMatchObject({ running: true, vrrp: [{ vrid: 7, state: "master" }] });
          expect(await frr.collectConfig()).toMatch(/vrrp 7 priority 200/);

          const bad = new SshCliAdapter(target(typo));
          await expect(bad.deploy({ vrrp: [instance] })).rejects.toThrow(
            `${typo}:${lineOf("vrrp {{vrid}} priority {{priority}}")}: frr-vtysh deploy: the device's CLI refused "vrrp 7 priorty 200": % Unknown command: vrrp 7 priorty 200`,
          );
          const unk = new SshCliAdapter(target(unknown));
          await expect(unk.deploy({ vrrp: [instance] })).rejects.toThrow(
            `${unknown}:${lineOf("vrrp {{vrid}} ip {{vip}}")}: template: unknown variable {{vird}}`,
          );
        } finally {
          await frr.dispose();
        }
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
