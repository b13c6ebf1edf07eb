import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

/**
 * Case history for the time-left estimate of `tandem certify`: the last measured duration
 * of each case and of the lab bring-up, per suite and device adapter. Kept in the user's
 * cache ($XDG_CACHE_HOME/tandem, default ~/.cache/tandem) rather than in --out, so a run
 * into a fresh output folder still gets an estimate; losing the file only loses the ETA.
 */
export interface SuiteDurations {
  labMs?: number;
  cases: Record<string, number>;
}

type DurationFile = Record<string, SuiteDurations>;

export function durationsFile(): string {
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cache, "tandem", "case-durations.json");
}

const keyOf = (suite: string, dut: string) => `${suite}/${dut}`;

async function readAll(file: string): Promise<DurationFile> {
  try {
    const data = JSON.parse(await readFile(file, "utf8")) as unknown;
    return data && typeof data === "object" ? (data as DurationFile) : {};
  } catch {
    return {}; // no history yet (or a damaged file): no estimate
  }
}

export async function readDurations(
  suite: string,
  dut: string,
  file = durationsFile(),
): Promise<SuiteDurations> {
  return (await readAll(file))[keyOf(suite, dut)] ?? { cases: {} };
}

/** Merges the durations of the cases that ran into the history (atomic replace). */
export async function recordDurations(
  suite: string,
  dut: string,
  measured: SuiteDurations,
  file = durationsFile(),
): Promise<void> {
  const all = await readAll(file);
  const before = all[keyOf(suite, dut)] ?? { cases: {} };
  all[keyOf(suite, dut)] = {
    ...((measured.labMs ?? before.labMs) ? { labMs: measured.labMs ?? before.labMs } : {}),
    cases: { ...before.cases, ...measured.cases },
  };
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(all, null, 2)}\n`);
  await rename(tmp, file);
}

/**
 * Time left: the expected duration of every case not finished yet (the running one minus
 * what it has already taken), plus the lab bring-up while it is still ahead. Cases
 * without history count as the mean of those with; without any history there is no
 * estimate (undefined).
 */
export function estimateRemainingMs(
  history: SuiteDurations,
  pending: readonly string[],
  running: { id: string; elapsedMs: number } | undefined,
  labPending: { elapsedMs: number } | undefined,
): number | undefined {
  const known = Object.values(history.cases);
  if (known.length === 0) return undefined;
  const mean = known.reduce((a, b) => a + b, 0) / known.length;
  const expected = (id: string) => history.cases[id] ?? mean;
  let ms = pending.reduce((sum, id) => sum + expected(id), 0);
  if (running) ms += Math.max(0, expected(running.id) - running.elapsedMs);
  if (labPending && history.labMs) ms += Math.max(0, history.labMs - labPending.elapsedMs);
  return ms;
}
