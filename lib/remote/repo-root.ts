import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

function remember(dir: string): string {
  cached = dir;
  return dir;
}

/**
 * The Tandem checkout this code runs from: the nearest ancestor of this module holding
 * the project's package.json. Works from source (lib/remote/ under vitest) and from a
 * bundle (dist/cli.mjs), whose directories differ in depth. TANDEM_ROOT overrides it.
 */
export function repoRoot(): string {
  if (cached) return cached;
  const override = process.env.TANDEM_ROOT;
  if (override) return remember(override);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && isTandemManifest(manifest)) return remember(dir);
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        `cannot find the Tandem checkout above ${fileURLToPath(import.meta.url)} (set TANDEM_ROOT)`,
      );
    }
    dir = parent;
  }
}

function isTandemManifest(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, "utf8")) as { name?: unknown }).name === "tandem";
  } catch {
    return false;
  }
}

/** Where the build puts an agent's bundle (scripts/build.mjs). */
export function agentBundlePath(agentName: string): string {
  return join(repoRoot(), "dist", "agents", `${agentName}.mjs`);
}
