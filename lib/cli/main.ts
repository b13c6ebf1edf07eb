import { Command } from "commander";

const program = new Command("tandem").description("Conformance lab for active/active routers and NAT load balancers");
await program.parseAsync(process.argv);
