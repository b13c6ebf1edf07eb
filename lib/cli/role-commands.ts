import { type Command, Option } from "commander";

/**
 * `tandem vrls up|down|show LAB` and `tandem natlb up|down|show LAB`: the reference roles
 * on a running lab, with or without a suite (lib/cli/reference-on-demand.ts).
 */
function registerUpDown(role: Command, name: "vrls" | "natlb", ready: string): void {
  role
    .command("up")
    .argument("<lab>", "lab name or prefix")
    .option("--timeout <s>", "seconds to wait for readiness", "60")
    .description(`start the reference roles of the lab's ${name}: section; returns when ${ready}`)
    .action(async (lab: string, opts: { timeout: string }) => {
      const { referenceUp, formatReady } = await import("./reference-on-demand.ts");
      const h = await referenceUp(name, lab, seconds(opts.timeout));
      process.stdout.write(`${formatReady(h)}\n`);
    });
  role
    .command("down")
    .argument("<lab>", "lab name or prefix")
    .description(`stop the reference roles started by \`tandem ${name} up\``)
    .action(async (lab: string) => {
      const { referenceDown } = await import("./reference-on-demand.ts");
      const pid = await referenceDown(name, lab);
      process.stderr.write(`${name} reference on ${lab} stopped (holder pid ${pid})\n`);
    });
  // The detached process that keeps the agents' SSH channels open (started by `up`).
  role.addCommand(
    new (role.constructor as typeof Command)("hold")
      .argument("<lab>")
      .addOption(new Option("--timeout <s>").default("60"))
      .action(async (lab: string, opts: { timeout: string }) => {
        const { holdReference } = await import("./reference-on-demand.ts");
        await holdReference(name, lab, seconds(opts.timeout));
      }),
    { hidden: true },
  );
}

function seconds(text: string): number {
  const s = Number(text);
  if (!Number.isFinite(s) || s <= 0) throw new Error(`--timeout: expected seconds > 0, got "${text}"`);
  return s * 1000;
}

export function registerRoleCommands(program: Command): void {
  const vrls = program.command("vrls").description("the VRLS reference on a running lab");
  vrls
    .command("show")
    .argument("<lab>", "lab name or prefix")
    .option("--json", "JSON output")
    .description("each member's live sharing table (Figs. 9A-9C) and nft counters")
    .action(async (lab: string, opts: { json?: boolean }) => {
      const { printVrlsShow } = await import("../roles/vrls/show.ts");
      await printVrlsShow(lab, opts.json === true);
    });
  registerUpDown(vrls, "vrls", "a master is elected and the directly attached end systems are allocated");

  const natlb = program.command("natlb").description("the NAT-LB reference on a running lab");
  natlb
    .command("show")
    .argument("<lab>", "lab name or prefix")
    .option("--rows <n>", "connection-table rows per balancer", "20")
    .description("each balancer's connection table (seed's columns) and mode table")
    .action(async (lab: string, opts: { rows: string }) => {
      const { showNatlbLab } = await import("../roles/natlb/show.ts");
      process.stdout.write(`${await showNatlbLab(lab, { maxRows: Number(opts.rows) })}\n`);
    });
  registerUpDown(natlb, "natlb", "every VIP is owned by a balancer");
}
