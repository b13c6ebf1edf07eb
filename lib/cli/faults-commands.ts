import type { Command } from "commander";
import { SUITE_NAMES, type SuiteNameT } from "../certify/catalogue.ts";
import { campaignIndex, runFaultCampaign } from "../certify/faults.ts";
import { FaultsDisplay } from "./progress.ts";

/** `tandem faults`: the seeded-fault campaign (issue 13, lib/certify/faults.ts). */
export function registerFaultsCommands(program: Command): void {
  program
    .command("faults")
    .description(
      "seeded-fault campaign: certify the reference clean, then once per seeded fault (suites/faults.yaml); " +
        "fails when a fault is missed or the clean run does not certify",
    )
    .requiredOption("--suite <suite>", `suite: ${SUITE_NAMES.join(", ")} or all`)
    .option("--out <dir>", "output directory (one subdirectory per suite)", "reports/faults")
    .option("--fault <names>", "only these faults (comma-separated)")
    .option("--verbose", "echo the suites' output (otherwise it is in each run's suite.log)")
    .action(async (o: { suite: string; out: string; fault?: string; verbose?: boolean }) => {
      if (o.suite !== "all" && !(SUITE_NAMES as readonly string[]).includes(o.suite))
        throw new Error(`--suite: unknown suite "${o.suite}" (suites: ${SUITE_NAMES.join(", ")}, all)`);
      // A bar on a terminal (not with --verbose, whose raw output would tear it); plain lines otherwise.
      const display = new FaultsDisplay(process.stderr.isTTY === true && !o.verbose);
      const campaigns = await runFaultCampaign({
        suite: o.suite as SuiteNameT | "all",
        out: o.out,
        ...(o.fault ? { only: o.fault.split(",").map((s) => s.trim()) } : {}),
        onEvent: display.handle,
        ...(o.verbose ? { onOutput: (chunk: string) => process.stdout.write(chunk) } : {}),
      }).finally(() => display.stop());
      for (const c of campaigns) {
        const caught = c.faults.filter((f) => f.verdict === "caught").length;
        process.stdout.write(
          `${c.suite}: ${c.faults.length} faults, ${caught} caught, ${c.faults.length - caught} missed; ` +
            `clean run ${c.clean.verdict}; wall time ${(c.wallTimeMs / 1000).toFixed(0)} s\n` +
            c.faults
              .filter((f) => f.verdict === "missed")
              .map((f) => `  MISSED ${f.fault}: ${f.missed.join(" ")} did not fail\n`)
              .join("") +
            `  ${o.out}/${c.suite}/faults.json, ${o.out}/${c.suite}/matrix.html\n`,
        );
      }
      if (o.suite === "all") {
        const index = campaignIndex(campaigns);
        process.stdout.write(
          `all: ${index.totals.faults} faults, ${index.totals.caught} caught, ${index.totals.missed} missed; ` +
            `clean runs ${index.suites.map((x) => `${x.suite} ${x.clean}`).join(", ")}; ` +
            `wall time ${(index.totals.wallTimeMs / 1000).toFixed(0)} s\n  ${o.out}/faults.json, ${o.out}/matrix.html\n`,
        );
      }
      // Non-zero when any fault of any suite run was missed or any clean run did not certify.
      process.exitCode = campaigns.length > 0 && campaigns.every((c) => c.ok) ? 0 : 1;
    });
}
