import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { loadCatalogue, SUITE_NAMES, type SuiteNameT } from "./catalogue.ts";
import { casesForFault, type FaultEntry, type FaultsCatalogue, loadFaults } from "./faults-catalogue.ts";
import { caseAnchor, type HistoryEntry, renderCertificationPage } from "./html.ts";
import { type CertifyEvent, runCertification } from "./run.ts";
import type { CertificationSummary } from "./summary.ts";

/**
 * `tandem faults` (issue 13): the seeded-fault campaign. Per suite, one clean run of the
 * whole suite against the reference, then one run per fault of that suite in
 * suites/faults.yaml (`--dut-option fault=NAME`), restricted to the cases of the fault's
 * expected requirements plus the suite's smoke set. A fault is caught when every expected
 * requirement failed; missed otherwise; requirements that failed without being expected
 * are its collateral. Writes OUT/<suite>/faults.json and OUT/<suite>/matrix.html (linked
 * from the clean run's certification page).
 */

export interface FaultRunResult {
  fault: string;
  expected: string[];
  failed: string[];
  /** Expected and failed. */
  caught: string[];
  /** Expected but did not fail. */
  missed: string[];
  /** Failed without being expected. */
  collateral: string[];
  /** Every expected requirement failed. */
  verdict: "caught" | "missed";
  cases: string[];
  wallTimeMs: number;
  /** The run's directory, relative to the suite's campaign directory. */
  dir: string;
  /** Per failed requirement, the failing case (for the matrix links). */
  failingCase: Record<string, string>;
}

export interface SuiteCampaign {
  suite: SuiteNameT;
  clean: { verdict: CertificationSummary["verdict"]; reason: string; wallTimeMs: number; dir: string };
  /** The suite's requirement IDs (the clean run's, in catalogue order): the matrix columns. */
  requirements: string[];
  faults: FaultRunResult[];
  wallTimeMs: number;
  ok: boolean;
}

/**
 * `--suite all`: OUT/faults.json, the three campaigns in one file with per-suite and overall
 * counts, beside OUT/<suite>/faults.json; OUT/matrix.html shows every suite's matrix on one page.
 */
export interface CampaignIndex {
  suites: {
    suite: SuiteNameT;
    faults: number;
    caught: number;
    missed: number;
    clean: SuiteCampaign["clean"]["verdict"];
    wallTimeMs: number;
    ok: boolean;
  }[];
  totals: { faults: number; caught: number; missed: number; wallTimeMs: number };
  /** Every fault caught and every clean run certified. */
  ok: boolean;
  campaigns: SuiteCampaign[];
}

export function campaignIndex(campaigns: readonly SuiteCampaign[]): CampaignIndex {
  const suites = campaigns.map((c) => {
    const caught = c.faults.filter((f) => f.verdict === "caught").length;
    return {
      suite: c.suite,
      faults: c.faults.length,
      caught,
      missed: c.faults.length - caught,
      clean: c.clean.verdict,
      wallTimeMs: c.wallTimeMs,
      ok: c.ok,
    };
  });
  const sum = (k: "faults" | "caught" | "missed" | "wallTimeMs") => suites.reduce((n, s) => n + s[k], 0);
  return {
    suites,
    totals: {
      faults: sum("faults"),
      caught: sum("caught"),
      missed: sum("missed"),
      wallTimeMs: sum("wallTimeMs"),
    },
    ok: campaigns.length > 0 && campaigns.every((c) => c.ok),
    campaigns: [...campaigns],
  };
}

export interface FaultsOptions {
  suite: SuiteNameT | "all";
  out: string;
  /** Only these faults (default: every fault of the suite). */
  only?: string[];
  /** One line per finished run. */
  onProgress?: (line: string) => void;
  /** Structured progress (the CLI's bar): each run's start and end, each finished case. */
  onEvent?: (event: FaultsEvent) => void;
  /** Echo of the suites' output (default: none; it stays in each run's suite.log). */
  onOutput?: (chunk: string) => void;
}

/**
 * Progress of a campaign. Runs are numbered 0 (the clean run) to `total` (the faults);
 * `caught` and `missed` count the faults judged so far in this suite.
 */
