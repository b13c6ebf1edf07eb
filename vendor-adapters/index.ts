import { pathToFileURL } from "node:url";
import { frrRegistration } from "./frr/index.ts";
import { keepalivedRegistration } from "./keepalived/index.ts";
import { referenceRegistration } from "./reference/index.ts";
import { sshCliRegistration } from "./ssh-cli/index.ts";
import {
  type AdapterRegistration,
  type DeviceTarget,
  parseCapabilities,
  type VendorAdapter,
} from "./types.ts";
import { webUiRegistration } from "./web-ui/index.ts";

export * from "./types.ts";

/**
 * The adapter registry: `tandem certify --dut NAME` and the suites find a device family
 * here by name. Adding a family = one folder in vendor-adapters/ + one line below.
 */
const registrations: AdapterRegistration[] = [
  referenceRegistration,
  keepalivedRegistration,
  frrRegistration,
  sshCliRegistration,
  webUiRegistration,
];

export function registerAdapter(registration: AdapterRegistration): void {
  const i = registrations.findIndex((r) => r.name === registration.name);
  if (i >= 0) registrations[i] = registration;
  else registrations.push(registration);
}

export function adapterNames(): string[] {
  return registrations.map((r) => r.name);
}

export function findAdapter(name: string): AdapterRegistration {
  const r = registrations.find((x) => x.name === name);
  if (!r) throw new Error(`unknown device adapter "${name}" (known: ${adapterNames().join(", ")})`);
  return r;
}

export function listAdapters(): readonly AdapterRegistration[] {
  return registrations;
}

/** Creates a device adapter; its declared capabilities are checked against the one list (types.ts). */
export function createAdapter(name: string, target: DeviceTarget): VendorAdapter {
  const adapter = findAdapter(name).create(target);
  parseCapabilities([...adapter.capabilities], `adapter ${name}`);
  return adapter;
}

/**
 * Adapters kept outside this folder (a vendor's own, or a test's): modules named in
 * TANDEM_ADAPTER_MODULES (paths separated by ":") that export `registration`. The suites
 * load them before they create the device, so `tandem certify` runs them like any other.
 */
export async function loadAdapterModules(list = process.env.TANDEM_ADAPTER_MODULES): Promise<void> {
  for (const file of (list ?? "").split(":").filter(Boolean)) {
    const mod = (await import(pathToFileURL(file).href)) as { registration?: AdapterRegistration };
    if (!mod.registration) throw new Error(`${file}: an adapter module must export \`registration\``);
    registerAdapter(mod.registration);
  }
}
