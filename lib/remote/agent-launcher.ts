import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { RemoteError } from "./errors.ts";
import { isNotification, isResponse, LineSplitter, parseRpcLine, type RpcResponse } from "./jsonrpc.ts";
import { shellQuote } from "./quote.ts";
import { agentBundlePath } from "./repo-root.ts";
import type { RemoteHost, RemoteProcess } from "./session.ts";

export interface LaunchAgentOptions {
  /** Passed to the agent as one JSON command-line argument (read it with agentArgs()). */
  args?: unknown;
  /** SFTP-upload the bundle to /tmp/tandem-agents/ first (physical hosts, which lack our checkout). */
  upload?: boolean;
  /** Host name in errors and logs; default the RemoteHost's name. */
  hostLabel?: string;
  /** Node on the host; default this process's node when the bundle runs in place, else "node". */
  node?: string;
  /** Local bundle; default <repo>/dist/agents/<name>.mjs. */
  bundlePath?: string;
  /**
   * The bundle already installed on the host (a physical host's prepared directory,
   * `tandem lab prepare`): run it there with the host's node; no upload.
   */
  remoteBundlePath?: string;
  /** How long the agent may take to answer its first ping; default 20 s. */
  startTimeoutMs?: number;
  /** Log lines kept per agent (oldest dropped); default 5000. */
  maxLogLines?: number;
}

export interface CallOptions {
  /** Default: no timeout. */
  timeoutMs?: number;
}

export interface AgentLogLine {
  time: Date;
  host: string;
  agent: string;
  line: string;
}

export interface AgentExit {
  code: number | null;
  signal: string | null;
}

/** The agent process ended while calls were pending, or a call was made after it died. */
export class AgentCrashedError extends RemoteError {
  constructor(
    host: string,
    readonly agent: string,
    readonly code: number | null,
    readonly signal: string | null,
    readonly lastLogLines: string[],
  ) {
    const how =
      code !== null
        ? `exit code ${code}`
        : signal
          ? `signal ${signal}`
          : `connection lost: the SSH session to ${host} dropped; check that sshd runs on ${host} and the management network reaches it, then run the case again`;
    const tail = lastLogLines.length ? `; last log lines:\n  ${lastLogLines.join("\n  ")}` : "";
    super(`agent ${agent} on ${host} died (${how})${tail}`, host);
    this.name = "AgentCrashedError";
  }
}

/** A call made after stop(). */
export class AgentStoppedError extends RemoteError {
  constructor(
    host: string,
    readonly agent: string,
  ) {
    super(`agent ${agent} on ${host} was stopped`, host);
    this.name = "AgentStoppedError";
  }
}

/** The agent answered a call with a JSON-RPC error (e.g. the method threw). */
export class AgentCallError extends RemoteError {
  constructor(
    host: string,
    readonly agent: string,
    readonly method: string,
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(`${agent}.${method} on ${host} failed: ${message}`, host);
    this.name = "AgentCallError";
  }
}

export class AgentCallTimeoutError extends RemoteError {
  constructor(
    host: string,
    readonly agent: string,
    readonly method: string,
    readonly timeoutMs: number,
  ) {
    super(`${agent}.${method} on ${host} got no answer within ${timeoutMs} ms`, host);
    this.name = "AgentCallTimeoutError";
  }
}

interface AgentEvents {
  notification: [method: string, params: unknown];
  log: [line: AgentLogLine];
  exit: [exit: AgentExit];
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
}

const REMOTE_AGENT_DIR = "/tmp/tandem-agents";

/**
 * Controller side of an agent: JSON-RPC 2.0 over the SSH channel's stdin/stdout, the
 * agent's stderr collected as its log. Events: "notification" (method, params), "log",
 * "exit".
 */
export class AgentClient extends EventEmitter<AgentEvents> {
  readonly logs: AgentLogLine[] = [];
  readonly exited: Promise<AgentExit>;
  /** The agent's pid on its host (from the startup ping). */
  pid: number | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exit: AgentExit | undefined;
  private stopping = false;
  private readonly stdoutLines = new LineSplitter();
  private readonly stderrLines = new LineSplitter();