export type FaultsEvent =
  | { type: "run-start"; suite: SuiteNameT; run: string; index: number; total: number }
  | { type: "case-end"; suite: SuiteNameT; run: string; id: string; outcome: string }
  | {
      type: "run-end";
      suite: SuiteNameT;
      run: string;
      index: number;
      total: number;
      /** The clean run's verdict, or a fault's: "caught" / "missed". */
      verdict: string;
      caught: number;
      missed: number;
      /** The plain line for this run (what onProgress gets, without the suite prefix). */
      line: string;
    };

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A vitest -t pattern that selects exactly these case IDs (titles are "[<id>] <title>"). */
export function casePattern(ids: readonly string[]): string {
  return `\\[(${ids.map(escapeRe).join("|")})\\]`;
}

export function judgeFault(
  fault: FaultEntry,
  summary: CertificationSummary,
): Omit<FaultRunResult, "cases" | "wallTimeMs" | "dir"> {
  const failed = summary.requirements.filter((r) => r.verdict === "fail").map((r) => r.id);
  const caught = fault.expect.filter((id) => failed.includes(id));
  const failingCase: Record<string, string> = {};
  for (const id of failed) {
    const r = summary.requirements.find((x) => x.id === id);
    const c = r?.cases.find((cid) => summary.cases.find((x) => x.id === cid)?.verdict === "fail");
    if (c) failingCase[id] = c;
  }
  return {
    fault: fault.name,
    expected: [...fault.expect],
    failed,
    caught,
    missed: fault.expect.filter((id) => !failed.includes(id)),
    collateral: failed.filter((id) => !fault.expect.includes(id)),
    verdict: caught.length === fault.expect.length ? "caught" : "missed",
    failingCase,
  };
}

export async function runFaultCampaign(opts: FaultsOptions): Promise<SuiteCampaign[]> {
  const catalogue = loadCatalogue();
  const faults = loadFaults(undefined, catalogue);
  const suites = opts.suite === "all" ? [...SUITE_NAMES] : [opts.suite];
  if (opts.only) {
    const unknown = opts.only.filter((n) => !faults.faults.some((f) => f.name === n));
    if (unknown.length > 0) throw new Error(`--fault: not in ${faults.file}: ${unknown.join(", ")}`);
  }
  const out: SuiteCampaign[] = [];
  for (const suite of suites) out.push(await runSuiteCampaign(suite, faults, catalogue, opts));
  if (opts.suite === "all") {
    const index = campaignIndex(out);
    await writeFile(join(resolve(opts.out), "faults.json"), `${JSON.stringify(index, null, 2)}\n`);
    await writeFile(join(resolve(opts.out), "matrix.html"), renderCampaignIndex(index));
    opts.onProgress?.(
      `[faults all] ${index.totals.caught}/${index.totals.faults} caught; ` +
        index.suites.map((x) => `${x.suite} clean ${x.clean}`).join(", ") +
        `; ${(index.totals.wallTimeMs / 1000).toFixed(0)} s`,
    );
  }
  return out;
}

