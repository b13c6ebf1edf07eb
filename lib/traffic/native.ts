import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../lab/command.ts";

/** The repository root, found from this file whether it runs from source or bundled in dist/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "native"))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`cannot find the tandem repository root above ${fileURLToPath(import.meta.url)}`);
}

export function pktgenPath(): string {
  return join(repoRoot(), "native/pktgen/build/pktgen");
}

/** Builds native/pktgen (cc, one file) if its binary is missing; returns the binary's path. */
export async function ensurePktgen(): Promise<string> {
  const path = pktgenPath();
  if (!existsSync(path)) await run(["sh", join(repoRoot(), "native/pktgen/build.sh")]);
  return path;
}
