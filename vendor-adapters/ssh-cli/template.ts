import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { repoRoot } from "../../lib/remote/repo-root.ts";
import { SourceDocument } from "../../lib/topology/errors.ts";
import { CapabilitySchema } from "../types.ts";

/**
 * A device family for the ssh-cli adapter: the shell/CLI commands that deploy, start,
 * stop and read a router, as templates in YAML. `{{name}}` inserts a variable;
 * `{{#flag}}...{{/flag}}` and `{{^flag}}...{{/flag}}` keep text when a boolean is true /
 * false. Hand-written (twenty lines) rather than a template engine: that subset of
 * mustache is all a command line needs, and no engine is installed here.
 */
const Commands = z.array(z.string().min(1)).default([]);

export const CliTemplateSpec = z
  .object({
    name: z.string().min(1),
    description: z.string().min(1),
    vendor: z.string().min(1),
    product: z.string().min(1),
    /** Checked against the one list (types.ts): a typo is an error naming file and line. */
    capabilities: z.array(CapabilitySchema).default([]),
    /** Extra variables, rendered themselves (may use the built-in ones). */
    vars: z.record(z.string(), z.string()).default({}),
    identity: z.object({ command: z.string().min(1), versionPattern: z.string().min(1) }).strict(),
    /** Once per device session (idempotent: runs before every deploy). */
    prepare: Commands,
    /** Per VRRP instance. */
    deploy: Commands,
    start: Commands,
    stop: Commands,
    crash: Commands,
    teardown: Commands,
    state: z
      .object({
        command: z.string().min(1),
        patterns: z.record(z.enum(["master", "backup", "initialize"]), z.string()),
      })
      .strict(),
    logs: z.string().min(1),
    config: z.string().min(1),
  })
  .strict();
export type CliTemplate = z.infer<typeof CliTemplateSpec> & { file: string };

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
  for (const [k, p] of Object.entries(t.state.patterns)) {
    try {
      new RegExp(p);
    } catch (e) {
      throw new Error(`${file}: state.patterns.${k}: not a regular expression: ${(e as Error).message}`);
    }
  }
  return { ...t, file };
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
