import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { ClockOffset } from "../lab/state.ts";
import type { CaseRecord } from "./cases/define.ts";
import { type Catalogue, type LevelT, requirementsOf, type SuiteNameT } from "./catalogue.ts";

/**
 * The certification summary of one device and one suite: per-requirement verdicts from
 * the case results, with links to the evidence, and the overall verdict. A requirement
 * passes when every applicable case verifying it passed; it fails when any failed; it is
 * inconclusive when a case could not judge for incomplete evidence (a capture that
 * dropped packets) and none failed; it is not applicable when the device lacks what every
 * one of its cases needs; it is not run when a case was not available (or never ran). The
 * device is certified when no MUST requirement fails, stays inconclusive or stays unrun
 * and at least one requirement passed; it is "not certified" when a MUST requirement
 * failed on evidence; otherwise the run could not judge ("not judged": the lab or the
 * device did not come up, the run was interrupted, or a MUST stayed inconclusive or unrun).
 * `tandem certify` exits 0, 1 and 3 for these (exitCodeOf).
 */
export type Verdict = "pass" | "fail" | "inconclusive" | "not-applicable" | "not-run";

export interface CaseResult {
  id: string;
  title: string;
  verdict: Verdict;
  reason?: string;
  error?: string;
  /** The adapter's documented explanation of a known deviation (never turns a fail into a pass). */
  explanation?: string;
  durationMs: number;
  evidence: { name: string; href: string; contentType: string }[];
}

export interface RequirementResult {
  id: string;
  level: LevelT;
  group: string;
  source: string;
  text: string;
  verdict: Verdict;
  cases: string[];
}

export interface DeviceRecord {
  adapter: string;
  vendor: string;
  product: string;
  version: string;
}

export interface CertificationSummary {
  tool: "tandem";
  suite: SuiteNameT;
  suiteTitle: string;
  device: DeviceRecord;
  lab: {
    file: string;
    name: string;
    clocks?: Record<string, ClockOffset>;
    /** Each segment's kind from the lab file: a verdict may depend on it (VRRP-FWD-002). */
    segments?: Record<string, "hub" | "learning switch">;
  };
  mode: string;
  startedAt: string;
  finishedAt: string;
  wallTimeMs: number;
  verdict: "certified" | "not certified" | "not judged";
  verdictReason: string;
  /** Set when the run was interrupted (the signal): no requirement is judged. */
  interrupted?: string;
  counts: Record<Verdict, number> & { requirements: number; cases: number };
  requirements: RequirementResult[];
  cases: CaseResult[];
  allure: string;
}

/** vitest's JSON reporter: the status of every test, by title. */
interface VitestJson {
  testResults?: {
    assertionResults?: { title: string; status: string; failureMessages?: string[] }[];
    message?: string;
  }[];
}

function readCaseRecords(out: string): Map<string, CaseRecord> {
  const dir = join(out, "cases");
  const map = new Map<string, CaseRecord>();
  if (!existsSync(dir)) return map;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".json")) continue;
    try {
      const r = JSON.parse(readFileSync(join(dir, f), "utf8")) as CaseRecord;
      map.set(r.id, r);
    } catch {
      // a half-written record (killed run) counts as a case that did not run
    }
  }
  return map;
}

function readVitestStatuses(out: string): {
  statuses: Map<string, { status: string; message?: string }>;
  fileError?: string;
} {
  const statuses = new Map<string, { status: string; message?: string }>();
  const path = join(out, "vitest.json");
  if (!existsSync(path)) return { statuses, fileError: "the suite run left no vitest.json" };
  const json = JSON.parse(readFileSync(path, "utf8")) as VitestJson;
  let fileError: string | undefined;
  for (const file of json.testResults ?? []) {
    if (file.message) fileError = file.message;
    for (const a of file.assertionResults ?? []) {
      const m = /^\[([a-z0-9.-]+)\]/.exec(a.title);
      if (m?.[1]) statuses.set(m[1], { status: a.status, message: a.failureMessages?.[0] });
    }
  }
  return { statuses, fileError };
}

export interface SummaryInput {
  catalogue: Catalogue;
  suite: SuiteNameT;
  caseTitles: Readonly<Record<string, { title: string }>>;
  out: string;
  device: DeviceRecord;
  lab: {
    file: string;
    name: string;
    clocks?: Record<string, ClockOffset>;
    /** Each segment's kind from the lab file: a verdict may depend on it (VRRP-FWD-002). */
    segments?: Record<string, "hub" | "learning switch">;
  };
  mode: string;
  startedAt: Date;
  finishedAt: Date;
  explanations?: Readonly<Record<string, string>>;
  /** The signal that interrupted the run: every requirement stays not run, verdict "not judged". */
  interrupted?: string;
  /** False when the suite never reached the device (no OUT/device.json): its cases did not run. */
  deviceReached?: boolean;
}

/** The process exit code of a verdict: 0 certified, 1 not certified, 3 not judged. */
export function exitCodeOf(summary: Pick<CertificationSummary, "verdict">): 0 | 1 | 3 {
  return summary.verdict === "certified" ? 0 : summary.verdict === "not certified" ? 1 : 3;
}

/** What certCase records when its suite's beforeAll failed (suites/support/requirement.ts). */
const DEVICE_NOT_SET_UP = /the suite's device was not set up/;

