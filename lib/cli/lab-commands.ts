import type { Command } from "commander";
import { attachLab, readLabRecords, sweep, upLab } from "../lab/index.ts";
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
    .command("sweep")
    .option("--prefix <prefix...>", "only these run prefixes")
    .description("remove the leftovers of every run (namespaces, processes, state) — also of running labs")
    .action(async (opts: { prefix?: string[] }) => {
      const removed = await sweep(opts.prefix ? { only: opts.prefix } : {});
      for (const r of removed) process.stderr.write(`swept ${r.prefix}: ${r.namespaces} namespace(s)\n`);
      if (removed.length === 0) process.stderr.write("nothing to sweep\n");
    });
}
