import { spawn } from "node:child_process";
import { createWriteStream, existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { findAdapter } from "../../vendor-adapters/index.ts";
import type { ClockOffset } from "../lab/state.ts";
import { repoRoot } from "../remote/repo-root.ts";
import { generateAllureSite, prepareAllureResults } from "../report/allure.ts";
import { loadTopology } from "../topology/load.ts";
import { loadCatalogue, SUITE_NAMES, type SuiteNameT } from "./catalogue.ts";
import { type HistoryEntry, renderCertificationPage } from "./html.ts";
import { SUITE_CASES } from "./suites.ts";
import { buildSummary, type CertificationSummary, type DeviceRecord } from "./summary.ts";

/**
 * `tandem certify`: runs one suite against one device (vitest as a child process with
 * the suites' config, so a crashing suite cannot take the summary with it), then builds
 * DIR/summary.json, the certification page DIR/index.html and the Allure site DIR/allure.
 */
export interface CertifyOptions {
  dut: string;
  suite: string;
  /** Lab file; default: the suite's own lab. */
  lab?: string;
  out: string;
  dutOptions?: Record<string, string>;
  mode?: string;
  /** Only cases whose title matches (vitest -t). */
  cases?: string;
  /** false: no Allure site (the seeded-fault campaign's many small runs). Default true. */
  allure?: boolean;
  onOutput?: (chunk: string) => void;
}

export interface CertifyResult {
  summary: CertificationSummary;
  exitCode: number;
  out: string;
  allureError?: string;
}

export const DEFAULT_LABS: Record<SuiteNameT, string> = {
  vrrp: "labs/vrrp-dut.yaml",
  vrls: "labs/vrls-fig7.yaml",
  natlb: "labs/natlb-fig3.yaml",
};

function checkSuite(suite: string): SuiteNameT {
  if (!(SUITE_NAMES as readonly string[]).includes(suite))
    throw new Error(`--suite: unknown suite "${suite}" (suites: ${SUITE_NAMES.join(", ")})`);
  return suite as SuiteNameT;
}

async function runSuite(
  opts: CertifyOptions,
  suite: SuiteNameT,
  out: string,
  labFile: string,
): Promise<number> {
  const root = repoRoot();
  const log = createWriteStream(join(out, "suite.log"));
  const args = [
    join(root, "node_modules", "vitest", "vitest.mjs"),
    "run",
    "--config",
    join(root, "suites", "vitest.config.ts"),
    `suites/${suite}/`,
    ...(opts.cases ? ["-t", opts.cases] : []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      ...process.env,
      TANDEM_DUT: opts.dut,
      TANDEM_DUT_OPTIONS: JSON.stringify(opts.dutOptions ?? {}),
      TANDEM_LAB: labFile,
      TANDEM_OUT: out,
      // A physical lab writes its hosts' clock offsets here when it starts (lib/lab/lab.ts).
      TANDEM_LAB_CLOCKS: join(out, "lab-clocks.json"),
      TANDEM_MODE: opts.mode ?? "",
      FORCE_COLOR: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const forward = (chunk: Buffer) => {
    log.write(chunk);
    opts.onOutput?.(chunk.toString());
  };
  child.stdout.on("data", forward);
  child.stderr.on("data", forward);
  // Ctrl-C reaches the child through the process group; its afterAll tears the lab down.
  const code = await new Promise<number>((res) => child.on("close", (c) => res(c ?? 1)));
  await new Promise<void>((res) => log.end(() => res()));
  return code;
}

function readDevice(out: string, dut: string): DeviceRecord {
  const path = join(out, "device.json");
  if (existsSync(path)) {
    try {
      return JSON.parse(readFileSync(path, "utf8")) as DeviceRecord;
    } catch {
      // fall through
    }
  }
  return {
    adapter: dut,
    vendor: "unknown",
    product: dut,
    version: "unknown (the suite did not reach the device)",
  };
}

/** The clock offsets a physical lab recorded at start (absent for a virtual lab). */
function readClocks(out: string): { clocks?: Record<string, ClockOffset> } {
  try {
    return {
      clocks: JSON.parse(readFileSync(join(out, "lab-clocks.json"), "utf8")) as Record<string, ClockOffset>,
    };
  } catch {
    return {};
  }
}

async function readHistory(out: string): Promise<HistoryEntry[]> {
  try {
    return JSON.parse(await readFile(join(out, "history.json"), "utf8")) as HistoryEntry[];
  } catch {
    return [];
  }
}

export async function runCertification(opts: CertifyOptions): Promise<CertifyResult> {
  const suite = checkSuite(opts.suite);
  const registration = findAdapter(opts.dut);
  if (registration.suites.length === 0) {
    throw new Error(
      `--dut ${opts.dut}: not a device that certifies: ${registration.notCertifiable ?? "no suite"}`,
    );
  }
  if (!registration.suites.includes(suite)) {
    throw new Error(
      `--dut ${opts.dut}: this adapter is certified with suite(s) ${registration.suites.join(", ")}, not ${suite}`,
    );
  }
  const labFile = resolve(opts.lab ?? join(repoRoot(), DEFAULT_LABS[suite]));
  const lab = loadTopology(labFile); // a bad lab file fails here, before anything runs
  const catalogue = loadCatalogue();
  const out = resolve(opts.out);
  await mkdir(out, { recursive: true });
  for (const stale of [
    "cases",
    "evidence",
    "vitest.json",
    "device.json",
    "summary.json",
    "lab-clocks.json",
  ]) {
    await rm(join(out, stale), { recursive: true, force: true });
  }
  await prepareAllureResults(out);

  const startedAt = new Date();
  await runSuite(opts, suite, out, labFile);
  const finishedAt = new Date();

  const summary = buildSummary({
    catalogue,
    suite,
    caseTitles: SUITE_CASES[suite],
    out,
    device: readDevice(out, opts.dut),
    lab: { file: labFile, name: lab.topology.lab, ...readClocks(out) },
    mode: opts.mode ?? "default",
    startedAt,
    finishedAt,
    explanations: registration.knownDeviations ?? {},
  });
  const history = await readHistory(out);
  await writeFile(join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  await writeFile(join(out, "index.html"), renderCertificationPage(summary, history));
  history.push({
    finishedAt: summary.finishedAt,
    verdict: summary.verdict,
    pass: summary.counts.pass,
    fail: summary.counts.fail,
    inconclusive: summary.counts.inconclusive,
    notApplicable: summary.counts["not-applicable"],
    notRun: summary.counts["not-run"],
    wallTimeMs: summary.wallTimeMs,
  });
  await writeFile(join(out, "history.json"), `${JSON.stringify(history, null, 2)}\n`);

  let allureError: string | undefined;
  if (opts.allure !== false)
    try {
      await generateAllureSite(out, {
        name: `${opts.dut} / ${suite} / ${summary.finishedAt}`,
        buildOrder: history.length,
        environment: {
          device: `${summary.device.vendor} ${summary.device.product} ${summary.device.version}`,
          adapter: opts.dut,
          suite,
          lab: summary.lab.name,
          mode: summary.mode,
          verdict: summary.verdict,
        },
      });
    } catch (error) {
      allureError = `allure generate failed: ${(error as Error).message}`;
    }
  return {
    summary,
    exitCode: summary.verdict === "certified" ? 0 : 1,
    out,
    ...(allureError ? { allureError } : {}),
  };
}
