/**
 * Tears down live labs when the process is interrupted (Ctrl-C, SIGTERM) or dies
 * of an uncaught error, so no namespace or process outlives the run. Labs register
 * their teardown here on creation and unregister on orderly teardown.
 */
type Teardown = () => Promise<unknown>;

const live = new Map<string, Teardown>();
let installed = false;

async function tearDownAll(): Promise<void> {
  const all = [...live.values()];
  live.clear();
  await Promise.allSettled(all.map((t) => t()));
}

function onSignal(signal: NodeJS.Signals): void {
  const code = signal === "SIGINT" ? 130 : 143;
  if (live.size > 0) process.stderr.write(`\ntandem: ${signal}: tearing down ${live.size} lab(s)\n`);
  void tearDownAll().finally(() => process.exit(code));
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
}

export function registerLiveLab(prefix: string, teardown: Teardown): void {
  install();
  live.set(prefix, teardown);
}

export function unregisterLiveLab(prefix: string): void {
  live.delete(prefix);
}
