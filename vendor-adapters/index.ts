import { frrRegistration } from "./frr/index.ts";
import { keepalivedRegistration } from "./keepalived/index.ts";
import { referenceRegistration } from "./reference/index.ts";
import { sshCliRegistration } from "./ssh-cli/index.ts";
import type { AdapterRegistration, DeviceTarget, VendorAdapter } from "./types.ts";
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

export function createAdapter(name: string, target: DeviceTarget): VendorAdapter {
  return findAdapter(name).create(target);
}
