#!/usr/bin/env node
// Entry point of the `tandem` command: runs the bundled CLI (built by `npm ci` / `npm run build`).
import { existsSync } from "node:fs";

const cli = new URL("../dist/cli.mjs", import.meta.url);
if (!existsSync(cli)) {
  console.error("tandem: dist/cli.mjs is missing; run `npm run build` (or scripts/bootstrap) first");
  process.exit(2);
}
await import(cli.href);
