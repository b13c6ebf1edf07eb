import { execFileSync } from "node:child_process";

// Agents run as bundles (dist/agents/*.mjs) on lab hosts; build them once before the tests.
export default function setup(): void {
  execFileSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" });
}
