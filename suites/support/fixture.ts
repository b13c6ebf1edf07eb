import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { Lab } from "../../lib/lab/index.ts";
import { type LoadedTopology, loadTopology } from "../../lib/topology/load.ts";
import { createAdapter, loadAdapterModules } from "../../vendor-adapters/index.ts";
import type { VendorAdapter } from "../../vendor-adapters/types.ts";
import { suiteEnv } from "./env.ts";
import { upSuiteLab } from "./lab.ts";
import { recordDevice, useDevice } from "./requirement.ts";

/**
 * The one fixture of a suite file: brings up the lab of `tandem certify --lab FILE` (or
 * the suite's default) before the first case, hands the hosts the lab file marks
 * `device: true` to the device adapter (the first of them is the primary), records the
 * device for the summary, and disposes of the adapter and tears the lab down after the
 * last case. The suite reads members, end systems and addresses from `loaded` (the lab
 * file), never from names of its own.
 */
export interface SuiteDevice {
  labFile: string;
  loaded: LoadedTopology;
  lab: Lab;
  adapter: VendorAdapter;
}

export interface SuiteLab {
  /** The lab and device of the running suite (throws before beforeAll has run). */
  (): SuiteDevice;
  /** Brings up `file` (default: the suite's lab) afresh with its own adapter. */
  renew(file?: string): Promise<SuiteDevice>;
}

/** The device hosts a lab file marks (`device: true`), in file order. */
export function deviceHosts(loaded: LoadedTopology): string[] {
  const hosts = Object.entries(loaded.topology.hosts)
    .filter(([, h]) => h.device)
    .map(([n]) => n);
  if (hosts.length === 0)
    throw new Error(`${loaded.file}: no host is marked \`device: true\` (the device under test's hosts)`);
  return hosts;
}

/** Brings up a lab and creates the adapter of `tandem certify --dut` for its device hosts. */
export async function bringUpDevice(labFile: string): Promise<SuiteDevice> {
  const env = suiteEnv();
  const loaded = loadTopology(labFile);
  const hosts = deviceHosts(loaded);
  const lab = await upSuiteLab(loaded);
  try {
    const adapter = createAdapter(env.dut, {
      hosts: Object.fromEntries(hosts.map((h) => [h, lab.host(h)])),
      primary: hosts[0]!,
      workDir: `/tmp/tandem-dut-${lab.prefix}`,
      options: env.dutOptions,
      lab,
    });
    return { labFile, loaded, lab, adapter };
  } catch (e) {
    await lab.down();
    throw e;
  }
}

export async function takeDown(d: SuiteDevice | undefined): Promise<void> {
  await d?.adapter.dispose().catch(() => undefined);
  await d?.lab.down();
}

export function useSuiteLab(defaultLab: string, upTimeoutMs = 180_000): SuiteLab {
  const env = suiteEnv();
  const labFile = resolve(env.lab ?? defaultLab);
  let current: SuiteDevice | undefined;
  useDevice(() => (current ? { adapter: current.adapter, lab: current.lab.name } : undefined));
  beforeAll(async () => {
    await mkdir(env.out, { recursive: true });
    await loadAdapterModules();
    current = await bringUpDevice(labFile);
    await recordDevice(current.adapter);
  }, upTimeoutMs);
  afterAll(async () => {
    await takeDown(current);
    current = undefined;
  }, 60_000);
  const get = (() => {
    if (!current) throw new Error(`the suite's lab (${labFile}) is not up (see the beforeAll error)`);
    return current;
  }) as SuiteLab;
  get.renew = async (file = labFile) => {
    await takeDown(current);
    current = undefined;
    current = await bringUpDevice(resolve(file));
    return current;
  };
  return get;
}