export function buildSummary(input: SummaryInput): CertificationSummary {
  const records = readCaseRecords(input.out);
  const { statuses, fileError } = readVitestStatuses(input.out);
  const cases: CaseResult[] = Object.entries(input.caseTitles).map(([id, def]) => {
    const record = records.get(id);
    const status = statuses.get(id);
    let verdict: Verdict;
    // The lab or the device never came up: the case did not run (it is no failure of the device).
    const unreached =
      input.deviceReached === false && status?.status !== "passed" && record?.status !== "not-applicable";
    if (unreached || (record && DEVICE_NOT_SET_UP.test(record.error ?? ""))) verdict = "not-run";
    // An inconclusive case is a failed test for vitest; its record says why.
    else if (record?.status === "inconclusive" && status?.status !== "passed") verdict = "inconclusive";
    else if (status?.status === "passed") verdict = "pass";
    else if (status?.status === "failed") verdict = "fail";
    else if (record?.status === "not-applicable") verdict = "not-applicable";
    // vitest wrote no result (killed, interrupted): a case record is written when a case ends.
    else if (!status && record?.status === "passed") verdict = "pass";
    else if (!status && record?.status === "failed") verdict = "fail";
    else verdict = "not-run";
    const reason =
      verdict === "not-run" && (unreached || !record?.reason)
        ? `the case did not run${unreached ? " (the lab or the device did not come up)" : ""}${fileError ? `: ${fileError.split("\n")[0]}` : status?.message ? `: ${status.message.split("\n")[0]}` : ""}`
        : record?.reason;
    const explanation = verdict === "fail" ? input.explanations?.[id] : undefined;
    return {
      id,
      title: def.title,
      verdict,
      ...(reason ? { reason } : {}),
      ...(verdict === "fail" ? { error: record?.error ?? status?.message?.split("\n")[0] ?? "failed" } : {}),
      ...(explanation ? { explanation } : {}),
      durationMs: record?.durationMs ?? 0,
      evidence: (record?.evidence ?? []).map((e) => ({
        name: e.name,
        href: relative(input.out, e.file),
        contentType: e.contentType,
      })),
    };
  });
  const byId = new Map(cases.map((c) => [c.id, c]));
  const requirements: RequirementResult[] = requirementsOf(input.catalogue, input.suite).map((r) => {
    const verdicts = r.cases.map((c) => byId.get(c)?.verdict ?? "not-run");
    const verdict: Verdict = input.interrupted
      ? "not-run"
      : verdicts.includes("fail")
        ? "fail"
        : verdicts.includes("inconclusive")
          ? "inconclusive"
          : verdicts.every((v) => v === "not-applicable")
            ? "not-applicable"
            : verdicts.includes("not-run")
              ? "not-run"
              : "pass";
    return {
      id: r.id,
      level: r.level,
      group: r.group,
      source: r.source,
      text: r.text,
      verdict,
      cases: r.cases,
    };
  });
  const count = (v: Verdict) => requirements.filter((r) => r.verdict === v).length;
  const mustFailed = requirements.filter((r) => r.level === "MUST" && r.verdict === "fail");
  const mustUnrun = requirements.filter((r) => r.level === "MUST" && r.verdict === "not-run");
  const mustInconclusive = requirements.filter((r) => r.level === "MUST" && r.verdict === "inconclusive");
  const certified =
    mustFailed.length === 0 && mustUnrun.length === 0 && mustInconclusive.length === 0 && count("pass") > 0;
  const ran = cases.filter((c) => c.verdict !== "not-run").length;
  const firstError =
    fileError?.split("\n")[0] ??
    [...statuses.values()].find((st) => st.status === "failed" && st.message)?.message?.split("\n")[0];
  const verdictReason = input.interrupted
    ? `interrupted by ${input.interrupted} after ${ran} of ${cases.length} cases; no requirement is judged`
    : input.deviceReached === false && count("pass") === 0
      ? `the lab or the device did not come up${firstError ? `: ${firstError}` : ""}; no requirement is judged`
      : certified
        ? `every MUST requirement passed or is not applicable (${count("pass")} passed, ${count("not-applicable")} not applicable)`
        : [
            mustFailed.length
              ? `${mustFailed.length} MUST requirement(s) failed: ${mustFailed.map((r) => r.id).join(", ")}`
              : "",
            mustInconclusive.length
              ? `${mustInconclusive.length} MUST requirement(s) inconclusive (incomplete evidence): ${mustInconclusive.map((r) => r.id).join(", ")}`
              : "",
            mustUnrun.length
              ? `${mustUnrun.length} MUST requirement(s) not run: ${mustUnrun.map((r) => r.id).join(", ")}`
              : "",
            count("pass") === 0 ? "no requirement passed" : "",
          ]
            .filter(Boolean)
            .join("; ");
  return {
    tool: "tandem",
    suite: input.suite,
    suiteTitle: input.catalogue.suites[input.suite]?.title ?? input.suite,
    device: input.device,
    lab: input.lab,
    mode: input.mode,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    wallTimeMs: input.finishedAt.getTime() - input.startedAt.getTime(),
    verdict: input.interrupted
      ? "not judged"
      : certified
        ? "certified"
        : mustFailed.length > 0
          ? "not certified"
          : "not judged",
    verdictReason,
    ...(input.interrupted ? { interrupted: input.interrupted } : {}),
    counts: {
      requirements: requirements.length,
      cases: cases.length,
      pass: count("pass"),
      fail: count("fail"),
      inconclusive: count("inconclusive"),
      "not-applicable": count("not-applicable"),
      "not-run": count("not-run"),
    },
    requirements,
    cases,
    allure: "allure/index.html",
  };
}
