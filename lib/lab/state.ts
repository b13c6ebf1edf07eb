import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stateDir } from "./prefix.ts";

/** What another process (`tandem lab exec/ls/down`) needs to find and reach a running lab. */
export interface LabRecord {
  name: string;
  prefix: string;
  backend: "virtual" | "physical";
  topologyFile: string;
  createdAt: string;
  pid: number;
  hosts: Record<
    string,
    {
      namespace?: string;
      address?: string;
      port: number;
      user: string;
      keyPath: string;
      hostKeyPath?: string;
      /** Physical: the host key fingerprint pinned by the inventory (SHA256:...). */
      hostKeyFingerprint?: string;
      /** Physical: the host's prepared directory (`tandem lab prepare`), agents and native pieces. */
      preparedDir?: string;
    }
  >;
  /** Physical: each host's clock offset to the controller, measured over SSH at lab start. */
  clocks?: Record<string, ClockOffset>;
}

/** A host's clock minus the controller's, from one SSH round trip (the smallest of a few). */
export interface ClockOffset {
  offsetMs: number;
  /** Half the round trip: the offset is known to within this. */
  uncertaintyMs: number;
  measuredAt: string;
}

export async function writeLabRecord(record: LabRecord): Promise<void> {
  const dir = stateDir(record.prefix);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, "lab.json"), JSON.stringify(record, null, 2));
}

export async function readLabRecords(): Promise<LabRecord[]> {
  let dirs: string[];
  try {
    dirs = await readdir("/run/tandem");
  } catch {
    return [];
  }
  const out: LabRecord[] = [];
  for (const d of dirs) {
    try {
      out.push(JSON.parse(await readFile(join("/run/tandem", d, "lab.json"), "utf8")) as LabRecord);
    } catch {
      // a run that crashed before writing its record: sweep removes it
    }
  }
  return out;
}

export async function findLabRecord(nameOrPrefix: string): Promise<LabRecord> {
  const records = await readLabRecords();
  const found = records.find((r) => r.name === nameOrPrefix || r.prefix === nameOrPrefix);
  if (!found) {
    const known = records.map((r) => `${r.name} (${r.prefix})`).join(", ") || "none";
    throw new Error(`no running lab named "${nameOrPrefix}" (running: ${known})`);
  }
  return found;
}