  constructor(
    readonly host: string,
    readonly agent: string,
    private readonly remoteProcess: RemoteProcess,
    private readonly maxLogLines: number,
  ) {
    super();
    this.exited = remoteProcess.done.then((result) => {
      const unterminated = this.stderrLines.rest();
      if (unterminated) this.addLog(unterminated);
      const exit = { code: result.code, signal: result.signal };
      this.exit = exit;
      for (const [id, call] of this.pending) {
        this.pending.delete(id);
        clearTimeout(call.timer);
        call.reject(this.deadError());
      }
      this.emit("exit", exit);
      return exit;
    });
  }

  /** @internal wired by launchAgent before the process can produce output. */
  onStdout(chunk: Buffer): void {
    for (const line of this.stdoutLines.push(chunk)) this.handleLine(line);
  }

  /** @internal */
  onStderr(chunk: Buffer): void {
    for (const line of this.stderrLines.push(chunk)) this.addLog(line);
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Calls a method; rejects with AgentCallError, AgentCallTimeoutError or AgentCrashedError. */
  call<T = unknown>(method: string, params?: unknown, options: CallOptions = {}): Promise<T> {
    if (this.exit) return Promise.reject(this.deadError());
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { method, resolve: resolve as (value: unknown) => void, reject };
      if (options.timeoutMs) {
        const timeoutMs = options.timeoutMs;
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new AgentCallTimeoutError(this.host, this.agent, method, timeoutMs));
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      const request =
        params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params };
      this.remoteProcess.write(`${JSON.stringify(request)}\n`);
    });
  }

  /** Resolves with the params of the next notification `method` that passes `accept`. */
  waitForNotification<T = unknown>(
    method: string,
    options: { timeoutMs?: number; accept?: (params: T) => boolean } = {},
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        clearTimeout(timer);
        this.off("notification", onNotification);
        this.off("exit", onExit);
      };
      const onNotification = (name: string, params: unknown) => {
        if (name !== method || (options.accept && !options.accept(params as T))) return;
        cleanup();
        resolve(params as T);
      };
      const onExit = () => {
        cleanup();
        reject(this.deadError());
      };
      if (options.timeoutMs) {
        const timeoutMs = options.timeoutMs;
        timer = setTimeout(() => {
          cleanup();
          reject(new AgentCallTimeoutError(this.host, this.agent, `notification ${method}`, timeoutMs));
        }, timeoutMs);
      }
      this.on("notification", onNotification);
      this.on("exit", onExit);
      if (this.exit) onExit();
    });
  }

  /** The collected log as text, one "time host/agent: line" per line. */
  logText(): string {
    return this.logs.map((l) => `${l.time.toISOString()} ${l.host}/${l.agent}: ${l.line}`).join("\n");
  }

  /**
   * Asks the agent to shut down; if it has not exited within `graceMs`, kills its process
   * group. Resolves with its exit.
   */
  async stop(options: { graceMs?: number } = {}): Promise<AgentExit> {
    if (this.exit) return this.exit;
    const graceMs = options.graceMs ?? 2000;
    this.stopping = true;
    await this.call("shutdown", undefined, { timeoutMs: graceMs }).catch(() => undefined);
    this.remoteProcess.endInput();
    if (await settlesWithin(this.exited, graceMs)) return this.exited;
    this.addLog(`[launcher] ${this.agent} did not exit within ${graceMs} ms of shutdown; killing it`);
    await this.remoteProcess.kill("KILL");
    if (await settlesWithin(this.exited, 5000)) return this.exited;
    this.remoteProcess.channel.close(); // connection unresponsive: give up on it
    return this.exited;
  }

  private handleLine(line: string): void {
    if (!line.trim()) return;
    const parsed = parseRpcLine(line);
    if (!parsed.ok) {
      this.addLog(`[launcher] stdout line is not JSON-RPC (${parsed.reason}): ${line.slice(0, 300)}`);
      return;
    }
    const message = parsed.message;
    if (isNotification(message)) {
      this.emit("notification", message.method, message.params);
      return;
    }
    if (!isResponse(message)) {
      this.addLog(`[launcher] unexpected request from agent: ${line.slice(0, 300)}`);
      return;
    }
    this.settle(message);
  }

  private settle(response: RpcResponse): void {
    const id = typeof response.id === "number" ? response.id : Number(response.id);
    const call = this.pending.get(id);
    if (!call) {
      if (response.error) this.addLog(`[launcher] agent error without a call: ${response.error.message}`);
      return;
    }
    this.pending.delete(id);
    clearTimeout(call.timer);
    if (response.error) {
      call.reject(
        new AgentCallError(
          this.host,
          this.agent,
          call.method,
          response.error.code,
          response.error.message,
          response.error.data,
        ),
      );
    } else {
      call.resolve(response.result);
    }
  }

  private addLog(line: string): void {
    const entry = { time: new Date(), host: this.host, agent: this.agent, line };
    this.logs.push(entry);
    if (this.logs.length > this.maxLogLines) this.logs.splice(0, this.logs.length - this.maxLogLines);
    this.emit("log", entry);
  }

  private deadError(): Error {
    if (this.stopping) return new AgentStoppedError(this.host, this.agent);
    const exit = this.exit ?? { code: null, signal: null };
    const tail = this.logs.slice(-10).map((l) => l.line);
    return new AgentCrashedError(this.host, this.agent, exit.code, exit.signal, tail);
  }
}

