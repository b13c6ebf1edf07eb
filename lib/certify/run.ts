import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, readFileSync } from "node:fs";
import { mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { findAdapter } from "../../vendor-adapters/index.ts";
import { newRunPrefix } from "../lab/prefix.ts";
import type { ClockOffset } from "../lab/state.ts";
import { teardownPrefix } from "../lab/teardown.ts";
import { repoRoot } from "../remote/repo-root.ts";
import { generateAllureSite, prepareAllureResults } from "../report/allure.ts";
import type { LoadedTopology } from "../topology/load.ts";
import { loadTopology } from "../topology/load.ts";
import type { CaseRecord } from "./cases/define.ts";
import {
  type Catalogue,
  loadCatalogue,
  requirementsVerifiedBy,
  SUITE_NAMES,
  type SuiteNameT,
} from "./catalogue.ts";
import { readDurations, recordDurations, type SuiteDurations } from "./durations.ts";
import type { SuiteEvent } from "./events.ts";
import { type HistoryEntry, renderCertificationPage } from "./html.ts";
import { renderJunit } from "./junit.ts";
import { SUITE_CASES } from "./suites.ts";
import { buildSummary, type CertificationSummary, type DeviceRecord, exitCodeOf } from "./summary.ts";

/**
 * `tandem certify`: runs one suite against one device (vitest as a child process with
 * the suites' config, so a crashing suite cannot take the summary with it), then builds
 * DIR/summary.json, the certification page DIR/index.html and the Allure site DIR/allure.
 *
 * While the suite runs, the CLI follows it through DIR/events.jsonl (suites/support/
 * events.ts): lab bring-up steps and per-case results. vitest's own output goes to
 * DIR/suite.log. The lab's prefix is chosen here and handed to the suite, so this process
 * can tear the lab down itself: on SIGINT, SIGTERM or SIGHUP it forwards the signal to the
 * vitest process group (vitest runs in its own group, so a signal sent to `tandem` alone
 * reaches it too), waits for the group to end (SIGKILL after a grace period), removes
 * whatever of the lab is left and writes a report marked "interrupted" that judges no
 * requirement (exit 3).
 */
export interface CertifyOptions {
  dut: string;
  suite: string;
  /** Lab file; default: the suite's own lab. */
  lab?: string;
  out: string;
  dutOptions?: Record<string, string>;
  mode?: string;
  /**
   * vrrp only: the address family the suite certifies (issue 16). ipv6 runs the suite's
   * IPv6 variant on labs/vrrp-dut-v6.yaml unless --lab names another lab. Default ipv4.
   */
  family?: string;
  /** Only cases whose title matches (vitest -t). */
  cases?: string;
  /** false: no Allure site (the seeded-fault campaign's many small runs). Default true. */
  allure?: boolean;
  /** vitest's raw output (always also in DIR/suite.log). */
  onOutput?: (chunk: string) => void;
  /** Progress: the suite's events and the harness's own steps. */
  onEvent?: (event: CertifyEvent) => void;
  /** Also write JUnit XML here. */
  junit?: string;
  /** Handle SIGINT/SIGTERM/SIGHUP (default true). */
  handleSignals?: boolean;
  /** How long the suite gets to end after a forwarded signal before SIGKILL (default 20 s). */
  signalGraceMs?: number;
}

export type CaseOutcome = "pass" | "fail" | "inconclusive" | "n/a" | "skip";

export type CertifyEvent =
  /** A harness step (lab bring-up step, report step); `done` marks it finished. */
  | { type: "step"; step: string; detail?: string; done?: boolean; ms?: number }
  | { type: "lab-progress"; step: string; done: number; total: number }
  | { type: "lab-up"; prefix: string; ms: number }
  | { type: "cases"; cases: { id: string; requirements: string[] }[]; history: SuiteDurations }
  | { type: "case-start"; id: string }
  | { type: "case-end"; id: string; outcome: CaseOutcome; durationMs: number; requirements: string[] }
  | { type: "interrupt"; signal: string };

export interface CertifyResult {
  summary: CertificationSummary;
  /** 0 certified, 1 not certified, 3 not judged (lab/device error, interrupted). */
  exitCode: number;
  out: string;
  allureError?: string;
  junit?: string;
}

/** Bad usage or configuration (unknown device, suite, bad lab file): `tandem certify` exits 2. */
export class CertifyUsageError extends Error {
  override name = "CertifyUsageError";
}

export const DEFAULT_LABS: Record<SuiteNameT, string> = {
  vrrp: "labs/vrrp-dut.yaml",
  vrls: "labs/vrls-fig7.yaml",
  natlb: "labs/natlb-fig3.yaml",
};

/** The vrrp suite's lab per address family (`--family`). */
export const VRRP_FAMILY_LABS: Record<"ipv4" | "ipv6", string> = {
  ipv4: "labs/vrrp-dut.yaml",
  ipv6: "labs/vrrp-dut-v6.yaml",
};

function checkSuite(suite: string): SuiteNameT {
  if (!(SUITE_NAMES as readonly string[]).includes(suite))
    throw new CertifyUsageError(`--suite: unknown suite "${suite}" (suites: ${SUITE_NAMES.join(", ")})`);
  return suite as SuiteNameT;
}

/**
 * Follows DIR/events.jsonl. Polled (every 200 ms) rather than fs.watch'ed: inotify on a
 * file appended to by two other processes coalesces and, on some filesystems, misses
 * events; a read of the new bytes is cheap and the display needs no finer grain.
 */
class EventTail {
  private offset = 0;
  private partial = "";
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: string,
    private readonly onEvent: (e: SuiteEvent & { t: number }) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.drain(), 200);
  }

  async drain(): Promise<void> {
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      handle = await open(this.file, "r");
      const { size } = await handle.stat();
      if (size <= this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      const { bytesRead } = await handle.read(buf, 0, buf.length, this.offset);
      this.offset += bytesRead;
      const lines = (this.partial + buf.subarray(0, bytesRead).toString("utf8")).split("\n");
      this.partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          this.onEvent(JSON.parse(line) as SuiteEvent & { t: number });
        } catch {
          // a line that is not JSON is no event
        }
      }
    } catch {
      // not created yet
    } finally {
      await handle?.close();
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.drain();
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until every process of the group has ended, or the deadline; false on timeout. */
async function awaitGroupEnd(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

interface SuiteRun {
  child: ChildProcess;
  done: Promise<number>;
}

function startSuite(
  opts: CertifyOptions,
  suite: SuiteNameT,
  out: string,
  labFile: string,
  prefix: string,
  eventsFile: string,
): SuiteRun {
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
      TANDEM_LAB_PREFIX: prefix,
      TANDEM_OUT: out,
      // A physical lab writes its hosts' clock offsets here when it starts (lib/lab/lab.ts).
      TANDEM_LAB_CLOCKS: join(out, "lab-clocks.json"),
      TANDEM_MODE: opts.mode ?? "",
      TANDEM_FAMILY: opts.family ?? "",
      TANDEM_EVENTS: eventsFile,
      // A plain suite.log: vitest's colour library counts any FORCE_COLOR (even "0") as "on".
      FORCE_COLOR: undefined,
      NO_COLOR: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: a Ctrl-C on the terminal reaches tandem only, which forwards
    // it to the whole group (vitest and its workers) and then cleans up after them.
    detached: true,
  });
  const forward = (chunk: Buffer) => {
    log.write(chunk);
    opts.onOutput?.(chunk.toString());
  };
  child.stdout?.on("data", forward);
  child.stderr?.on("data", forward);
  const done = new Promise<number>((res) =>
    child.on("close", (c, signal) => {
      log.end(() => res(c ?? (signal ? 128 : 1)));
    }),
  );
  return { child, done };
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

function outcomeOf(record: CaseRecord | undefined, state: string): CaseOutcome {
  switch (record?.status) {
    case "passed":
      return "pass";
    case "failed":
      return "fail";
    case "inconclusive":
      return "inconclusive";
    case "not-applicable":
      return "n/a";
    case "not-available":
      return "skip";
    default:
      return state === "passed" ? "pass" : state === "failed" ? "fail" : "skip";
  }
}

function readRecord(out: string, id: string): CaseRecord | undefined {
  try {
    return JSON.parse(
      readFileSync(join(out, "cases", `${id.replace(/[^A-Za-z0-9._-]+/g, "_")}.json`), "utf8"),
    ) as CaseRecord;
  } catch {
    return undefined;
  }
}

interface Prepared {
  suite: SuiteNameT;
  registration: ReturnType<typeof findAdapter>;
  labFile: string;
  lab: LoadedTopology;
  catalogue: Catalogue;
  out: string;
}

/** Everything that can be wrong with the command line or the configuration: CertifyUsageError. */
function prepare(opts: CertifyOptions): Prepared {
  const suite = checkSuite(opts.suite);
  let registration: ReturnType<typeof findAdapter>;
  try {
    registration = findAdapter(opts.dut);
  } catch (error) {
    throw new CertifyUsageError(`--dut: ${(error as Error).message}`);
  }
  if (registration.suites.length === 0) {
    throw new CertifyUsageError(
      `--dut ${opts.dut}: not a device that certifies: ${registration.notCertifiable ?? "no suite"}`,
    );
  }
  if (!registration.suites.includes(suite)) {
    throw new CertifyUsageError(
      `--dut ${opts.dut}: this adapter is certified with suite(s) ${registration.suites.join(", ") || "(none)"}, not ${suite}`,
    );
  }
  if (opts.family !== undefined) {
    if (opts.family !== "ipv4" && opts.family !== "ipv6")
      throw new CertifyUsageError(`--family: unknown family "${opts.family}" (ipv4, ipv6)`);
    if (suite !== "vrrp")
      throw new CertifyUsageError(`--family: only the vrrp suite has address-family variants, not ${suite}`);
  }
  const defaultLab =
    suite === "vrrp" && opts.family ? VRRP_FAMILY_LABS[opts.family as "ipv4" | "ipv6"] : DEFAULT_LABS[suite];
  const labFile = resolve(opts.lab ?? join(repoRoot(), defaultLab));
  let lab: LoadedTopology;
  try {
    lab = loadTopology(labFile); // a bad lab file fails here, before anything runs
  } catch (error) {
    throw new CertifyUsageError(`--lab ${labFile}: ${(error as Error).message}`);
  }
  if (opts.mode && !["timer", "sequence-number", "exactly-once"].includes(opts.mode))
    throw new CertifyUsageError(`--mode: unknown mode "${opts.mode}" (timer, sequence-number, exactly-once)`);
  let catalogue: Catalogue;
  try {
    catalogue = loadCatalogue();
  } catch (error) {
    throw new CertifyUsageError((error as Error).message);
  }
  return { suite, registration, labFile, lab, catalogue, out: resolve(opts.out) };
}

export async function runCertification(opts: CertifyOptions): Promise<CertifyResult> {
  const { suite, registration, labFile, lab, catalogue, out } = prepare(opts);
  const emit = (e: CertifyEvent) => opts.onEvent?.(e);
  await mkdir(out, { recursive: true });
  if (opts.junit) await mkdir(dirname(resolve(opts.junit)), { recursive: true });
  for (const stale of [
    "cases",
    "evidence",
    "vitest.json",
    "device.json",
    "summary.json",
    "lab-clocks.json",
    "events.jsonl",
  ]) {
    await rm(join(out, stale), { recursive: true, force: true });
  }
  await prepareAllureResults(out);

  const history = await readDurations(suite, opts.dut);
  const measured: SuiteDurations = { cases: {} };
  const prefix = newRunPrefix();
  const eventsFile = join(out, "events.jsonl");
  let run: SuiteRun | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return; // one clean-up; a second Ctrl-C does not cut it short
    interrupted = signal;
    emit({ type: "interrupt", signal });
    if (run?.child.pid && groupAlive(run.child.pid)) process.kill(-run.child.pid, signal);
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  if (opts.handleSignals !== false) for (const s of signals) process.on(s, onSignal);
  try {
    return await certifyWith();
  } finally {
    if (opts.handleSignals !== false) for (const s of signals) process.off(s, onSignal);
  }

  async function certifyWith(): Promise<CertifyResult> {
    const collected = new Set<string>();
    /** Every lab the suite brought up (its own prefix first): all are torn down at the end. */
    const labPrefixes = new Set<string>([prefix]);
    const tail = new EventTail(eventsFile, (e) => {
      switch (e.type) {
        case "collected":
          for (const c of e.cases) collected.add(c.id);
          emit({
            type: "cases",
            cases: e.cases.map((c) => ({
              id: c.id,
              requirements: requirementsVerifiedBy(catalogue, c.id).map((r) => r.id),
            })),
            history,
          });
          break;
        case "lab":
          emit({ type: "lab-progress", step: e.step, done: e.done, total: e.total });
          break;
        case "lab-starting":
          labPrefixes.add(e.prefix);
          break;
        case "lab-up":
          labPrefixes.add(e.prefix);
          measured.labMs = e.ms;
          emit({ type: "lab-up", prefix: e.prefix, ms: e.ms });
          break;
        case "case-start":
          emit({ type: "case-start", id: e.id });
          break;
        case "case-end": {
          if (collected.size > 0 && !collected.has(e.id)) break;
          const record = readRecord(out, e.id);
          const outcome = outcomeOf(record, e.state);
          if (outcome === "pass" || outcome === "fail") measured.cases[e.id] = e.durationMs;
          emit({
            type: "case-end",
            id: e.id,
            outcome,
            durationMs: record?.durationMs ?? e.durationMs,
            requirements: requirementsVerifiedBy(catalogue, e.id).map((r) => r.id),
          });
          break;
        }
        default:
          break;
      }
    });

    const startedAt = new Date();
    try {
      if (!interrupted) {
        emit({ type: "step", step: "suite", detail: `vitest ${suite} (log: ${join(out, "suite.log")})` });
        run = startSuite(opts, suite, out, labFile, prefix, eventsFile);
        tail.start();
        await run.done;
        // vitest has exited; its workers may not have (a forwarded signal): wait for the group.
        const pgid = run.child.pid;
        if (pgid && !(await awaitGroupEnd(pgid, opts.signalGraceMs ?? 20_000))) {
          process.kill(-pgid, "SIGKILL");
          await awaitGroupEnd(pgid, 5_000);
        }
        await tail.stop();
      }
    } finally {
      for (const p of labPrefixes) {
        const removed = (await teardownPrefix(p)).namespaces;

        emit({
          type: "step",
          step: "teardown",
          detail:
            removed > 0 ? `lab ${p}: removed ${removed} namespace(s) left behind` : `lab ${p}: nothing left`,
          done: true,
        });
      }
    }
    const finishedAt = new Date();
    if (!interrupted && Object.keys(measured.cases).length > 0)
      await recordDurations(suite, opts.dut, measured).catch(() => undefined);

    emit({ type: "step", step: "report", detail: "summary" });
    const summary = buildSummary({
      catalogue,
      suite,
      caseTitles: SUITE_CASES[suite],
      out,
      device: readDevice(out, opts.dut),
      deviceReached: existsSync(join(out, "device.json")),
      lab: {
        file: labFile,
        name: lab.topology.lab,
        ...readClocks(out),
        segments: Object.fromEntries(
          Object.entries(lab.topology.segments).map(([n, seg]) => [n, seg.hub ? "hub" : "learning switch"]),
        ),
      },
      // The vrrp suite's address family shows where a vrls mode would (one parameter per run).
      mode: opts.mode ?? opts.family ?? "default",
      startedAt,
      finishedAt,
      explanations: registration.knownDeviations ?? {},
      ...(interrupted ? { interrupted } : {}),
    });
    const runs = await readHistory(out);
    await writeFile(join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    emit({ type: "step", step: "report", detail: "certification page" });
    await writeFile(join(out, "index.html"), renderCertificationPage(summary, runs));
    let junit: string | undefined;
    if (opts.junit) {
      junit = resolve(opts.junit);
      emit({ type: "step", step: "report", detail: `JUnit ${junit}` });
      await writeFile(
        junit,
        renderJunit(summary, catalogue, { out, junitFile: junit, hostname: hostname() }),
      );
    }
    runs.push({
      finishedAt: summary.finishedAt,
      verdict: summary.verdict,
      pass: summary.counts.pass,
      fail: summary.counts.fail,
      inconclusive: summary.counts.inconclusive,
      notApplicable: summary.counts["not-applicable"],
      notRun: summary.counts["not-run"],
      wallTimeMs: summary.wallTimeMs,
    });
    await writeFile(join(out, "history.json"), `${JSON.stringify(runs, null, 2)}\n`);

    let allureError: string | undefined;
    if (interrupted) {
      // Interrupted: the runner may be given seconds only (a CI cancel); the Allure site takes longer.
      allureError = "allure site not generated: the run was interrupted";
    } else if (opts.allure !== false) {
      emit({ type: "step", step: "report", detail: "Allure site" });
      try {
        await generateAllureSite(out, {
          name: `${opts.dut} / ${suite} / ${summary.finishedAt}`,
          buildOrder: runs.length,
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
    }
    emit({ type: "step", step: "report", detail: "written", done: true });
    return {
      summary,
      exitCode: exitCodeOf(summary),
      out,
      ...(allureError ? { allureError } : {}),
      ...(junit ? { junit } : {}),
    };
  }
}
