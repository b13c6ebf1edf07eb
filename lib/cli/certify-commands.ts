import type { Command } from "commander";
import { SUITE_NAMES } from "../certify/catalogue.ts";
import { runCertification } from "../certify/run.ts";
import { serveReport } from "../report/serve.ts";

function collectOption(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new Error(`--dut-option expects KEY=VALUE, got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
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
    .option("--cases <pattern>", "run only cases whose title matches (vitest -t)")
    .option("--quiet", "do not echo the suite's output")
    .action(async (o) => {
      const result = await runCertification({
        dut: o.dut,
        suite: o.suite,
        lab: o.lab,
        out: o.out,
        dutOptions: o.dutOption,
        mode: o.mode,
        cases: o.cases,
        onOutput: o.quiet ? undefined : (chunk) => process.stdout.write(chunk),
      });
      const s = result.summary;
      process.stdout.write(
        `\n${s.device.product} ${s.device.version} / ${s.suite}: ${s.verdict.toUpperCase()} - ${s.verdictReason}\n` +
          `requirements ${s.counts.requirements}: ${s.counts.pass} pass, ${s.counts.fail} fail, ` +
          `${s.counts.inconclusive} inconclusive, ` +
          `${s.counts["not-applicable"]} not applicable, ${s.counts["not-run"]} not run; wall time ${(s.wallTimeMs / 1000).toFixed(0)} s\n` +
          `summary: ${result.out}/summary.json\ncertification page: ${result.out}/index.html\n` +
          (result.allureError ? `${result.allureError}\n` : `allure site: ${result.out}/allure/index.html\n`),
      );
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
