import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { repoRoot } from "../../lib/remote/repo-root.ts";
import { SourceDocument } from "../../lib/topology/errors.ts";

/**
 * A device family for the ssh-cli adapter. The device's own CLI (`cli.argv`, e.g. FRR's
 * vtysh) runs the operations: deploy, start, stop, state, config and identity are lists
 * of CLI commands, run in one CLI session per operation, never through a shell. What the
 * CLI cannot do because it belongs to the router's operating system (booting the
 * daemons, creating the macvlan FRR's VRRP needs, a crash, reading the log file) is in
 * `host:` and runs as shell commands on the device host.
 *
 * `{{name}}` inserts a variable; `{{#flag}}...{{/flag}}` and `{{^flag}}...{{/flag}}` keep
 * text when a boolean is true / false. Hand-written (twenty lines) rather than a template
 * engine: that subset of mustache is all a command line needs, and no engine is installed
 * here.
 */
const Commands = z.array(z.string().min(1)).default([]);
const Regex = z.string().refine(
  (p) => {
    try {
      new RegExp(p, "m");
      return true;
    } catch {
      return false;
    }
  },
  { message: "not a regular expression" },
);

export const CliTemplateSpec = z
  .object({
    name: z.string().min(1),
    description: z.string().min(1),
    vendor: z.string().min(1),
    product: z.string().min(1),
    capabilities: z.array(z.string()).default([]),
    /** Extra variables, rendered themselves (may use the built-in ones). */
    vars: z.record(z.string(), z.string()).default({}),
    cli: z
      .object({
        /** The CLI program and its arguments (rendered), run over SSH without a shell. */
        argv: z.array(z.string().min(1)).min(1),
        /** Each command is passed as FLAG COMMAND (vtysh: -c); without it, commands go to stdin, one per line. */
        commandFlag: z.string().min(1).optional(),
        /** An output line matching this (multiline) is the CLI refusing a command, e.g. "^% " for vtysh. */
        errorPattern: Regex,
      })
      .strict(),
    identity: z.object({ command: z.string().min(1), versionPattern: Regex }).strict(),
    /** CLI commands, per VRRP instance. */
    deploy: Commands,
    start: Commands,
    stop: Commands,
    state: z
      .object({
        command: z.string().min(1),
        patterns: z.record(z.enum(["master", "backup", "initialize"]), Regex),
      })
      .strict(),
    config: z.string().min(1),
    /** Shell commands on the device host: the router's operating system, not its CLI. */
    host: z
      .object({
        /** Once per device session (idempotent: runs before every deploy). */
        prepare: Commands,
        /** Per VRRP instance, before the CLI's deploy. */
        deploy: Commands,
        crash: Commands,
        teardown: Commands,
        logs: z.string().min(1),
      })
      .strict(),
  })
  .strict();

/** A command of the template with the line it is on. */
export interface Located {
  text: string;
  line: number;
}

type Spec = z.infer<typeof CliTemplateSpec>;
export type CliTemplate = Omit<
  Spec,
  "deploy" | "start" | "stop" | "config" | "identity" | "state" | "host"
> & {
  file: string;
  /** The line of cli.argv (for errors rendering it). */
  cliLine: number;
  identity: { command: Located; versionPattern: string };
  deploy: Located[];
  start: Located[];
  stop: Located[];
  state: { command: Located; patterns: Spec["state"]["patterns"] };
  config: Located;
  host: { prepare: Located[]; deploy: Located[]; crash: Located[]; teardown: Located[]; logs: Located };
};

export function templatePath(name: string): string {
  if (name.includes("/")) return name;
  return join(repoRoot(), "vendor-adapters", "ssh-cli", "templates", `${name}.yaml`);
}

/** Loads a template file; a bad one throws ConfigError with file, path, line and value. */
export function loadCliTemplate(nameOrPath: string): CliTemplate {
  const file = templatePath(nameOrPath);
  if (!existsSync(file)) throw new Error(`ssh-cli: no command template ${file}`);
  const doc = SourceDocument.read(file);
  const t = doc.parse(CliTemplateSpec, doc.toJS());
  const at = (path: (string | number)[], text: string): Located => ({
    text,
    line: doc.locate(path)?.line ?? 0,
  });
  const list = (path: string[], items: string[]) => items.map((c, i) => at([...path, i], c));
  return {
    ...t,
    file,
    cliLine: doc.locate(["cli", "argv"])?.line ?? 0,
    identity: {
      command: at(["identity", "command"], t.identity.command),
      versionPattern: t.identity.versionPattern,
    },
    deploy: list(["deploy"], t.deploy),
    start: list(["start"], t.start),
    stop: list(["stop"], t.stop),
    state: { command: at(["state", "command"], t.state.command), patterns: t.state.patterns },
    config: at(["config"], t.config),
    host: {
      prepare: list(["host", "prepare"], t.host.prepare),
      deploy: list(["host", "deploy"], t.host.deploy),
      crash: list(["host", "crash"], t.host.crash),
      teardown: list(["host", "teardown"], t.host.teardown),
      logs: at(["host", "logs"], t.host.logs),
    },
  };
}

export type TemplateVars = Readonly<Record<string, string | number | boolean>>;

/** Renders `{{var}}`, `{{#flag}}..{{/flag}}`, `{{^flag}}..{{/flag}}`; an unknown name is an error. */
export function renderTemplate(text: string, vars: TemplateVars): string {
  const sections = text.replace(
    /\{\{([#^])(\w+)\}\}([\s\S]*?)\{\{\/\2\}\}/g,
    (_, kind: string, name: string, body: string) => {
      if (!(name in vars)) throw new Error(`template: unknown flag {{${kind}${name}}}`);
      const on = Boolean(vars[name]);
      return (kind === "#" ? on : !on) ? body : "";
    },
  );
  return sections.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const v = vars[name];
    if (v === undefined)
      throw new Error(`template: unknown variable {{${name}}} (known: ${Object.keys(vars).join(", ")})`);
    return String(v);
  });
}
