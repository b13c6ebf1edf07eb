import { defineConfig } from "vitest/config";

// The project's own tests (test/). Conformance suites have their own config in suites/.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    pool: "forks",
    // Lab tests build network namespaces and start daemons; two cores, so keep it modest.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