/**
 * Starts agent `agentName` (dist/agents/<name>.mjs) on `remote` over an SSH exec channel
 * and resolves once it answers a ping. In a virtual lab the hosts share this filesystem
 * and run the bundle in place; with `upload` it is first copied over SFTP.
 */
export async function launchAgent(
  remote: RemoteHost,
  agentName: string,
  options: LaunchAgentOptions = {},
): Promise<AgentClient> {
  if (!/^[A-Za-z0-9_-]+$/.test(agentName)) throw new Error(`invalid agent name ${JSON.stringify(agentName)}`);
  const host = options.hostLabel ?? remote.name;
  const localBundle = options.bundlePath ?? agentBundlePath(agentName);
  if (!existsSync(localBundle)) {
    throw new RemoteError(
      `agent bundle ${localBundle} not found (build agents with \`npm run build\`)`,
      host,
    );
  }
  let bundle = localBundle;
  // A prepared physical host (`tandem lab prepare`) runs its installed copy, beside its addons.
  const installed =
    options.remoteBundlePath ??
    (remote.preparedDir ? `${remote.preparedDir}/agents/${agentName}.mjs` : undefined);
  if (installed) {
    bundle = installed;
  } else if (options.upload) {
    bundle = `${REMOTE_AGENT_DIR}/${agentName}.mjs`;
    // Upload under a temporary name and rename, so concurrent launches never run a half-written file.
    const temporary = `${REMOTE_AGENT_DIR}/.${agentName}.${randomBytes(4).toString("hex")}.mjs`;
    await remote.execOrThrow(["mkdir", "-p", REMOTE_AGENT_DIR]);
    await remote.upload(localBundle, temporary, 0o644);
    await remote.execOrThrow(["mv", "-f", temporary, bundle]);
  }
  const node = options.node ?? (options.upload || installed ? "node" : process.execPath);
  const argv = [node, bundle, JSON.stringify(options.args ?? null)];
  // `exec` makes node the session's process (and process group leader) itself.
  const command = `exec ${argv.map(shellQuote).join(" ")}`;

  let client: AgentClient | undefined;
  const early: Array<["out" | "err", Buffer]> = [];
  const proc = await remote.execStream(command, {
    onStdout: (chunk) => (client ? client.onStdout(chunk) : early.push(["out", chunk])),
    onStderr: (chunk) => (client ? client.onStderr(chunk) : early.push(["err", chunk])),
  });
  client = new AgentClient(host, agentName, proc, options.maxLogLines ?? 5000);
  for (const [stream, chunk] of early) {
    if (stream === "out") client.onStdout(chunk);
    else client.onStderr(chunk);
  }
  try {
    const pong = await client.call<{ pid: number }>("ping", undefined, {
      timeoutMs: options.startTimeoutMs ?? 20_000,
    });
    client.pid = pong.pid;
  } catch (error) {
    await client.stop({ graceMs: 500 }).catch(() => undefined);
    throw error;
  }
  return client;
}

function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