async function runSuiteCampaign(
  suite: SuiteNameT,
  faults: FaultsCatalogue,
  catalogue: ReturnType<typeof loadCatalogue>,
  opts: FaultsOptions,
): Promise<SuiteCampaign> {
  const dir = resolve(opts.out, suite);
  await mkdir(dir, { recursive: true });
  const list = faults.faults.filter((f) => f.suite === suite && (!opts.only || opts.only.includes(f.name)));
  const started = performance.now();
  const say = (line: string) => opts.onProgress?.(`[faults ${suite}] ${line}`);
  const total = list.length;
  say(`clean run (whole suite), then ${total} fault run(s)`);
  const results: FaultRunResult[] = [];
  const tally = () => {
    const caught = results.filter((r) => r.verdict === "caught").length;
    return { caught, missed: results.length - caught };
  };
  const caseEvents = (run: string) => ({
    onEvent: (e: CertifyEvent) => {
      if (e.type === "case-end")
        opts.onEvent?.({ type: "case-end", suite, run, id: e.id, outcome: e.outcome });
    },
  });
  opts.onEvent?.({ type: "run-start", suite, run: "clean", index: 0, total });
  const clean = await runCertification({
    dut: "reference",
    suite,
    out: join(dir, "clean"),
    dutOptions: {},
    ...caseEvents("clean"),
    ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
  });
  const cs = clean.summary;
  const cleanLine = `clean: ${cs.verdict} (${cs.counts.pass} pass, ${cs.counts.fail} fail) in ${(cs.wallTimeMs / 1000).toFixed(0)} s`;
  say(cleanLine);
  opts.onEvent?.({
    type: "run-end",
    suite,
    run: "clean",
    index: 0,
    total,
    verdict: cs.verdict,
    ...tally(),
    line: cleanLine,
  });
  for (const [i, fault] of list.entries()) {
    const cases = casesForFault(catalogue, faults, fault);
    const runDir = join(dir, "faults", fault.name);
    opts.onEvent?.({ type: "run-start", suite, run: fault.name, index: i + 1, total });
    const r = await runCertification({
      dut: "reference",
      suite,
      out: runDir,
      dutOptions: { fault: fault.name },
      cases: casePattern(cases),
      allure: false,
      ...caseEvents(fault.name),
      ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
    });
    const judged = judgeFault(fault, r.summary);
    results.push({ ...judged, cases, wallTimeMs: r.summary.wallTimeMs, dir: relative(dir, runDir) });
    const { caught, missed } = tally();
    const line =
      `fault ${i + 1}/${total} ${fault.name}: ${judged.verdict.toUpperCase()}` +
      ` (expected ${judged.expected.join(" ")}; failed ${judged.failed.join(" ") || "nothing"}` +
      `${judged.collateral.length ? `; collateral ${judged.collateral.join(" ")}` : ""})` +
      ` ${(r.summary.wallTimeMs / 1000).toFixed(0)} s; so far ${caught} caught, ${missed} missed`;
    say(line);
    opts.onEvent?.({
      type: "run-end",
      suite,
      run: fault.name,
      index: i + 1,
      total,
      verdict: judged.verdict,
      caught,
      missed,
      line,
    });
  }
  const campaign: SuiteCampaign = {
    suite,
    clean: { verdict: cs.verdict, reason: cs.verdictReason, wallTimeMs: cs.wallTimeMs, dir: "clean" },
    requirements: cs.requirements.map((r) => r.id),
    faults: results,
    wallTimeMs: Math.round(performance.now() - started),
    ok: cs.verdict === "certified" && results.every((r) => r.verdict === "caught"),
  };
  await writeFile(join(dir, "faults.json"), `${JSON.stringify(campaign, null, 2)}\n`);
  await writeFile(join(dir, "matrix.html"), renderFaultMatrix(campaign));
  // The clean run's certification page links the matrix.
  const history = await readFile(join(dir, "clean", "history.json"), "utf8")
    .then((t) => (JSON.parse(t) as HistoryEntry[]).slice(0, -1))
    .catch(() => [] as HistoryEntry[]);
  await writeFile(
    join(dir, "clean", "index.html"),
    renderCertificationPage(cs, history, [{ href: "../matrix.html", label: "seeded-fault matrix" }]),
  );
  say(
    `${results.filter((r) => r.verdict === "caught").length}/${results.length} caught; ` +
      `clean ${cs.verdict}; campaign ${(campaign.wallTimeMs / 1000).toFixed(0)} s`,
  );
  return campaign;
}

const esc = (s: unknown) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );

/**
 * The matrix of one suite: rows are faults, columns the suite's requirements. A cell is
 * marked when the requirement failed under the fault (linking to the failing case's
 * evidence on that run's certification page), and tells expected-and-failed (caught),
 * expected but passed (missed) and failed without being expected (collateral) apart.
 * Links are relative to the suite's campaign directory, or prefixed with `base`.
 */
function matrixTable(c: SuiteCampaign, base = ""): string {
  const reqs = c.requirements;
  const head = reqs.map((id) => `<th class="req"><div>${esc(id)}</div></th>`).join("");
  const rows = c.faults
    .map((f) => {
      const cells = reqs
        .map((id) => {
          const expected = f.expected.includes(id);
          const failed = f.failed.includes(id);
          const cls = expected && failed ? "caught" : expected ? "missed" : failed ? "collateral" : "";
          const mark = expected && failed ? "&#10007;" : expected ? "?" : failed ? "&#8226;" : "";
          const kase = f.failingCase[id];
          const body = kase
            ? `<a href="${esc(`${base}${f.dir}/index.html#${caseAnchor(kase)}`)}" title="${esc(`${id} failed in ${kase}`)}">${mark}</a>`
            : mark;
          return `<td class="${cls}" data-requirement="${esc(id)}">${body}</td>`;
        })
        .join("");
      return `<tr data-fault="${esc(f.fault)}" data-verdict="${f.verdict}"><th class="fault"><a href="${esc(`${base}${f.dir}/index.html`)}">${esc(f.fault)}</a></th><td class="v-${f.verdict}">${f.verdict}</td><td>${(f.wallTimeMs / 1000).toFixed(0)} s</td>${cells}</tr>`;
    })
    .join("\n");
  return `<table class="matrix" data-suite="${esc(c.suite)}">
<tr><th>fault</th><th>verdict</th><th>time</th>${head}</tr>
${rows}
</table>`;
}

