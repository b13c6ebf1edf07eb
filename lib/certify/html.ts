import type { CertificationSummary, Verdict } from "./summary.ts";

/** One line of OUT/history.json: earlier runs into the same directory, for the trend. */
export interface HistoryEntry {
  finishedAt: string;
  verdict: CertificationSummary["verdict"];
  pass: number;
  fail: number;
  /** Absent in entries written before inconclusive verdicts existed. */
  inconclusive?: number;
  notApplicable: number;
  notRun: number;
  wallTimeMs: number;
}

const esc = (s: unknown) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );

const LABEL: Record<Verdict, string> = {
  pass: "pass",
  fail: "fail",
  inconclusive: "inconclusive",
  "not-applicable": "not applicable",
  "not-run": "not run",
};

function badge(v: Verdict): string {
  return `<span class="badge v-${v}">${LABEL[v]}</span>`;
}

export const caseAnchor = (id: string) => `case-${id.replace(/[^a-z0-9-]/g, "-")}`;

/**
 * The figure a failed case failed on: the first line of its assertion message, which the
 * suites phrase as "what was measured: expected X to be Y" (e.g. "datagrams forwarded
 * twice on the wire: expected 11767 to be 0"). vitest's diff lines that follow are left out.
 */
export function failedFigure(error: string | undefined): string {
  const first = (error ?? "failed").split("\n").find((l) => l.trim() !== "") ?? "failed";
  return first.replace(/\s*\/\/ Object\.is equality$/, "").trim();
}

/** Per failed requirement: each failing case, the figure that failed and its chart (the first one). */
function failedRequirements(s: CertificationSummary): string {
  const failed = s.requirements.filter((r) => r.verdict === "fail");
  if (failed.length === 0) return "";
  const byId = new Map(s.cases.map((c) => [c.id, c]));
  const blocks = failed.map((r) => {
    const cases = r.cases.map((id) => byId.get(id)).filter((c) => c?.verdict === "fail");
    const items = cases.map((c) => {
      const chart = c!.evidence.find((e) => e.contentType === "image/svg+xml");
      return `<div class="failed-case" data-case="${esc(c!.id)}">
  <p>case <a href="#${caseAnchor(c!.id)}"><code>${esc(c!.id)}</code></a> ${esc(c!.title)}</p>
  <p class="figure"><b>failed on:</b> ${esc(failedFigure(c!.error))}</p>
  ${c!.explanation ? `<p class="explanation"><b>Why:</b> ${esc(c!.explanation)}</p>` : ""}
  ${chart ? `<img class="chart" src="${esc(chart.href)}" alt="${esc(chart.name)}">` : '<p class="no-chart">(this case attaches no chart)</p>'}
</div>`;
    });
    return `<section class="failed-req" data-requirement="${esc(r.id)}">
<h3>${badge("fail")} <code>${esc(r.id)}</code> (${esc(r.level)}) ${esc(r.text)} <span class="source">${esc(r.source)}</span></h3>
${items.join("\n")}
</section>`;
  });
  return `<h2 id="failed">Failed requirements</h2>\n${blocks.join("\n")}`;
}

