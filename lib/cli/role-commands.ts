import type { Command } from "commander";

/** `tandem vrls show LAB` and `tandem natlb show LAB`: the reference roles' live tables. */
export function registerRoleCommands(program: Command): void {
  program
    .command("vrls")
    .description("the VRLS reference on a running lab")
    .command("show")
    .argument("<lab>", "lab name or prefix")
    .option("--json", "JSON output")
    .description("each member's live sharing table (Figs. 9A-9C) and nft counters")
    .action(async (lab: string, opts: { json?: boolean }) => {
      const { printVrlsShow } = await import("../roles/vrls/harness/show.ts");
      await printVrlsShow(lab, opts.json === true);
    });

  program
    .command("natlb")
    .description("the NAT-LB reference on a running lab")
    .command("show")
    .argument("<lab>", "lab name or prefix")
    .option("--rows <n>", "connection-table rows per balancer", "20")
    .description("each balancer's connection table (seed's columns) and mode table")
    .action(async (lab: string, opts: { rows: string }) => {
      const { showNatlbLab } = await import("../roles/natlb/show.ts");
      process.stdout.write(`${await showNatlbLab(lab, { maxRows: Number(opts.rows) })}\n`);
    });
}
