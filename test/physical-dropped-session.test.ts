import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CaseRecord } from "../lib/certify/cases/define.ts";
import { vrrpCases } from "../lib/certify/cases/vrrp.ts";
import { loadCatalogue } from "../lib/certify/catalogue.ts";
import { buildSummary, type CertificationSummary } from "../lib/certify/summary.ts";
import { type EmulatedLab, emulatePhysicalLab } from "../lib/lab/index.ts";

// Issue 14: a dropped SSH session in the middle of a case (the host's sshd killed) ends the
// case with a message naming the host and what to do, and the case is inconclusive, never
// passed. The fixture suite (test/fixtures/dropped-session) runs through certCase under
// vitest as `tandem certify` runs a suite, on an emulated physical lab.
const FILE = resolve("test/fixtures/physical-small.yaml");
let emu: EmulatedLab;
let out: string;
let summary: CertificationSummary;
let log = "";

beforeAll(async () => {
  emu = await emulatePhysicalLab(FILE);
  out = await mkdtemp(join(tmpdir(), "tandem-dropped-"));
  const root = join(import.meta.dirname, "..");
  const child = spawn(
    process.execPath,
    [
      join(root, "node_modules", "vitest", "vitest.mjs"),
      "run",
      "--config",
      join(root, "test/fixtures/dropped-session/vitest.config.ts"),
    ],
    {
      cwd: root,
      env: {
        ...process.env,
        TANDEM_OUT: out,
        TANDEM_LAB: FILE,
        TANDEM_EMULATION_PREFIX: emu.prefix,
        FORCE_COLOR: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout.on("data", (c: Buffer) => {
    log += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    log += c.toString();
  });
  await new Promise<void>((done) => child.on("close", () => done()));
  summary = buildSummary({
    catalogue: loadCatalogue(),
    suite: "vrrp",
    caseTitles: { "vrrp.adv-format": vrrpCases["vrrp.adv-format"] },
    out,
    device: { adapter: "stub", vendor: "v", product: "p", version: "1" },
    lab: { file: FILE, name: "phys-small" },
    mode: "default",
    startedAt: new Date(0),
    finishedAt: new Date(1000),
  });
}, 120_000);

afterAll(async () => {
  await emu?.down();
  if (out) await rm(out, { recursive: true, force: true });
});

describe("a dropped SSH session mid-case", () => {
  it("is inconclusive with a message naming the host and what to do; never passed", () => {
    const record = JSON.parse(readFileSync(join(out, "cases", "vrrp.adv-format.json"), "utf8")) as CaseRecord;
    expect(record.status, log).toBe("inconclusive");
    expect(record.reason).toMatch(
      /agent echo on b died \(connection lost: the SSH session to b dropped; check that sshd runs on b and the management network reaches it, then run the case again\)/,
    );
    const c = summary.cases.find((x) => x.id === "vrrp.adv-format")!;
    expect(c.verdict).toBe("inconclusive");
    expect(summary.counts.pass).toBe(0);
    // A MUST left inconclusive: the run could not judge (issue 17's "not judged", exit 3).
    expect(summary.verdict).toBe("not judged");
  });
});
