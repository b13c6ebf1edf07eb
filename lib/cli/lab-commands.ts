import type { Command } from "commander";
import {
  attachLab,
  buildManifest,
  emulatePhysicalLab,
  formatPrepareReport,
  Lab,
  type LabRecord,
  mapLimit,
  prepareHost,
  readLabRecords,
  sweep,
  upLab,
} from "../lab/index.ts";
import { loadTopology } from "../topology/load.ts";
import { ProgressLine } from "./progress.ts";

export function registerLabCommands(program: Command): void {
  const lab = program.command("lab").description("build, use and remove labs");

  lab
    .command("up")
    .argument("<file>", "topology file (YAML)")
    .option("--name <name>", "name to find the lab by later")
    .option("--json", "print the lab record as JSON on stdout")
    .option("--hold", "stay in the foreground and tear the lab down on Ctrl-C")
    .description("bring a lab up (virtual: namespaces + sshd per host; physical: the inventory)")
    .action(async (file: string, opts: { name?: string; json?: boolean; hold?: boolean }) => {
      const progress = new ProgressLine("lab up");
      const up = await upLab(file, { ...(opts.name ? { name: opts.name } : {}), progress: progress.update });
      progress.done(`${up.name} (${up.prefix}) up: ${up.hostNames.length} hosts`);
      if (opts.json) process.stdout.write(`${JSON.stringify(up.record)}\n`);
      else process.stdout.write(`${up.name} ${up.prefix} ${up.backend} ${up.hostNames.join(",")}\n`);
      if (opts.hold) {
        process.stderr.write("ready; Ctrl-C tears the lab down\n");
        // A timer keeps the event loop alive; the signal handler tears down and exits.
        setInterval(() => {}, 1 << 30);
        await new Promise(() => {});
      }
      for (const h of up.hostNames) up.host(h).close();
    });

  lab
    .command("exec")
    .argument("<lab>", "lab name or prefix")
    .argument("<host>", "host name")
    .argument("<command...>", "command and arguments (after --)")
    .description("run a command on a lab host over SSH; its exit code is passed through")
    .action(async (labName: string, host: string, command: string[]) => {
      const running = await attachLab(labName);
      const remote = running.host(host).remote;
      const proc = await remote.execStream(command, {
        onStdout: (d) => process.stdout.write(d),
        onStderr: (d) => process.stderr.write(d),
      });
      const result = await proc.done;
      running.host(host).close();
      process.exitCode = result.code ?? 255;
    });

  lab
    .command("ls")
    .option("--json", "JSON output")
    .description("list running labs")
    .action(async (opts: { json?: boolean }) => {
      const records = await readLabRecords();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(records)}\n`);
        return;
      }
      for (const r of records) {
        process.stdout.write(
          `${r.name}\t${r.prefix}\t${r.backend}\t${Object.keys(r.hosts).length} hosts\t${r.createdAt}\t${r.topologyFile}\n`,
        );
      }
    });

  lab
    .command("down")
    .argument("<lab>", "lab name or prefix")
    .description("tear a lab down: processes, namespaces, links, state")
    .action(async (labName: string) => {
      const running = await attachLab(labName);
      await running.down();
      process.stderr.write(`${running.name} (${running.prefix}) down\n`);
    });

  lab
    .command("emulate-physical")
    .argument("<file>", "topology file with an inventory: section")
    .option(
      "--detach",
      "leave the emulated hosts running and exit (remove with `tandem lab sweep --prefix P`)",
    )
    .option("--host-key <file>", "private host key the hosts serve (default labs/keys/emulated-host_ed25519)")
    .description(
      "emulate a physical lab on this machine: per host a network + mount namespace (checkout, /tmp, /run/tandem hidden) with sshd on a management network",
    )
    .action(async (file: string, opts: { detach?: boolean; hostKey?: string }) => {
      const progress = new ProgressLine("emulate");
      const emu = await emulatePhysicalLab(file, {
        progress: progress.update,
        teardownOnSignal: !opts.detach,
        ...(opts.hostKey ? { hostKeyFile: opts.hostKey } : {}),
      });
      progress.done(`${emu.prefix}: ${Object.keys(emu.hosts).length} emulated hosts`);
      for (const h of Object.values(emu.hosts))
        process.stdout.write(`${emu.prefix} ${h.name} ${h.address}:${h.port}\n`);
      process.stderr.write(
        `hidden on every host: ${emu.hiddenPaths.join(", ")}; controller at ${emu.controllerAddress}\n`,
      );
      if (opts.detach) return;
      process.stderr.write("ready; Ctrl-C removes the emulated hosts\n");
      setInterval(() => {}, 1 << 30);
      await new Promise(() => {});
    });

  lab
    .command("prepare")
    .argument("<file>", "topology file with an inventory: section")
    .description(
      "install, check and version what every physical host needs (agents, native addons, pktgen, scapy helper) over SSH/SFTP",
    )
    .action(async (file: string) => {
      const loaded = loadTopology(file);
      const record = inventoryRecord(loaded.file, loaded.topology.inventory);
      const labView = new Lab(record, loaded.topology);
      const manifest = buildManifest();
      process.stderr.write(`version ${manifest.version}: ${manifest.files.length} files\n`);
      let failed = 0;
      await mapLimit(labView.hostNames, 8, async (h) => {
        try {
          const report = await prepareHost(labView.host(h).remote, manifest);
          if (report.problems.length > 0) failed++;
          process.stdout.write(`${formatPrepareReport(report)}\n`);
        } catch (error) {
          failed++;
          process.stdout.write(`${h}: NOT READY: ${(error as Error).message}\n`);
        } finally {
          labView.host(h).close();
        }
      });
      if (failed > 0) process.exitCode = 1;
    });

  lab
    .command("sweep")
    .option("--prefix <prefix...>", "only these run prefixes")
    .description("remove the leftovers of every run (namespaces, processes, state) — also of running labs")
    .action(async (opts: { prefix?: string[] }) => {
      const removed = await sweep(opts.prefix ? { only: opts.prefix } : {});
      for (const r of removed) process.stderr.write(`swept ${r.prefix}: ${r.namespaces} namespace(s)\n`);
      if (removed.length === 0) process.stderr.write("nothing to sweep\n");
    });
}

/** A lab record naming the inventory's hosts (for commands that reach them without bringing a lab up). */
export function inventoryRecord(
  file: string,
  inventory: ReturnType<typeof loadTopology>["topology"]["inventory"],
): LabRecord {
  if (!inventory) throw new Error(`${file}: no inventory: section (a physical lab names its hosts there)`);
  const home = process.env.HOME ?? "/root";
  return {
    name: "inventory",
    prefix: "td00000",
    backend: "physical",
    topologyFile: file,
    createdAt: new Date().toISOString(),
    pid: process.pid,
    hosts: Object.fromEntries(
      Object.entries(inventory).map(([h, e]) => [
        h,
        {
          address: e.address,
          port: e.port,
          user: e.user,
          keyPath: e.key.replace(/^~(?=\/)/, home),
          ...(e.hostKey ? { hostKeyFingerprint: e.hostKey } : {}),
        },
      ]),
    ),
  };
}
