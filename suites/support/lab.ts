import { existsSync } from "node:fs";
import { emitSuiteEvent } from "../../lib/certify/events.ts";
import { type Lab, upLab } from "../../lib/lab/index.ts";
import { newRunPrefix, stateDir } from "../../lib/lab/prefix.ts";
import type { LoadedTopology } from "../../lib/topology/load.ts";

/**
 * Brings a suite's lab up under the prefix `tandem certify` chose (TANDEM_LAB_PREFIX),
 * so the CLI can tear the lab down itself when the run is interrupted, and reports the
 * bring-up steps on the progress channel. A second lab up at the same time (e.g. the
 * substitution cases' Fig. 14 lab beside the suite's own) gets a prefix of its own,
 * announced before its bring-up ("lab-starting") so the CLI tears it down as well.
 */
export async function upSuiteLab(source: string | LoadedTopology): Promise<Lab> {
  const started = Date.now();
  const given = process.env.TANDEM_LAB_PREFIX || undefined;
  const prefix = given && !existsSync(stateDir(given)) ? given : given ? newRunPrefix() : undefined;
  if (prefix) emitSuiteEvent({ type: "lab-starting", prefix });
  const lab = await upLab(source, {
    ...(prefix ? { prefix } : {}),
    progress: (step, done, total) => emitSuiteEvent({ type: "lab", step, done, total }),
  });
  emitSuiteEvent({ type: "lab-up", prefix: lab.prefix, name: lab.name, ms: Date.now() - started });
  return lab;
}
