// Bundles the CLI and every agent entry point (lib/**/*.agent.ts) with esbuild.
// Agents are bundled into one file each so the launcher can upload a single file
// to a physical host over SFTP; in the virtual lab the namespaces share this
// filesystem and run the bundle in place.

import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;

function findAgents(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...findAgents(full));
    else if (name.endsWith(".agent.ts")) out.push(full);
  }
  return out;
}

const agents = findAgents(join(root, "lib"));
mkdirSync(join(root, "dist/agents"), { recursive: true });
const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "inline",
  logLevel: "warning",
  // Native addons are loaded from their installed location at run time.
  external: [
    "*.node",
    "tandem-nfqueue",
    "tandem-nftables",
    "tandem-netlink",
    "tandem-rawio",
    "cpu-features",
    "playwright-core",
    "chromium-bidi",
  ],
  // CommonJS dependencies (ssh2) expect require/__dirname; give the ESM bundle both.
  banner: {
    js: [
      "import { createRequire as __tandemCreateRequire } from 'node:module';",
      "import { fileURLToPath as __tandemFileURLToPath } from 'node:url';",
      "import { dirname as __tandemDirname } from 'node:path';",
      "const require = __tandemCreateRequire(import.meta.url);",
      "const __filename = __tandemFileURLToPath(import.meta.url);",
      "const __dirname = __tandemDirname(__filename);",
    ].join(" "),
  },
};
await Promise.all([
  build({ ...common, entryPoints: [join(root, "lib/cli/main.ts")], outfile: join(root, "dist/cli.mjs") }),
  // The benchmarks are a separate entry the CLI loads lazily (lib/cli/bench-commands.ts).
  build({ ...common, entryPoints: [join(root, "bench/index.ts")], outfile: join(root, "dist/bench.mjs") }),
  ...agents.map((entry) =>
    build({
      ...common,
      entryPoints: [entry],
      outfile: join(root, "dist/agents", basename(entry, ".agent.ts") + ".mjs"),
    }),
  ),
]);
// Small native helper programs (plain C, one file each) are rebuilt every time so they are never stale.
const helpers = ["native/pktgen/build.sh"].filter((script) => {
  try {
    return statSync(join(root, script)).isFile();
  } catch {
    return false;
  }
});
for (const script of helpers) execFileSync("sh", [join(root, script)], { stdio: "inherit" });
console.log(
  `built dist/cli.mjs, dist/bench.mjs, ${agents.length} agent(s), ${helpers.length} native helper(s)`,
);
