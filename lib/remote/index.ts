export * from "./errors.ts";
export * from "./keys.ts";
export { commandLine, shellQuote, withEnvironment } from "./quote.ts";
export * from "./session.ts";
export * from "./sshd.ts";
