import { defineConfig } from "vitest/config";

/**
 * The project's own tests (test/). Conformance suites have their own config in suites/.
 *
 * Two sets, chosen by TANDEM_TESTS (scripts/test runs both, one after the other):
 * - "light" (default when unset: everything but the heavy files), two files at a time;
 * - "heavy": long lab runs whose subject is timing under load (hand-offs at 2000 pps,
 *   1000-connection VIP moves, whole certification runs). They run one file at a time
 *   so that their figures measure the system under test, not a neighbour test's load.
 *   Each test runs once, here and per test: one that passes only on a second try shows a defect
 *   in the product or in the test, fixed where it lives.
 */
export const HEAVY = [
  "test/vrls-handoff.test.ts",
  "test/vrls-failover.test.ts",
  "test/vrls-faults.test.ts",
  "test/vrls-review.test.ts",
  "test/vrls-coordinator.test.ts",
  "test/vrls-sharing.test.ts",
  "test/natlb-lab.test.ts",
  "test/natlb-failover.test.ts",
  "test/natlb-charts.test.ts",
  "test/report-certify.test.ts",
  "test/certify-cli.test.ts",
  "test/vrls-attack.test.ts",
  "test/faults-campaign.test.ts",
  "test/owner-table.test.ts",
];

const set = process.env.TANDEM_TESTS ?? "all";

export default defineConfig({
  test: {
    include: set === "heavy" ? HEAVY : ["test/**/*.test.ts"],
    exclude: set === "light" ? [...HEAVY, "**/node_modules/**"] : ["**/node_modules/**"],
    globalSetup: ["test/global-setup.ts"],
    pool: "forks",
    maxWorkers: set === "heavy" ? 1 : 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
