import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

// Conformance suites, run by `tandem certify` (TANDEM_DUT, TANDEM_LAB, TANDEM_OUT, ...).
// One suite file at a time, cases in order: a suite owns its lab and its device.
const out = resolve(process.env.TANDEM_OUT ?? "reports/certify-dev");
export default defineConfig({
  test: {
    root: resolve(import.meta.dirname, ".."),
    include: ["suites/*/*.suite.ts"],
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: [
      "default",
      ["json", { outputFile: resolve(out, "vitest.json") }],
      ["allure-vitest/reporter", { resultsDir: resolve(out, "allure-results") }],
      // `tandem certify` tails the per-case events of this one (lib/certify/events.ts).
      ...(process.env.TANDEM_EVENTS ? [resolve(import.meta.dirname, "support/progress-reporter.ts")] : []),
    ],
  },
});
