export * from "./agent-launcher.ts";
// Agent side (imported by lib/**/NAME.agent.ts); `notify` and `log` are also on the AgentServer.
export {
  type AgentDefinition,
  type AgentMethod,
  AgentMethodError,
  type AgentServer,
  agentArgs,
  serveAgent,
} from "./agent-runtime.ts";
export * from "./errors.ts";
export * from "./jsonrpc.ts";
export * from "./keys.ts";
export { commandLine, shellQuote, withEnvironment } from "./quote.ts";
export { agentBundlePath, repoRoot } from "./repo-root.ts";
export * from "./session.ts";
export * from "./sshd.ts";
