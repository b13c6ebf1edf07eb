import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

/**
 * Validates a JUnit XML file with xmllint (libxml2-utils, installed by scripts/bootstrap)
 * against test/fixtures/junit.xsd, the JUnit structure CI servers read.
 */
const execFileAsync = promisify(execFile);
const SCHEMA = join(import.meta.dirname, "fixtures", "junit.xsd");

export async function validateJunit(file: string): Promise<{ ok: boolean; output: string }> {
  try {
    const r = await execFileAsync("xmllint", ["--noout", "--schema", SCHEMA, file]);
    return { ok: true, output: `${r.stdout}${r.stderr}` };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}
