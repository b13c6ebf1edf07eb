/**
 * The remote layer: how the controller reaches lab hosts (docs/architecture.md).
 *
 * - keys.ts: per-lab ed25519 key pairs (OpenSSH format, 0600) and authorized_keys.
 * - sshd.ts: a private OpenSSH sshd per host (own config, never /etc/ssh), optionally in
 *   a namespace; `startSshd` resolves once it listens.
 * - command.ts: `CommandHost`, the one command API (local, namespace, SSH); wait.ts: `waitUntil`.
 * - session.ts: `RemoteHost`, one reused ssh2 connection per host, by TCP or through a
 *   namespace stream (`ip netns exec NS socat STDIO TCP:127.0.0.1:22`); exec, execOrThrow,
 *   execStream, upload (SFTP); errors in errors.ts name the host.
 * - agent-launcher.ts / agent-runtime.ts: agents (dist/agents/NAME.mjs) started over an
 *   SSH exec channel and spoken to with JSON-RPC 2.0, one object per line (jsonrpc.ts).
 *   `AgentClient` emits "notification" (method, params), "log" and "exit".
 */
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
export * from "./command.ts";
export * from "./errors.ts";
export * from "./jsonrpc.ts";
export * from "./keys.ts";
export { commandLine, shellQuote, withEnvironment } from "./quote.ts";
export { agentBundlePath, repoRoot } from "./repo-root.ts";
export * from "./session.ts";
export * from "./sshd.ts";
export * from "./wait.ts";
