import { dirname, join, relative } from "node:path";
import type { Catalogue } from "./catalogue.ts";
import type { CaseResult, CertificationSummary } from "./summary.ts";

/**
 * `tandem certify --junit FILE`: the summary as JUnit XML, the format GitLab, Jenkins and
 * most CI dashboards read. One <testcase> per suite case; classname = the requirement
 * group of the case's first requirement (its Allure "feature"); the requirement IDs, their
 * levels and the evidence paths (relative to FILE's folder, so an archived artifact keeps
 * its links) are <properties>. Mapping: fail -> <failure>, inconclusive -> <error> (the
 * case could not judge), not applicable / not run -> <skipped>. Hand-written (a dozen
 * lines of XML), because the JUnit writers on npm expect to own the test run, not to
 * serialise a verdict computed elsewhere.
 */

const XML_ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/gu;

function attr(value: string): string {
  return value
    .replace(XML_ILLEGAL, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/\n/g, "&#10;")
    .replace(/\r/g, "&#13;")
    .replace(/\t/g, "&#9;");
}

function text(value: string): string {
  return value
    .replace(XML_ILLEGAL, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;");
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

function property(name: string, value: string, indent: string): string {
  return `${indent}<property name="${attr(name)}" value="${attr(value)}"/>`;
}

export function renderJunit(
  summary: CertificationSummary,
  catalogue: Catalogue,
  options: { out: string; junitFile: string; hostname?: string },
): string {
  const reqById = new Map(catalogue.requirements.map((r) => [r.id, r]));
  const reqsOfCase = (c: CaseResult) =>
    catalogue.requirements.filter((r) => r.suite === summary.suite && !r.retired && r.cases.includes(c.id));
  const evidencePath = (href: string) => relative(dirname(options.junitFile), join(options.out, href));
  const count = (v: CaseResult["verdict"] | CaseResult["verdict"][]) =>
    summary.cases.filter((c) => (Array.isArray(v) ? v.includes(c.verdict) : c.verdict === v)).length;
  const tests = summary.cases.length;
  const failures = count("fail");
  const errors = count("inconclusive");
  const skipped = count(["not-applicable", "not-run"]);
  const time = seconds(summary.wallTimeMs);

  const cases = summary.cases.map((c) => {
    const reqs = reqsOfCase(c);
    const classname = `${summary.suite}.${reqs[0]?.group ?? "unmapped"}`;
    const props = [
      ...reqs.map((r) => property("requirement", r.id, "        ")),
      ...reqs.map((r) => property(`level.${r.id}`, reqById.get(r.id)?.level ?? "", "        ")),
      property("case", c.id, "        "),
      property("verdict", c.verdict, "        "),
      ...c.evidence.map((e) => property(`evidence.${e.name}`, evidencePath(e.href), "        ")),
      ...(c.explanation ? [property("known-deviation", c.explanation, "        ")] : []),
    ];
    let outcome = "";
    if (c.verdict === "fail")
      outcome = `      <failure message="${attr(c.error ?? "failed")}" type="fail">${text(c.error ?? "failed")}</failure>\n`;
    else if (c.verdict === "inconclusive")
      outcome = `      <error message="${attr(c.reason ?? "inconclusive")}" type="inconclusive">${text(c.reason ?? "")}</error>\n`;
    else if (c.verdict === "not-applicable" || c.verdict === "not-run")
      outcome = `      <skipped message="${attr(`${c.verdict}: ${c.reason ?? ""}`)}"/>\n`;
    return (
      `    <testcase name="${attr(`[${c.id}] ${c.title}`)}" classname="${attr(classname)}" time="${seconds(c.durationMs)}">\n` +
      `      <properties>\n${props.join("\n")}\n      </properties>\n` +
      outcome +
      "    </testcase>"
    );
  });

  const suiteProps = [
    property("device.adapter", summary.device.adapter, "      "),
    property("device.vendor", summary.device.vendor, "      "),
    property("device.product", summary.device.product, "      "),
    property("device.version", summary.device.version, "      "),
    property("lab", summary.lab.name, "      "),
    property("mode", summary.mode, "      "),
    property("verdict", summary.verdict, "      "),
    property("verdict.reason", summary.verdictReason, "      "),
    ...(summary.interrupted ? [property("interrupted", summary.interrupted, "      ")] : []),
    property("report", relative(dirname(options.junitFile), join(options.out, "index.html")), "      "),
  ];
  const name = `tandem.${summary.suite}`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="${attr(`tandem certify ${summary.device.adapter} ${summary.suite}`)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time}">
  <testsuite name="${attr(name)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time}" timestamp="${summary.startedAt.replace(/\.\d+Z$/, "")}"${options.hostname ? ` hostname="${attr(options.hostname)}"` : ""}>
    <properties>
${suiteProps.join("\n")}
    </properties>
${cases.join("\n")}
  </testsuite>
</testsuites>
`;
}
