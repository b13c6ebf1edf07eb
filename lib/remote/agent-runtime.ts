import {
  isNotification,
  isRequest,
  LineSplitter,
  parseRpcLine,
  RPC_INVALID_REQUEST,
  RPC_METHOD_FAILED,
  RPC_METHOD_NOT_FOUND,
  RPC_PARSE_ERROR,
  type RpcResponse,
} from "./jsonrpc.ts";

// biome-ignore lint/suspicious/noExplicitAny: each agent method validates its own params
export type AgentMethod = (params: any) => unknown | Promise<unknown>;

export interface AgentDefinition {
  name: string;
  methods: Record<string, AgentMethod>;
  /** Runs on `shutdown` and when the controller goes away (stdin closed), before exit. */
  onShutdown?: () => void | Promise<void>;
}

export interface AgentServer {
  readonly name: string;
  /** Sends a JSON-RPC notification (no id) to the controller. */
  notify(method: string, params?: unknown): void;
  /** Writes a line to the agent's log (stderr, collected by the controller). */
  log(...parts: unknown[]): void;
  /** Runs onShutdown and exits with `code`. */
  shutdown(code?: number): Promise<never>;
}

/** An error whose code and data travel to the controller in the JSON-RPC error object. */
export class AgentMethodError extends Error {
  constructor(
    message: string,
    readonly code = RPC_METHOD_FAILED,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "AgentMethodError";
  }
}

let active: AgentServer | undefined;

/** Sends a notification from the running agent (see serveAgent). */
export function notify(method: string, params?: unknown): void {
  if (!active) throw new Error("notify() called before serveAgent()");
  active.notify(method, params);
}

/** Logs to the running agent's stderr. */
export function log(...parts: unknown[]): void {
  if (active) active.log(...parts);
  else process.stderr.write(`${formatLog(parts)}\n`);
}

/** The JSON arguments the launcher passed as the first command-line argument (or undefined). */
export function agentArgs<T = unknown>(): T {
  const raw = process.argv[2];
  if (raw === undefined || raw === "") return undefined as T;
  try {
    return JSON.parse(raw) as T;
  } catch (error) {
    throw new Error(`agent arguments are not JSON (${(error as Error).message}): ${raw.slice(0, 200)}`);
  }
}

/**
 * Serves an agent: JSON-RPC 2.0, one object per line, requests on stdin and responses
 * and notifications on stdout. Nothing else may reach stdout, so console.log and
 * process.stdout.write are redirected to stderr (the agent's log). Built-in methods:
 * `ping` ({name, pid, uptimeMs}) and `shutdown`.
 */
export function serveAgent(definition: AgentDefinition): AgentServer {
  if (active) throw new Error(`serveAgent called twice (already serving ${active.name})`);
  const stdout = process.stdout;
  const protocolWrite = stdout.write.bind(stdout) as (line: string) => boolean;
  const toLog = process.stderr.write.bind(process.stderr);
  stdout.write = toLog as typeof stdout.write;
  console.log = console.error;
  console.info = console.error;
  console.debug = console.error;
  // The controller going away mid-write is its business, not a crash of ours.
  stdout.on("error", () => {});

  const send = (message: object) => {
    protocolWrite(`${JSON.stringify(message)}\n`);
  };
  const started = Date.now();
  let stopping: Promise<never> | undefined;

  const server: AgentServer = {
    name: definition.name,
    notify(method, params) {
      send(params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params });
    },
    log(...parts) {
      toLog(`${formatLog(parts)}\n`);
    },
    shutdown(code = 0) {
      stopping ??= (async () => {
        try {
          await definition.onShutdown?.();
        } catch (error) {
          server.log(`onShutdown failed: ${(error as Error).stack ?? error}`);
          code = code || 1;
        }
        // Let the last response leave before the process ends.
        await new Promise<void>((resolve) =>
          stdout.writableLength ? stdout.once("drain", resolve) : resolve(),
        );
        process.exit(code);
      })();
      return stopping;
    },
  };
  active = server;

  const builtins: Record<string, AgentMethod> = {
    ping: () => ({ name: definition.name, pid: process.pid, uptimeMs: Date.now() - started }),
    shutdown: () => {
      setImmediate(() => void server.shutdown(0));
      return { ok: true };
    },
  };

  const handle = async (line: string) => {
    if (!line.trim()) return;
    const parsed = parseRpcLine(line);
    if (!parsed.ok) {
      send({ jsonrpc: "2.0", id: null, error: { code: RPC_PARSE_ERROR, message: parsed.reason } });
      return;
    }
    const message = parsed.message;
    if (isNotification(message)) return; // the controller sends none today; ignore quietly
    if (!isRequest(message)) {
      send({ jsonrpc: "2.0", id: null, error: { code: RPC_INVALID_REQUEST, message: "not a request" } });
      return;
    }
    const method = Object.hasOwn(definition.methods, message.method)
      ? definition.methods[message.method]
      : Object.hasOwn(builtins, message.method)
        ? builtins[message.method]
        : undefined;
    let response: RpcResponse;
    if (!method) {
      response = {
        jsonrpc: "2.0",
        id: message.id,
        error: {
          code: RPC_METHOD_NOT_FOUND,
          message: `agent ${definition.name} has no method ${message.method}`,
        },
      };
    } else {
      try {
        const result = await method(message.params);
        response = { jsonrpc: "2.0", id: message.id, result: result === undefined ? null : result };
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error));
        const code = error instanceof AgentMethodError ? error.code : RPC_METHOD_FAILED;
        const data = error instanceof AgentMethodError ? error.data : undefined;
        response = {
          jsonrpc: "2.0",
          id: message.id,
          error: data === undefined ? { code, message: err.message } : { code, message: err.message, data },
        };
      }
    }
    try {
      send(response);
    } catch (error) {
      // A result JSON cannot carry (BigInt, a cycle): answer with an error, do not crash.
      send({
        jsonrpc: "2.0",
        id: response.id,
        error: {
          code: RPC_METHOD_FAILED,
          message: `${message.method} returned a result that is not JSON: ${(error as Error).message}`,
        },
      });
    }
  };

  const splitter = new LineSplitter();
  process.stdin.on("data", (chunk: Buffer) => {
    for (const line of splitter.push(chunk)) void handle(line);
  });
  process.stdin.on("end", () => {
    server.log(`${definition.name}: controller closed stdin; shutting down`);
    void server.shutdown(0);
  });
  process.on("SIGTERM", () => void server.shutdown(0));
  server.log(`${definition.name}: agent started (pid ${process.pid})`);
  return server;
}

function formatLog(parts: unknown[]): string {
  return parts
    .map((p) => (typeof p === "string" ? p : p instanceof Error ? (p.stack ?? p.message) : safeJson(p)))
    .join(" ");
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
