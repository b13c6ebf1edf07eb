import { build } from "esbuild";
import { describe, expect, it } from "vitest";

// Issue 12: the shipped CLI carries neither benchmark nor test code; benchmarks are their
// own entry (bench/index.ts -> dist/bench.mjs), loaded by `tandem bench` at run time.
const root = new URL("..", import.meta.url).pathname;

async function inputsOf(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [`${root}${entry}`],
    bundle: true,
    platform: "node",
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
    external: ["*.node", "tandem-*", "cpu-features", "playwright-core", "chromium-bidi"],
  });
  return Object.keys(result.metafile.inputs).filter((p) => !p.includes("node_modules"));
}

describe("bundles", () => {
  it("the CLI bundle holds no file from bench/, test/ or suites/", async () => {
    const inputs = await inputsOf("lib/cli/main.ts");
    expect(inputs).toContain("lib/cli/bench-commands.ts");
    expect(inputs.filter((p) => /^(bench|test|suites)\//.test(p))).toEqual([]);
  });

  it("the bench bundle holds the benchmarks and the forwarding lab, from lib/", async () => {
    const inputs = await inputsOf("bench/index.ts");
    expect(inputs).toEqual(expect.arrayContaining(["bench/holdqueue.ts", "lib/lab/forwarding-lab.ts"]));
    expect(inputs.filter((p) => /^test\//.test(p))).toEqual([]);
  });
});
