import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "../remote/index.ts";

const execFileAsync = promisify(execFile);

/**
 * Allure results -> static site, with history: allure-commandline keeps trend data in
 * SITE/history; carrying it into the next run's results dir before `allure generate` is
 * how Allure 2 shows trends across runs (its documented way; it has no history store).
 */
export function allureBinary(): string {
  return join(repoRoot(), "node_modules", "allure-commandline", "dist", "bin", "allure");
}

/** Empties OUT/allure-results and seeds it with the previous site's history. */
export async function prepareAllureResults(out: string): Promise<void> {
  const results = join(out, "allure-results");
  await rm(results, { recursive: true, force: true });
  await mkdir(results, { recursive: true });
  const history = join(out, "allure", "history");
  if (existsSync(history)) await cp(history, join(results, "history"), { recursive: true });
}

export interface AllureRunInfo {
  name: string;
  buildOrder: number;
  environment: Record<string, string>;
}

/** Writes environment + executor info and generates OUT/allure from OUT/allure-results. */
export async function generateAllureSite(out: string, info: AllureRunInfo): Promise<string> {
  const results = join(out, "allure-results");
  await writeFile(
    join(results, "environment.properties"),
    Object.entries(info.environment)
      .map(([k, v]) => `${k.replace(/[=:\s]/g, "_")}=${v.replace(/\n/g, " ")}`)
      .join("\n"),
  );
  await writeFile(
    join(results, "executor.json"),
    JSON.stringify({
      name: "tandem certify",
      type: "tandem",
      buildName: info.name,
      buildOrder: info.buildOrder,
    }),
  );
  const site = join(out, "allure");
  await execFileAsync(allureBinary(), ["generate", "--clean", "-o", site, results], {
    env: { ...process.env, JAVA_HOME: process.env.JAVA_HOME ?? "/usr/lib/jvm/default-java" },
    maxBuffer: 16 << 20,
    timeout: 300_000,
  });
  return site;
}
