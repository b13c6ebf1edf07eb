import { emitSuiteEvent } from "../../lib/certify/events.ts";
import { type Lab, upLab } from "../../lib/lab/index.ts";

/**
 * Brings a suite's lab up under the prefix `tandem certify` chose (TANDEM_LAB_PREFIX),
 * so the CLI can tear the lab down itself when the run is interrupted, and reports the
 * bring-up steps on the progress channel.
 */
export async function upSuiteLab(file: string): Promise<Lab> {
  const started = Date.now();
  const prefix = process.env.TANDEM_LAB_PREFIX || undefined;
  const lab = await upLab(file, {
    ...(prefix ? { prefix } : {}),
    progress: (step, done, total) => emitSuiteEvent({ type: "lab", step, done, total }),
  });
  emitSuiteEvent({ type: "lab-up", prefix: lab.prefix, name: lab.name, ms: Date.now() - started });
  return lab;
}
