import { Lab } from "../lab/lab.ts";
import { mapLimit } from "../lab/limit.ts";
import { loadTopology } from "../topology/load.ts";
import { doctorHost, formatHostChecks, type HostChecks } from "./doctor-remote.ts";
import { inventoryRecord } from "./lab-commands.ts";

/** `tandem doctor --lab FILE`: every inventory host checked over SSH, reported per host. */
export async function doctorLab(file: string, json: boolean): Promise<void> {
  const loaded = loadTopology(file);
  const record = inventoryRecord(loaded.file, loaded.topology.inventory);
  const lab = new Lab(record, loaded.topology);
  const results: HostChecks[] = [];
  await mapLimit(lab.hostNames, 8, async (h) => {
    const e = record.hosts[h]!;
    try {
      results.push(await doctorHost(lab.host(h).remote, `${e.user}@${e.address}:${e.port}`));
    } finally {
      lab.host(h).close();
    }
  });
  results.sort((a, b) => lab.hostNames.indexOf(a.host) - lab.hostNames.indexOf(b.host));
  if (json) process.stdout.write(`${JSON.stringify(results)}\n`);
  else process.stdout.write(formatHostChecks(results));
  const bad = results.filter((r) => r.checks.some((c) => !c.ok));
  if (bad.length > 0) {
    process.stderr.write(
      `problems on ${bad.length} of ${results.length} host(s): ${bad
        .map(
          (r) =>
            `${r.host} (${r.checks
              .filter((c) => !c.ok)
              .map((c) => c.name)
              .join(", ")})`,
        )
        .join("; ")}\n`,
    );
    process.exitCode = 1;
  }
}