/** The certification page (DIR/index.html): static, self-contained, links to the evidence and the Allure site. */
export function renderCertificationPage(
  s: CertificationSummary,
  history: readonly HistoryEntry[],
  /** Further pages about this run (e.g. the seeded-fault matrix of `tandem faults`). */
  links: readonly { href: string; label: string }[] = [],
): string {
  const groups = [...new Set(s.requirements.map((r) => r.group))];
  const reqRows = groups
    .map((g) => {
      const rows = s.requirements
        .filter((r) => r.group === g)
        .map(
          (r) => `<tr class="req" data-requirement="${esc(r.id)}" data-verdict="${r.verdict}">
  <td class="id">${esc(r.id)}</td><td>${esc(r.level)}</td><td>${badge(r.verdict)}</td>
  <td>${esc(r.text)}<div class="source">${esc(r.source)}</div></td>
  <td>${r.cases.map((c) => `<a href="#${caseAnchor(c)}">${esc(c)}</a>`).join("<br>")}</td></tr>`,
        )
        .join("\n");
      return `<tr class="group"><th colspan="5">${esc(g)}</th></tr>\n${rows}`;
    })
    .join("\n");
  const caseBlocks = s.cases
    .map((c) => {
      const charts = c.evidence.filter((e) => e.contentType === "image/svg+xml");
      return `<section class="case" id="${caseAnchor(c.id)}" data-case="${esc(c.id)}" data-verdict="${c.verdict}">
  <h3>${badge(c.verdict)} <code>${esc(c.id)}</code> ${esc(c.title)} <span class="dur">${(c.durationMs / 1000).toFixed(1)} s</span></h3>
  ${c.reason ? `<p class="reason">${esc(c.reason)}</p>` : ""}
  ${c.error ? `<pre class="error">${esc(c.error)}</pre>` : ""}
  ${c.explanation ? `<p class="explanation"><b>Why:</b> ${esc(c.explanation)}</p>` : ""}
  ${c.evidence.length ? `<ul class="evidence">${c.evidence.map((e) => `<li><a href="${esc(e.href)}" data-type="${esc(e.contentType)}">${esc(e.name)}</a></li>`).join("")}</ul>` : ""}
  ${charts.map((e) => `<img class="chart" src="${esc(e.href)}" alt="${esc(e.name)}">`).join("")}
</section>`;
    })
    .join("\n");
  const failedBlock = failedRequirements(s);
  const unjudged = s.cases.filter((c) => c.verdict === "inconclusive");
  const inconclusive = unjudged.length
    ? `<h2>Inconclusive: incomplete evidence, no verdict</h2>
<ul class="inconclusive">${unjudged.map((c) => `<li><a href="#${caseAnchor(c.id)}">${esc(c.id)}</a>: ${esc(c.reason ?? "")}</li>`).join("\n")}</ul>`
    : "";
  const trend = history.length
    ? `<table class="trend"><tr><th>finished</th><th>verdict</th><th>pass</th><th>fail</th><th>inconclusive</th><th>n/a</th><th>not run</th><th>wall time</th></tr>
${history
  .map(
    (h) =>
      `<tr><td>${esc(h.finishedAt)}</td><td>${esc(h.verdict)}</td><td>${h.pass}</td><td>${h.fail}</td><td>${h.inconclusive ?? 0}</td><td>${h.notApplicable}</td><td>${h.notRun}</td><td>${(h.wallTimeMs / 1000).toFixed(0)} s</td></tr>`,
  )
  .join("\n")}</table>`
    : "<p>first run into this directory</p>";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Certification: ${esc(s.device.product)} - ${esc(s.suiteTitle)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
.verdict { font-size: 1.3em; padding: .6em 1em; border-radius: 6px; }
.verdict.certified { background: #e3f6e3; border: 1px solid #3a3; } .verdict.not { background: #fde8e8; border: 1px solid #c33; }
.verdict.unjudged { background: #efe8f8; border: 1px solid #75c; }
table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #eee; padding: 4px 6px; text-align: left; vertical-align: top; }
tr.group th { background: #f3f3f3; } td.id { white-space: nowrap; font-family: monospace; }
.source { color: #777; font-size: .85em; }
.badge { display: inline-block; padding: 0 .5em; border-radius: 3px; font-size: .85em; white-space: nowrap; }
.v-pass { background: #3a3; color: #fff; } .v-fail { background: #c33; color: #fff; }
.v-inconclusive { background: #75c; color: #fff; } .case[data-verdict=inconclusive] { border-color: #75c; }
.v-not-applicable { background: #999; color: #fff; } .v-not-run { background: #e90; color: #fff; }
.case { border-left: 3px solid #ddd; padding-left: 1em; margin: 1em 0; } .case[data-verdict=fail] { border-color: #c33; }
pre.error { background: #fff4f4; padding: .5em; white-space: pre-wrap; } .explanation { background: #fffbe6; padding: .4em; }
img.chart { max-width: 100%; border: 1px solid #eee; } .dur { color: #888; font-weight: normal; font-size: .8em; }
.failed-req { border: 1px solid #c33; border-radius: 6px; padding: 0 1em .5em; margin: 1em 0; background: #fffafa; }
.failed-req h3 { font-size: 1.05em; } p.figure { font-size: 1.1em; background: #fde8e8; padding: .3em .5em; font-family: monospace; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 1em; } dl.meta dt { font-weight: bold; }
</style></head>
<body>
<h1>Certification summary: ${esc(s.device.product)} - ${esc(s.suiteTitle)}</h1>
<p class="verdict ${s.verdict === "certified" ? "certified" : s.verdict === "not judged" ? "unjudged" : "not"}" id="verdict"${s.interrupted ? ` data-interrupted="${esc(s.interrupted)}"` : ""}><b>${esc(s.verdict.toUpperCase())}</b> - ${esc(s.verdictReason)}</p>
<dl class="meta">
<dt>device</dt><dd>${esc(s.device.vendor)} ${esc(s.device.product)} ${esc(s.device.version)} (adapter <code>${esc(s.device.adapter)}</code>)</dd>
<dt>suite</dt><dd>${esc(s.suite)} - ${esc(s.suiteTitle)}</dd>
<dt>lab</dt><dd>${esc(s.lab.name)} (${esc(s.lab.file)})</dd>${segmentLine(s)}${clockLine(s)}
<dt>mode</dt><dd>${esc(s.mode)}</dd>
<dt>date</dt><dd>${esc(s.startedAt)} - ${esc(s.finishedAt)} (${(s.wallTimeMs / 1000).toFixed(0)} s)</dd>
<dt>requirements</dt><dd>${s.counts.requirements}: ${s.counts.pass} pass, ${s.counts.fail} fail, <span id="inconclusive-count">${s.counts.inconclusive} inconclusive</span>, ${s.counts["not-applicable"]} not applicable, ${s.counts["not-run"]} not run (${s.counts.cases} cases)</dd>
<dt>details</dt><dd><a href="${esc(s.allure)}" id="allure-link">Allure report</a> - <a href="summary.json">summary.json</a>${links.map((l) => ` - <a href="${esc(l.href)}" class="extra-link">${esc(l.label)}</a>`).join("")}</dd>
</dl>
${failedBlock}
${inconclusive}
<h2>Requirements</h2>
<table class="requirements"><tr><th>ID</th><th>level</th><th>verdict</th><th>requirement</th><th>cases</th></tr>
${reqRows}
</table>
<h2>Cases and evidence</h2>
${caseBlocks}
<h2>Earlier runs</h2>
${trend}
</body></html>
`;
}

/** The lab's segment kinds (hub / learning switch): the page says which segment types the verdicts were reached on. */
function segmentLine(s: CertificationSummary): string {
  const segs = Object.entries(s.lab.segments ?? {});
  if (segs.length === 0) return "";
  return `\n<dt>segments</dt><dd id="lab-segments">${segs.map(([n, k]) => `${esc(n)}: <b>${esc(k)}</b>`).join(", ")}</dd>`;
}

/** Physical labs: each host's clock offset to the controller, measured at lab start. */
function clockLine(s: CertificationSummary): string {
  if (!s.lab.clocks) return "";
  const items = Object.entries(s.lab.clocks).map(
    ([h, c]) => `${esc(h)} ${c.offsetMs.toFixed(3)} ms (± ${c.uncertaintyMs.toFixed(3)})`,
  );
  return `\n<dt>host clocks</dt><dd id="clocks">offset to the controller, corrected in timing analysis: ${items.join(", ")}</dd>`;
}