function suiteSummary(c: SuiteCampaign, base = ""): string {
  const caught = c.faults.filter((f) => f.verdict === "caught").length;
  return `<b>${caught} of ${c.faults.length} faults caught</b>; clean run: <a href="${esc(`${base}${c.clean.dir}`)}/index.html">${esc(c.clean.verdict)}</a> (${(c.clean.wallTimeMs / 1000).toFixed(0)} s); campaign wall time ${(c.wallTimeMs / 1000).toFixed(0)} s; <a href="${esc(base)}faults.json">faults.json</a>`;
}

const PAGE_STYLE = `body { font-family: system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-size: .8em; }
th, td { border: 1px solid #ccc; padding: 2px 4px; text-align: center; }
th.req { height: 9em; vertical-align: bottom; white-space: nowrap; }
th.req div { writing-mode: vertical-rl; transform: rotate(180deg); }
th.fault { text-align: left; white-space: nowrap; }
td.caught { background: #cfc; } td.missed { background: #f99; font-weight: bold; } td.collateral { background: #fec; }
td.v-caught, td.v-ok { color: #060; } td.v-missed, td.v-failed { color: #c00; font-weight: bold; }
td a { text-decoration: none; color: inherit; display: block; }
table.totals td, table.totals th { font-size: 1.1em; padding: 3px 8px; }`;

const LEGEND = `<p>Rows: faults (<code>--dut-option fault=NAME</code>, lib/roles/seeded-faults.ts, expected catches in suites/faults.yaml). Columns: requirements.
Cells: <span style="background:#cfc">&#10007; expected and failed (caught)</span>,
<span style="background:#f99">? expected but passed (missed)</span>,
<span style="background:#fec">&#8226; failed without being expected (collateral)</span>. A marked cell links to the failing case's evidence.</p>`;

/** The matrix page of one suite (OUT/<suite>/matrix.html). */
export function renderFaultMatrix(c: SuiteCampaign): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Seeded faults: ${esc(c.suite)}</title>
<style>
${PAGE_STYLE}
</style></head><body>
<h1>Seeded-fault campaign: ${esc(c.suite)}</h1>
<p id="summary">${suiteSummary(c)}</p>
${LEGEND}
${matrixTable(c)}
</body></html>
`;
}

/** `--suite all`: one page (OUT/matrix.html) with the totals and every suite's matrix. */
export function renderCampaignIndex(index: CampaignIndex): string {
  const t = index.totals;
  const rows = index.suites
    .map(
      (s) =>
        `<tr data-suite="${esc(s.suite)}"><th><a href="#suite-${esc(s.suite)}">${esc(s.suite)}</a></th><td>${s.faults}</td><td>${s.caught}</td><td>${s.missed}</td><td><a href="${esc(s.suite)}/clean/index.html">${esc(s.clean)}</a></td><td>${(s.wallTimeMs / 1000).toFixed(0)} s</td><td class="v-${s.ok ? "ok" : "failed"}">${s.ok ? "ok" : "FAILED"}</td></tr>`,
    )
    .join("\n");
  const sections = index.campaigns
    .map(
      (c) => `<section id="suite-${esc(c.suite)}" data-suite="${esc(c.suite)}">
<h2>${esc(c.suite)}</h2>
<p class="summary">${suiteSummary(c, `${c.suite}/`)}; <a href="${esc(c.suite)}/matrix.html">this suite's page</a></p>
${matrixTable(c, `${c.suite}/`)}
</section>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Seeded faults: all suites</title>
<style>
${PAGE_STYLE}
</style></head><body>
<h1>Seeded-fault campaign: all suites</h1>
<p id="summary" data-ok="${index.ok}"><b>${t.caught} of ${t.faults} faults caught</b> over ${index.suites.length} suites; wall time ${(t.wallTimeMs / 1000).toFixed(0)} s; <a href="faults.json">faults.json</a>. ${index.ok ? "Every fault caught, every clean run certified." : "NOT OK: a fault was missed or a clean run did not certify."}</p>
<table class="totals">
<tr><th>suite</th><th>faults</th><th>caught</th><th>missed</th><th>clean run</th><th>wall time</th><th></th></tr>
${rows}
</table>
${LEGEND}
${sections}
</body></html>
`;
}
