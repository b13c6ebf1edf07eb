import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

/**
 * The CI examples (docs/ci.md) stay valid: both files parse as YAML, run the bootstrap and
 * then `tandem certify` with --out and --junit on a lab that exists, restore and save the
 * report history (Allure trend), publish the report and the JUnit file also when the job
 * fails, and never swallow certify's exit code (not certified must fail the job).
 */
const ROOT = join(import.meta.dirname, "..");
const load = (file: string) =>
  parse(readFileSync(join(ROOT, file), "utf8"), { strict: true, uniqueKeys: true });

/** `tandem certify ...` as written in a CI step: its options parsed as the CLI declares them. */
function certifyArgs(line: string): Record<string, string> {
  const words = line
    .replace(/\s+/g, " ")
    .trim()
    .split(" ")
    .map((w) => w.replace(/^"(.*)"$/, "$1"));
  const i = words.indexOf("certify");
  expect(words.slice(i - 2, i)).toEqual(["npx", "tandem"]);
  const opts: Record<string, string> = {};
  const c = new Command()
    .exitOverride()
    .requiredOption("--dut <name>")
    .requiredOption("--suite <suite>")
    .option("--lab <file>")
    .requiredOption("--out <dir>")
    .requiredOption("--junit <file>")
    .action((o: Record<string, string>) => {
      Object.assign(opts, o);
    });
  c.parse(words.slice(i + 1), { from: "user" });
  return opts;
}

function checkCertify(opts: Record<string, string>, out: string) {
  expect(opts.dut).toBe("reference");
  expect(opts.suite).toBe("vrls");
  expect(existsSync(join(ROOT, opts.lab ?? ""))).toBe(true);
  expect(opts.out).toBe(out);
  expect(opts.junit).toBe(`${out}/junit.xml`);
}

describe(".github/workflows/certify.yml", () => {
  const wf = load(".github/workflows/certify.yml");
  const job = wf.jobs.certify;
  const steps = job.steps as Record<string, unknown>[];
  const index = (pred: (s: Record<string, unknown>) => boolean, what: string) => {
    const i = steps.findIndex(pred);
    expect(i, what).toBeGreaterThanOrEqual(0);
    return i;
  };
  const uses = (prefix: string) => (s: Record<string, unknown>) => String(s.uses ?? "").startsWith(prefix);
  const runs = (text: string) => (s: Record<string, unknown>) => String(s.run ?? "").includes(text);

  it("runs as root in a privileged Debian 12 + Node 20 container", () => {
    expect(wf.on).toHaveProperty("push");
    expect(job["runs-on"]).toBe("ubuntu-latest");
    expect(job.container.image).toBe("node:20-bookworm");
    expect(job.container.options).toContain("--privileged");
  });

  it("checks out, bootstraps, restores history, certifies, then saves history and publishes always", () => {
    const checkout = index(uses("actions/checkout@"), "checkout");
    const bootstrap = index(runs("scripts/bootstrap"), "bootstrap");
    const restore = index(uses("actions/cache/restore@"), "history restore");
    const certify = index(runs("tandem certify"), "certify");
    const save = index(uses("actions/cache/save@"), "history save");
    const upload = index(uses("actions/upload-artifact@"), "upload");
    expect(checkout).toBeLessThan(bootstrap);
    expect(bootstrap).toBeLessThan(certify);
    expect(restore).toBeLessThan(certify);
    expect(certify).toBeLessThan(save);
    expect(certify).toBeLessThan(upload);
    const out = job.env.OUT as string;
    checkCertify(certifyArgs(String(steps[certify]!.run).replaceAll("$OUT", out)), out);
    // not certified (exit 1) must fail the job: no continue-on-error, no `|| true`
    expect(steps[certify]!["continue-on-error"]).toBeUndefined();
    expect(String(steps[certify]!.run)).not.toMatch(/\|\||;\s*true|set \+e/);
    for (const i of [save, upload]) expect(steps[i]!.if).toBe("always()");
    const paths = (s: Record<string, unknown>) => String((s.with as Record<string, string>).path);
    for (const i of [restore, save]) {
      expect(paths(steps[i]!)).toContain(`${out}/allure/history`);
      expect(paths(steps[i]!)).toContain(`${out}/history.json`);
    }
    expect((steps[restore]!.with as Record<string, string>)["restore-keys"]).toBeTruthy();
    expect(paths(steps[upload]!)).toBe(out);
    const junit = steps[index(uses("mikepenz/action-junit-report@"), "junit report")]!;
    expect((junit.with as Record<string, string>).report_paths).toBe(`${out}/junit.xml`);
    expect(junit.if).toBe("always()");
  });

  it("deploys the report to Pages from main", () => {
    expect(steps.some(uses("actions/upload-pages-artifact@"))).toBe(true);
    expect(wf.jobs.pages.needs).toBe("certify");
    expect(wf.jobs.pages.steps.some(uses("actions/deploy-pages@"))).toBe(true);
  });
});

describe(".gitlab-ci.yml", () => {
  const ci = load(".gitlab-ci.yml");
  const job = ci.certify;

  it("bootstraps, then certifies with --junit, in a Debian 12 + Node 20 image", () => {
    expect(job.image).toBe("node:20-bookworm");
    const script = job.script as string[];
    const bootstrap = script.findIndex((l) => l.includes("scripts/bootstrap"));
    const certify = script.findIndex((l) => l.includes("tandem certify"));
    expect(bootstrap).toBeGreaterThanOrEqual(0);
    expect(certify).toBeGreaterThan(bootstrap);
    const out = ci.variables.OUT as string;
    checkCertify(certifyArgs(script[certify]!.replaceAll("$OUT", out)), out);
    expect(script[certify]).not.toMatch(/\|\||;\s*true|set \+e/);
    expect(job.allow_failure).toBeUndefined();
  });

  it("keeps the history in a cache saved also on failure, and publishes report and JUnit always", () => {
    const out = ci.variables.OUT as string;
    expect(job.cache.paths).toEqual(expect.arrayContaining([`${out}/allure/history`, `${out}/history.json`]));
    expect(job.cache.when).toBe("always");
    expect(job.artifacts.when).toBe("always");
    expect(job.artifacts.paths).toContain(out);
    expect(job.artifacts.reports.junit).toBe(`${out}/junit.xml`);
    expect(ci.pages.needs[0]).toMatchObject({ job: "certify", artifacts: true });
    expect(ci.pages.artifacts.paths).toEqual(["public"]);
    expect(ci.stages).toEqual(["certify", "publish"]);
  });
});
