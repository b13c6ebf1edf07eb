import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { repoRoot } from "../remote/repo-root.ts";

/** One benchmark (bench/index.ts): a table, then one JSON object on the last line. */
export interface Benchmark {
  about: string;
  run: () => Promise<void>;
}

/**
 * The benchmarks are their own bundle (dist/bench.mjs, built from bench/index.ts by
 * scripts/build.mjs), loaded here at run time by path: esbuild does not follow it, so
 * dist/cli.mjs bundles neither bench/ nor test/ (issue 12).
 */
export async function loadBenchmarks(): Promise<Record<string, Benchmark>> {
  const bundle = join(repoRoot(), "dist", "bench.mjs");
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing; run \`npm run build\``);
  const mod = (await import(pathToFileURL(bundle).href)) as { BENCHES: Record<string, Benchmark> };
  return mod.BENCHES;
}

export function registerBenchCommands(program: Command): void {
  program
    .command("bench")
    .description("benchmarks: a table, then one JSON object on the last line (`tandem bench` lists them)")
    .argument("[name]", "the benchmark to run")
    .option("--json", "(the JSON line is always printed last)")
    .action(async (name: string | undefined) => {
      const benches = await loadBenchmarks();
      const bench = name === undefined ? undefined : benches[name];
      if (!bench) {
        if (name !== undefined) console.error(`tandem bench: no benchmark named "${name}"`);
        for (const [n, b] of Object.entries(benches)) console.log(`  ${n.padEnd(14)} ${b.about}`);
        process.exitCode = name === undefined ? 0 : 2;
        return;
      }
      await bench.run();
    });
}
