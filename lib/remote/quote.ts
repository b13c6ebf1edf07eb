/**
 * POSIX shell quoting for argv arrays sent over SSH, where the remote side always
 * runs the command through the user's shell. Hand-written because it is four lines:
 * single quotes make everything literal, and a single quote itself becomes '\''.
 */
export function shellQuote(arg: string): string {
  if (arg === "") return "''";
  if (/^[A-Za-z0-9_/.,:=@%+-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A command line from a string (taken as shell syntax, unchanged) or an argv array (quoted). */
export function commandLine(command: string | readonly string[]): string {
  return typeof command === "string" ? command : command.map(shellQuote).join(" ");
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Prefixes `export NAME='value';` for each variable. sshd drops environment
 * requests unless AcceptEnv lists the name, which physical hosts rarely do, so
 * the variables travel inside the command line instead.
 */
export function withEnvironment(line: string, env: Readonly<Record<string, string>> | undefined): string {
  if (!env) return line;
  const exports: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) throw new Error(`invalid environment variable name ${JSON.stringify(name)}`);
    exports.push(`export ${name}=${shellQuote(value)};`);
  }
  return exports.length ? `${exports.join(" ")} ${line}` : line;
}
