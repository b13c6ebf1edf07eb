import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import * as allure from "allure-js-commons";
import { test } from "vitest";
import type { CaseDef, CaseRecord } from "../../lib/certify/cases/define.ts";
import { loadCatalogue, type Requirement, severityOf } from "../../lib/certify/catalogue.ts";
import { findAdapter } from "../../vendor-adapters/index.ts";
import type { Capability, VendorAdapter } from "../../vendor-adapters/types.ts";
import { suiteEnv } from "./env.ts";
import { isInconclusive } from "./evidence.ts";

/**
 * `certCase(def, body)`: a vitest test that knows which requirements it verifies. It sets
 * the Allure labels (epic = suite, feature = requirement group, story = requirement ID,
 * severity from MUST/SHOULD/MAY, parameters device/lab/mode), reports "not applicable"
 * when the device lacks a capability the case needs (a skip with the reason, never a
 * failure), keeps every evidence file under OUT/evidence/<case>/ and attaches it, and
 * leaves OUT/cases/<case>.json for the certification summary. A body that throws an
 * InconclusiveError (evidence.ts: incomplete captures) leaves status "inconclusive".
 */

export interface Device {
  adapter: VendorAdapter;
  /** Lab name (for the parameters) */
  lab: string;
}

let currentDevice: (() => Device | undefined) | undefined;

/** Writes OUT/device.json (who was certified) for the summary; called by each suite's beforeAll. */
export async function recordDevice(adapter: VendorAdapter): Promise<void> {
  const env = suiteEnv();
  const identity = await adapter.identity();
  await mkdir(env.out, { recursive: true });
  await writeFile(
    join(env.out, "device.json"),
    `${JSON.stringify({ adapter: adapter.name, ...identity }, null, 2)}\n`,
  );
}

/** The suite file tells the helper where its device is (set in beforeAll). */
export function useDevice(get: () => Device | undefined): void {
  currentDevice = get;
}

export interface CaseContext {
  device: Device;
  adapter: VendorAdapter;
  /** A directory for this case's evidence files (already created). */
  dir: string;
  attachFile(name: string, path: string, contentType: string): Promise<void>;
  attachText(name: string, text: string | Uint8Array, contentType: string, fileName?: string): Promise<void>;
  step<T>(name: string, body: () => Promise<T>): Promise<T>;
}

const catalogue = loadCatalogue();

function requirementsFor(def: CaseDef): Requirement[] {
  return def.requirements.map((id) => {
    const r = catalogue.requirements.find((x) => x.id === id);
    if (!r) throw new Error(`case ${def.id} names ${id}, which is not in ${catalogue.file}`);
    if (!r.cases.includes(def.id)) throw new Error(`${id} in ${catalogue.file} does not list case ${def.id}`);
    return r;
  });
}

function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, "_");
}

export function certCase(def: CaseDef, body: (ctx: CaseContext) => Promise<void>, timeoutMs = 120_000): void {
  const requirements = requirementsFor(def);
  const suite = def.id.split(".")[0] ?? "unknown";
  const env = suiteEnv();
  test(`[${def.id}] ${def.title}`, { timeout: timeoutMs }, async (t) => {
    const started = Date.now();
    const dir = join(env.out, "evidence", fileSafe(def.id));
    await mkdir(dir, { recursive: true });
    const record: CaseRecord = {
      id: def.id,
      suite,
      title: def.title,
      requirements: [...def.requirements],
      status: "failed",
      evidence: [],
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
    };
    const save = async () => {
      record.durationMs = Date.now() - started;
      await mkdir(join(env.out, "cases"), { recursive: true });
      await writeFile(
        join(env.out, "cases", `${fileSafe(def.id)}.json`),
        `${JSON.stringify(record, null, 2)}\n`,
      );
    };

    await allure.epic(catalogue.suites[suite as keyof typeof catalogue.suites]?.title ?? suite);
    for (const group of new Set(requirements.map((r) => r.group))) await allure.feature(group);
    for (const r of requirements) await allure.story(r.id);
    const level = requirements.some((r) => r.level === "MUST")
      ? "MUST"
      : requirements.some((r) => r.level === "SHOULD")
        ? "SHOULD"
        : "MAY";
    await allure.severity(severityOf(level));
    await allure.testCaseId(def.id);
    await allure.description(
      requirements.map((r) => `- **${r.id}** (${r.level}, ${r.source}): ${r.text}`).join("\n"),
    );
    await allure.parameter("device", env.dut);
    await allure.parameter("lab", env.lab ?? "default");
    await allure.parameter("mode", env.mode ?? "default");

    if (def.notYetAvailable) {
      record.status = "not-available";
      record.reason = def.notYetAvailable;
      await save();
      t.skip(`not yet available: ${def.notYetAvailable}`);
      return;
    }
    const device = currentDevice?.();
    if (!device) {
      record.error = "the suite's device was not set up (see the beforeAll error)";
      await save();
      throw new Error(record.error);
    }
    const missing = (def.needs ?? []).filter((c: Capability) => !device.adapter.capabilities.has(c));
    if (missing.length > 0 || def.notApplicable) {
      record.status = "not-applicable";
      record.reason =
        def.notApplicable ?? `device ${device.adapter.name} lacks capability ${missing.join(", ")}`;
      await allure.tag("not-applicable");
      await save();
      t.skip(`not applicable: ${record.reason}`);
      return;
    }

    const ctx: CaseContext = {
      device,
      adapter: device.adapter,
      dir,
      async attachFile(name, path, contentType) {
        const target = join(dir, fileSafe(basename(path)));
        if (path !== target) await copyFile(path, target);
        record.evidence.push({ name, file: target, contentType });
        await allure.attachmentPath(name, target, { contentType });
      },
      async attachText(name, text, contentType, fileName) {
        const target = join(dir, fileSafe(fileName ?? name));
        await writeFile(target, text);
        record.evidence.push({ name, file: target, contentType });
        await allure.attachmentPath(name, target, { contentType });
      },
      step: (name, fn) => allure.step(name, fn) as Promise<never>,
    };
    try {
      await body(ctx);
      record.status = "passed";
    } catch (error) {
      if (isInconclusive(error)) {
        // Still a failed test for vitest (never a pass); the summary reads the record.
        record.status = "inconclusive";
        record.reason = error.message;
        record.error = error.message;
        await allure.tag("inconclusive");
        if (error.evidence !== undefined)
          await ctx.attachText(
            "why inconclusive",
            JSON.stringify(error.evidence, null, 2),
            "application/json",
            "inconclusive.json",
          );
        throw error;
      }
      record.status = "failed";
      record.error = (error as Error).message;
      const known = findAdapter(env.dut).knownDeviations?.[def.id];
      if (known) await allure.descriptionHtml(`<p><b>Known deviation of ${env.dut}:</b> ${known}</p>`);
      throw error;
    } finally {
      // Device logs and configuration are evidence for every case, passed or failed.
      try {
        await ctx.attachText("device log", await device.adapter.collectLogs(), "text/plain", "device.log");
        await ctx.attachText(
          "device config",
          await device.adapter.collectConfig(),
          "text/plain",
          "device.conf",
        );
      } catch (e) {
        record.error = `${record.error ?? ""} (collecting device logs: ${(e as Error).message})`.trim();
      }
      await save();
    }
  });
}
