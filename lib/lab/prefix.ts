import { randomBytes } from "node:crypto";

/**
 * Every lab object (namespace, link, process, state dir) carries the run's prefix:
 * "td" + 5 lowercase base-36 characters, e.g. "td3k9qz". Short enough that
 * "<prefix>-<host>" stays readable and interface names stay within IFNAMSIZ.
 */
export const PREFIX_PATTERN = /^td[a-z0-9]{5}$/;
/** Matches a namespace owned by any Tandem run: `<prefix>-<something>`. */
export const NAMESPACE_PATTERN = /^(td[a-z0-9]{5})-[A-Za-z0-9_.-]+$/;

export function newRunPrefix(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = randomBytes(5);
  let id = "td";
  for (const b of bytes) id += alphabet[b % alphabet.length];
  return id;
}

export function namespaceName(prefix: string, host: string): string {
  return `${prefix}-${host}`;
}

/** Where a run keeps its keys, configs, pid files and lab description. */
export function stateDir(prefix: string): string {
  return `/run/tandem/${prefix}`;
}
