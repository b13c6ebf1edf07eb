import { readFile } from "node:fs/promises";
import { run } from "../lib/lab/command.ts";
import { upLab } from "../lib/lab/lab.ts";
import { mapLimit } from "../lib/lab/limit.ts";
import { parseTopologyText } from "../lib/topology/load.ts";

/**
 * `tandem bench lab`: bring-up and teardown of labs of 8, 32 and 64 hosts on one hub
 * segment, each host a namespace with its own sshd, every host then reached over SSH.
 * peak_rss_mb is the whole lab's memory with every host connected: this controller's RSS
 * plus the proportional set size (PSS) of every process in the lab's namespaces (sshd,
 * socat transports), so pages shared by 64 sshd processes are counted once.
 */
export interface LabBenchRow {
  hosts: number;
  up_ms: number;
  down_ms: number;
  ssh_ms: number;
  peak_rss_mb: number;
  ssh_ok: boolean;
}

function hubTopology(hosts: number): string {
  let text = "lab: bench\naddressPlan: { lan: 198.18.0.0/16 }\nsegments:\n  lan: { hub: true }\nhosts:\n";
  for (let i = 0; i < hosts; i++) {
    text += `  h${i}:\n    interfaces: { eth0: { segment: lan, addresses: [198.18.${i >> 8}.${(i & 255) + 1}/16] } }\n`;
  }
  return text;
}

async function labPssKb(namespaces: string[]): Promise<number> {
  let total = 0;
  for (const ns of namespaces) {
    const { stdout } = await run(["ip", "netns", "pids", ns], { allowFailure: true });
    for (const pid of stdout.split(/\s+/).filter(Boolean)) {
      // PSS, not RSS: 64 sshd processes share most pages, and RSS would count them 64 times.
      const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8").catch(() => "");
      const m = /^Pss:\s+(\d+)/m.exec(rollup);
      if (m) total += Number(m[1]);
    }
  }
  return total;
}

export async function runLabBench(sizes: number[] = [8, 32, 64]): Promise<{ sizes: LabBenchRow[] }> {
  const rows: LabBenchRow[] = [];
  for (const hosts of sizes) {
    const loaded = parseTopologyText(hubTopology(hosts), `<bench ${hosts} hosts>`);
    const t0 = performance.now();
    const lab = await upLab(loaded);
    const up_ms = performance.now() - t0;
    const t1 = performance.now();
    const results = await mapLimit(lab.hostNames, 16, (h) => lab.host(h).exec(["true"]));
    const ssh_ms = performance.now() - t1;
    const ssh_ok = results.every((r) => r.code === 0);
    const namespaces = lab.hostNames.map((h) => lab.namespace(h));
    const rssKb = (await labPssKb(namespaces)) + process.memoryUsage().rss / 1024;
    const t2 = performance.now();
    await lab.down();
    const down_ms = performance.now() - t2;
    rows.push({
      hosts,
      up_ms: Math.round(up_ms),
      down_ms: Math.round(down_ms),
      ssh_ms: Math.round(ssh_ms),
      peak_rss_mb: Math.round(rssKb / 1024),
      ssh_ok,
    });
  }
  return { sizes: rows };
}

export function printLabBench(result: { sizes: LabBenchRow[] }): void {
  process.stdout.write("hosts   up_ms  down_ms  ssh_all_ms  peak_rss_mb  ssh_ok\n");
  for (const r of result.sizes) {
    process.stdout.write(
      `${String(r.hosts).padStart(5)} ${String(r.up_ms).padStart(7)} ${String(r.down_ms).padStart(8)} ${String(r.ssh_ms).padStart(11)} ${String(r.peak_rss_mb).padStart(12)}  ${r.ssh_ok}\n`,
    );
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
