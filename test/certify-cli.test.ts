import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import type { CertificationSummary } from "../lib/certify/summary.ts";
import { namespacesOf } from "../lib/lab/teardown.ts";
import { validateJunit } from "./junit-schema.ts";

/**
 * `tandem certify` as a CI job runs it: the bundled CLI as a child process, its exit code,
 * its one-line reason, its plain progress lines (stderr is no terminal here), and the
 * clean-up when it is interrupted. Real runs: keepalived on the vrrp lab, the reference
 * on the VRLS Fig. 7 lab. Heavy (vitest.config.ts HEAVY): run under the lab lock.
 */
const ROOT = resolve(import.meta.dirname, "..");
const TANDEM = join(ROOT, "bin", "tandem.js");

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stderr match, or rejects after `timeoutMs` naming what it awaited. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
}

function tandem(args: string[], options: { detached?: boolean } = {}): Run {
  const child = spawn(process.execPath, [TANDEM, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  const run: Run = {
    child,
    stdout: "",
    stderr: "",
    exit: new Promise((res) => child.on("close", (code, signal) => res({ code, signal }))),
    waitFor(pattern, timeoutMs) {
      return new Promise((res, rej) => {
        const check = () => {
          const m = run.stderr.match(pattern);
          if (m) {
            clearTimeout(timer);
            child.stderr?.off("data", check);
            res(m);
          }
        };
        const timer = setTimeout(() => {
          child.stderr?.off("data", check);
          rej(new Error(`no stderr line matching ${pattern} within ${timeoutMs} ms; stderr:\n${run.stderr}`));
        }, timeoutMs);
        child.stderr?.on("data", check);
        void run.exit.then(() => setTimeout(check, 0));
        check();
      });
    },
  };
  child.stdout?.on("data", (c: Buffer) => {
    run.stdout += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    run.stderr += c.toString();
  });
  return run;
}

const lastLine = (text: string) => text.trimEnd().split("\n").at(-1) ?? "";

/** Processes of a run: its environment names the lab prefix (vitest, workers) or its command line does. */
function processesOf(prefix: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, "utf8");
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      if (env.includes(`TANDEM_LAB_PREFIX=${prefix}`) || cmd.includes(prefix)) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tandem-certify-cli-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("tandem certify exit codes", () => {
  it("exits 2 with a one-line reason on bad usage or configuration", async () => {
    const nosuch = tandem(["certify", "--dut", "nosuch", "--suite", "vrls", "--out", join(dir, "nosuch")]);
    expect((await nosuch.exit).code).toBe(2);
    expect(lastLine(nosuch.stderr)).toMatch(
      /^tandem certify: exit 2 \(bad usage or configuration\): --dut: unknown device adapter "nosuch"/,
    );
    const badLab = tandem([
      "certify",
      "--dut",
      "reference",
      "--suite",
      "vrls",
      "--lab",
      "test/fixtures/bad-topology.yaml",
      "--out",
      join(dir, "badlab"),
    ]);
    expect((await badLab.exit).code).toBe(2);
    expect(lastLine(badLab.stderr)).toMatch(
      /^tandem certify: exit 2 .*bad-topology.yaml:8:41: .*198.18.1.300/,
    );
    const missing = tandem(["certify", "--suite", "vrls"]);
    expect((await missing.exit).code).toBe(2);
    expect(lastLine(missing.stderr)).toBe(
      "tandem certify: exit 2 (bad usage or configuration): required option '--dut <name>' not specified",
    );
    // --family: the vrrp suite only, ipv4 or ipv6.
    const family = tandem([
      "certify",
      "--dut",
      "reference",
      "--suite",
      "vrls",
      "--family",
      "ipv6",
      "--out",
      join(dir, "family"),
    ]);
    expect((await family.exit).code).toBe(2);
    expect(lastLine(family.stderr)).toBe(
      "tandem certify: exit 2 (bad usage or configuration): --family: only the vrrp suite has address-family variants, not vrls",
    );
    const ipv5 = tandem(["certify", "--dut", "reference", "--suite", "vrrp", "--family", "ipv5"]);
    expect((await ipv5.exit).code).toBe(2);
    expect(lastLine(ipv5.stderr)).toBe(
      'tandem certify: exit 2 (bad usage or configuration): --family: unknown family "ipv5" (ipv4, ipv6)',
    );
    // Nothing was started for any of them.
    expect(existsSync(join(dir, "nosuch", "summary.json"))).toBe(false);
  });

  it("exits 3 when the lab cannot come up (a sysctl the kernel does not have), judging nothing", async () => {
    const doc = parseDocument(await readFile(join(ROOT, "labs/vrrp-dut.yaml"), "utf8"));
    doc.setIn(["hosts", "dut", "sysctls", "net.ipv4.conf.eth0.tandem_no_such_knob"], 1);
    const labFile = join(dir, "vrrp-broken.yaml");
    await writeFile(labFile, doc.toString());
    const out = join(dir, "broken");
    const r = tandem(["certify", "--dut", "keepalived", "--suite", "vrrp", "--lab", labFile, "--out", out]);
    expect((await r.exit).code).toBe(3);
    expect(lastLine(r.stderr)).toMatch(
      /^tandem certify: exit 3 \(could not judge\): the lab or the device did not come up: .*tandem_no_such_knob.*; no requirement is judged$/,
    );
    const s = JSON.parse(await readFile(join(out, "summary.json"), "utf8")) as CertificationSummary;
    expect(s.verdict).toBe("not judged");
    expect(s.counts).toMatchObject({ pass: 0, fail: 0, inconclusive: 0 });
    expect(s.requirements.every((x) => x.verdict === "not-run")).toBe(true);
  }, 120_000);

  it("exits 1 when a MUST requirement fails, with a valid JUnit file and the summary on stdout (--json)", async () => {
    const out = join(dir, "fwd");
    const junit = join(dir, "junit", "keepalived-vrrp.xml");
    const r = tandem([
      "certify",
      "--dut",
      "keepalived",
      "--suite",
      "vrrp",
      "--cases",
      "fwd-backup-silent",
      "--out",
      out,
      "--junit",
      junit,
      "--json",
    ]);
    expect((await r.exit).code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(
      /^tandem certify: exit 1 \(not certified\): 1 MUST requirement\(s\) failed: VRRP-FWD-002;/,
    );
    const s = JSON.parse(r.stdout) as CertificationSummary;
    expect(s.verdict).toBe("not certified");
    expect(s.requirements.find((x) => x.id === "VRRP-FWD-002")?.verdict).toBe("fail");
    // Progress: lab steps, one line for the one case that ran, report steps; vitest's output in suite.log only.
    expect(r.stderr).toMatch(/^suite: 1 cases; /m);
    expect(r.stderr).toMatch(/^lab: td[a-z0-9]{5} up in \d+\.\d s$/m);
    expect(r.stderr).toMatch(/^\[1\/1\] fail {2}VRRP-FWD-002 vrrp\.fwd-backup-silent \d+\.\d s$/m);
    expect(r.stderr).toMatch(/^report: JUnit /m);
    expect(r.stderr).not.toContain("RUN  v");
    const log = await readFile(join(out, "suite.log"), "utf8");
    expect(log).toMatch(/RUN\s+v4/);
    expect(log).not.toContain("\x1b["); // no colour codes
    const v = await validateJunit(junit);
    expect(v.ok, v.output).toBe(true);
    const xml = await readFile(junit, "utf8");
    expect(xml.match(/<testcase /g)?.length).toBe(s.cases.length);
    expect(xml).toMatch(
      /<testcase name="\[vrrp.fwd-backup-silent\][^"]*" classname="vrrp.ARP and forwarding"[^>]*>\s*<properties>\s*<property name="requirement" value="VRRP-FWD-002"\/>/,
    );
    expect(xml).toMatch(
      /<property name="evidence\.[^"]+" value="\.\.\/fwd\/evidence\/vrrp\.fwd-backup-silent\/[^"]+\.pcap"\/>/,
    );
  }, 180_000);
});

describe("an interrupted vrls certify run cleans up", () => {
  async function interrupted(how: "group-SIGINT" | "tandem-SIGTERM") {
    const out = join(dir, how);
    const r = tandem(["certify", "--dut", "reference", "--suite", "vrls", "--out", out], { detached: true });
    const prefix = (await r.waitFor(/^lab: (td[a-z0-9]{5}) up in/m, 120_000))[1]!;
    // Mid-run: a case has finished and the next one is driving the reference roles.
    await r.waitFor(/^\[1\/\d+\] /m, 180_000);
    expect((await namespacesOf(prefix)).length).toBeGreaterThan(0);
    const pid = r.child.pid!;
    if (how === "group-SIGINT") process.kill(-pid, "SIGINT");
    else process.kill(pid, "SIGTERM");
    const exit = await r.exit;
    return { r, exit, out, prefix, signal: how === "group-SIGINT" ? "SIGINT" : "SIGTERM" };
  }

  for (const how of ["group-SIGINT", "tandem-SIGTERM"] as const) {
    it(`${how}: 0 namespaces and 0 processes of the run remain, the report says interrupted, exit 3`, async () => {
      const { r, exit, out, prefix, signal } = await interrupted(how);
      expect(exit.code).toBe(3);
      expect(await namespacesOf(prefix)).toEqual([]);
      expect(processesOf(prefix)).toEqual([]);
      expect(r.stderr).toMatch(new RegExp(`^${signal}: stopping the suite, tearing the lab down`, "m"));
      expect(lastLine(r.stderr)).toMatch(
        new RegExp(
          `^tandem certify: exit 3 \\(could not judge\\): interrupted by ${signal} after \\d+ of \\d+ cases; no requirement is judged$`,
        ),
      );
      const s = JSON.parse(await readFile(join(out, "summary.json"), "utf8")) as CertificationSummary;
      expect(s.interrupted).toBe(signal);
      expect(s.verdict).toBe("not judged");
      expect(s.requirements.every((x) => x.verdict === "not-run")).toBe(true);
      expect(await readFile(join(out, "index.html"), "utf8")).toContain(`interrupted by ${signal}`);
    }, 400_000);
  }
});
