import { Command, CommanderError } from "commander";
import { registerBenchCommands } from "./bench-commands.ts";
import { registerCertifyCommands } from "./certify-commands.ts";
import { registerDoctor } from "./doctor.ts";
import { registerFaultsCommands } from "./faults-commands.ts";
import { registerFuzzCommand } from "./fuzz-command.ts";
import { registerLabCommands } from "./lab-commands.ts";
import { registerRoleCommands } from "./role-commands.ts";

const program = new Command("tandem")
  .description("Conformance lab for active/active routers (VRLS) and NAT load balancers (NAT-LB)")
  .showHelpAfterError();
registerDoctor(program);
registerLabCommands(program);
registerBenchCommands(program);
registerCertifyCommands(program);
registerFaultsCommands(program);
registerRoleCommands(program);
registerFuzzCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // commander has printed its own message; the command's exitOverride set the exit code.
  if (error instanceof CommanderError) process.exit(process.exitCode ?? error.exitCode);
  process.stderr.write(`tandem: ${(error as Error).message}\n`);
  process.exitCode = process.exitCode || 1;
}
