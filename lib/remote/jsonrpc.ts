/**
 * JSON-RPC 2.0 messages as exchanged between the controller and an agent: one JSON
 * object per line over the SSH channel (stdin: requests; stdout: responses and
 * notifications). Small enough to write here; the line framing is ours anyway.
 */
export interface RpcRequest {
  jsonrpc: "2.0";
  id: number | string;
  method: string;
  params?: unknown;
}

export interface RpcNotification {
  jsonrpc: "2.0";
  method: string;
  params?: unknown;
}

export interface RpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export interface RpcResponse {
  jsonrpc: "2.0";
  id: number | string | null;
  result?: unknown;
  error?: RpcErrorObject;
}

export type RpcMessage = RpcRequest | RpcNotification | RpcResponse;

export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
/** An application error thrown by a method (JSON-RPC's server-error range). */
export const RPC_METHOD_FAILED = -32000;

/** Parses one line; never throws (a bad line yields `{ ok: false, reason }`). */
export function parseRpcLine(
  line: string,
): { ok: true; message: RpcMessage } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return { ok: false, reason: `not JSON: ${(error as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: "not a JSON object" };
  }
  const record = value as Record<string, unknown>;
  if (record.jsonrpc !== "2.0") return { ok: false, reason: 'missing "jsonrpc": "2.0"' };
  if ("method" in record && typeof record.method !== "string")
    return { ok: false, reason: "method is not a string" };
  if (!("method" in record) && !("id" in record)) return { ok: false, reason: "neither method nor id" };
  return { ok: true, message: value as RpcMessage };
}

export function isRequest(message: RpcMessage): message is RpcRequest {
  return "method" in message && "id" in message && message.id !== undefined && message.id !== null;
}

export function isNotification(message: RpcMessage): message is RpcNotification {
  return "method" in message && !("id" in message && message.id !== undefined && message.id !== null);
}

export function isResponse(message: RpcMessage): message is RpcResponse {
  return !("method" in message) && "id" in message;
}

/**
 * Splits a byte stream into lines; `push` returns the complete lines so far. Lines are
 * decoded as UTF-8 only once complete, so a multi-byte character split across chunks survives.
 */
export class LineSplitter {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const newline = this.pending.indexOf(10, start);
      if (newline < 0) break;
      lines.push(this.pending.subarray(start, newline).toString("utf8"));
      start = newline + 1;
    }
    this.pending = this.pending.subarray(start);
    return lines;
  }

  /** What is left without a final newline. */
  rest(): string {
    return this.pending.toString("utf8");
  }
}
