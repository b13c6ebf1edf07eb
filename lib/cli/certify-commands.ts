import { type Command, InvalidArgumentError } from "commander";
import { SUITE_NAMES } from "../certify/catalogue.ts";
import { CertifyUsageError, runCertification } from "../certify/run.ts";
import { serveReport } from "../report/serve.ts";
import { CertifyDisplay } from "./progress.ts";

function collectOption(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected KEY=VALUE, got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/**
 * Exit codes of `tandem certify` (README, docs/certification.md): 0 certified; 1 not
 * certified (a MUST requirement failed); 2 bad usage or configuration; 3 the run could not
 * judge (lab or device error, a MUST left inconclusive or unrun, interrupted). Every
 * non-zero exit ends with one line on stderr that says why.
 */
export const EXIT = { certified: 0, notCertified: 1, usage: 2, notJudged: 3 } as const;

function reasonLine(code: number, why: string): string {
  const what =
    code === EXIT.notCertified
      ? "not certified"
      : code === EXIT.usage
        ? "bad usage or configuration"
        : "could not judge";
  return `tandem certify: exit ${code} (${what}): ${why.split("\n")[0]}\n`;
}

/** `tandem certify` and `tandem report open`. */
export function registerCertifyCommands(program: Command): void {
  program
    .command("certify")
    .description("run a conformance suite against a device and publish the certification report")
    .requiredOption("--dut <name>", "device adapter (vendor-adapters/<name>)")
    .requiredOption("--suite <suite>", `suite: ${SUITE_NAMES.join(", ")}`)
    .option("--lab <file>", "lab topology file (default: the suite's lab)")
    .option("--out <dir>", "output directory", "reports/certify")
    .option("--dut-option <key=value>", "adapter option (repeatable)", collectOption, {})
    .option(
      "--mode <mode>",
      "vrls: operation mode (timer, sequence-number, exactly-once) for the cases that do not test a mode themselves",
    )
    .option(
      "--family <family>",
      "vrrp: address family, ipv4 (default) or ipv6 (the IPv6 variant on labs/vrrp-dut-v6.yaml unless --lab)",
    )
    .option("--cases <pattern>", "run only cases whose title matches (vitest -t)")
    .option("--junit <file>", "also write the result as JUnit XML (one testcase per case)")
    .option("--json", "print the summary JSON on stdout (progress and verdict go to stderr)")
    .option("--verbose", "echo the suite's raw output (always kept in OUT/suite.log)")
    .option("--quiet", "no progress, only the verdict")
    .addHelpText(
      "after",
      "\nExit codes: 0 certified, 1 not certified (a MUST requirement failed), 2 bad usage or\n" +
        "configuration, 3 could not judge (lab or device error, MUST inconclusive or not run,\n" +
        "interrupted: SIGINT/SIGTERM tear the lab down and write a report marked interrupted).",
    )
    // Usage errors (a missing --dut, an unknown option) exit 2 like the other bad usage.
    .exitOverride((error) => {
      process.exitCode = error.exitCode === 0 ? 0 : EXIT.usage;
      if (error.exitCode !== 0)
        process.stderr.write(reasonLine(EXIT.usage, error.message.replace(/^error: /, "")));
      throw error;
    })
    .action(async (o) => {
      const tty = process.stderr.isTTY === true && !o.verbose;
      const display = o.quiet ? undefined : new CertifyDisplay(tty);
      let result: Awaited<ReturnType<typeof runCertification>>;
      try {
        result = await runCertification({
          dut: o.dut,
          suite: o.suite,
          lab: o.lab,
          out: o.out,
          dutOptions: o.dutOption,
          mode: o.mode,
          family: o.family,
          cases: o.cases,
          junit: o.junit,
          onOutput: o.verbose ? (chunk) => process.stderr.write(chunk) : undefined,
          onEvent: display?.handle,
        });
      } catch (error) {
        display?.stop();
        const usage = error instanceof CertifyUsageError;
        const code = usage ? EXIT.usage : EXIT.notJudged;
        const message = (error as Error).message;
        // A configuration error may list several issues: all of them, then the one-line reason.
        if (message.includes("\n")) process.stderr.write(`${message}\n`);
        process.stderr.write(reasonLine(code, message));
        process.exitCode = code;
        return;
      }
      display?.stop();
      const s = result.summary;
      const human =
        `\n${s.device.product} ${s.device.version} / ${s.suite}: ${s.verdict.toUpperCase()} - ${s.verdictReason}\n` +
        `requirements ${s.counts.requirements}: ${s.counts.pass} pass, ${s.counts.fail} fail, ` +
        `${s.counts.inconclusive} inconclusive, ` +
        `${s.counts["not-applicable"]} not applicable, ${s.counts["not-run"]} not run; wall time ${(s.wallTimeMs / 1000).toFixed(0)} s\n` +
        `summary: ${result.out}/summary.json\ncertification page: ${result.out}/index.html\n` +
        (result.junit ? `JUnit: ${result.junit}\n` : "") +
        (result.allureError ? `${result.allureError}\n` : `allure site: ${result.out}/allure/index.html\n`);
      if (o.json) {
        process.stderr.write(human);
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
      } else {
        process.stdout.write(human);
      }
      if (result.exitCode !== EXIT.certified)
        process.stderr.write(reasonLine(result.exitCode, s.verdictReason));
      process.exitCode = result.exitCode;
    });

  const report = program.command("report").description("certification reports");
  report
    .command("open <dir>")
    .description("serve a report directory on 127.0.0.1 until interrupted")
    .option("--port <port>", "TCP port (default: any free one)", (v) => Number(v), 0)
    .action(async (dir: string, o: { port: number }) => {
      const served = await serveReport(dir, o.port);
      process.stdout.write(
        `serving ${dir}\n  certification page: ${served.url}\n  Allure report: ${served.url}allure/\n(Ctrl-C to stop)\n`,
      );
      await new Promise<void>((res) => {
        process.once("SIGINT", res);
        process.once("SIGTERM", res);
      });
      await served.close();
    });
}
