import type { Command } from "commander";

/**
 * `tandem fuzz`: hostile inputs against every decoder of lib/wire (lib/fuzz/fuzz.ts).
 * Prints a table with inputs/s per decoder; with --json, then one JSON line. A decoder
 * that throws, fails to round-trip or accepts an unsigned message writes the input to
 * the corpus directory (default test/fuzz-corpus/, replayed by test/fuzz-corpus.test.ts)
 * and the command exits 1.
 */
export function registerFuzzCommand(program: Command): void {
  program
    .command("fuzz")
    .description("fuzz every decoder in lib/wire: random, mutated and re-sealed inputs (fast-check)")
    .option("--decoder <name>", "one decoder name, or all", "all")
    .option("--all", "every decoder (same as --decoder all)")
    .option("--count <n>", "inputs per decoder", "100000")
    .option("--seconds <s>", "time budget per decoder (stops at whichever of count/seconds comes first)")
    .option("--seed <n>", "fast-check seed (default: random, printed)")
    .option("--corpus <dir>", "where crashing inputs are written", "test/fuzz-corpus")
    .option("--json", "print one JSON line after the table")
    .action(async (opts) => {
      const fuzz = await import("../fuzz/fuzz.ts");
      const positive = (flag: string, value: string | undefined, integer: boolean): number | undefined => {
        if (value === undefined) return undefined;
        const n = Number(value);
        if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
          throw new Error(`${flag}: expected a positive ${integer ? "integer" : "number"}, got "${value}"`);
        }
        return n;
      };
      const count = positive("--count", opts.count, true)!;
      const seconds = positive("--seconds", opts.seconds, false);
      const seed = opts.seed === undefined ? undefined : Number(opts.seed);
      if (seed !== undefined && !Number.isInteger(seed))
        throw new Error(`--seed: expected an integer, got "${opts.seed}"`);
      const names = opts.all || opts.decoder === "all" ? fuzz.decoderNames() : [opts.decoder as string];
      const codecs = names.map((n) => fuzz.findCodec(n));
      const rows = [];
      for (const codec of codecs) {
        const stats = fuzz.fuzzDecoder(codec, { count, seconds, seed });
        rows.push(stats);
        if (stats.findings.length > 0) {
          for (const file of fuzz.writeCorpus(opts.corpus, stats.findings))
            process.stderr.write(`fuzz: wrote ${file}\n`);
        }
        process.stderr.write(
          `fuzz: ${stats.decoder}: ${stats.inputs} inputs in ${stats.seconds.toFixed(1)} s, ${fuzz.violations(stats)} violations (seed ${stats.seed})\n`,
        );
      }
      process.stdout.write(`${fuzz.formatTable(rows)}\n`);
      if (opts.json) process.stdout.write(`${JSON.stringify(fuzz.jsonSummary(rows))}\n`);
      if (rows.some((s) => fuzz.violations(s) > 0)) process.exitCode = 1;
    });
}
