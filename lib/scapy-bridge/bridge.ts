import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { RemoteHost, RemoteProcess } from "../remote/index.ts";

/**
 * The scapy bridge: Debian's python3 + python3-scapy as a sidecar process spoken to over
 * JSON lines (lib/scapy-bridge/bridge.py), run locally (optionally inside a network
 * namespace) or on a lab host over SSH. It gives the project crafted/malformed packets
 * and an independent decoder to cross-check lib/wire against.
 */
export const PYTHON = "/usr/bin/python3";

export interface ScapyLayer {
  /** A scapy layer class name: "Ether", "IP", "VRRPv3", "ARP", "ICMP", "Raw", ... */
  layer: string;
  /** Field values as scapy takes them; bytes as {hex: "..."}. */
  fields?: Record<string, unknown>;
}

export interface ScapyDecodedLayer {
  layer: string;
  /** scapy's field values (internal form: ints, strings, lists; bytes as {hex}). */
  fields: Record<string, unknown>;
}

export interface ScapyChecksumCheck {
  layer: string;
  field: string;
  carried: number;
  computed: number;
  valid: boolean;
}

export interface ScapyCapturedPacket {
  hex: string;
  /** Capture time, seconds since the epoch. */
  time: number;
  layers: ScapyDecodedLayer[];
}

export class ScapyBridgeError extends Error {
  constructor(
    readonly method: string,
    readonly pythonType: string,
    message: string,
    readonly trace?: string,
  ) {
    super(`scapy bridge ${method}: ${pythonType}: ${message}`);
    this.name = "ScapyBridgeError";
  }
}

export class ScapyBridgeTimeoutError extends Error {
  constructor(
    readonly method: string,
    readonly timeoutMs: number,
  ) {
    super(`scapy bridge ${method}: no answer within ${timeoutMs} ms`);
    this.name = "ScapyBridgeTimeoutError";
  }
}

export class ScapyBridgeExitedError extends Error {
  constructor(
    readonly detail: string,
    readonly stderrTail: string,
  ) {
    super(`scapy bridge exited: ${detail}${stderrTail ? `\n${stderrTail}` : ""}`);
    this.name = "ScapyBridgeExitedError";
  }
}

/** The byte pipes of a running bridge process, local or over SSH. */
interface Transport {
  write(line: string): void;
  endInput(): void;
  onStdout(cb: (chunk: Buffer) => void): void;
  onStderr(cb: (chunk: Buffer) => void): void;
  /** Resolves with a description when the process ends. */
  exited: Promise<string>;
  kill(): Promise<void>;
}

export interface StartLocalOptions {
  /** Run inside this network namespace (`ip netns exec`). */
  namespace?: string;
  /** Time allowed for python to import scapy and say it is ready (default 30 s). */
  startTimeoutMs?: number;
}

export interface CallOptions {
  timeoutMs?: number;
}

export interface SniffOptions {
  iface: string;
  /** BPF filter (tcpdump syntax). */
  filter?: string;
  /** Stop after this many packets. */
  count?: number;
  /** Stop after this long. At least one of count and timeoutMs should be set. */
  timeoutMs?: number;
}

function bridgeSource(): string {
  return readFileSync(new URL("./bridge.py", import.meta.url), "utf8");
}

/**
 * A python one-liner that runs the bridge source carried in the command line, so a lab
 * host needs only python3-scapy, not a copy of the repository.
 */
export function bridgeCommandLine(): string[] {
  const encoded = Buffer.from(bridgeSource()).toString("base64");
  return [
    PYTHON,
    "-u",
    "-c",
    `import base64;exec(compile(base64.b64decode('${encoded}'),'bridge.py','exec'))`,
  ];
}

export class ScapyBridge {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    {
      method: string;
      resolve: (v: unknown) => void;
      reject: (e: Error) => void;
      timer: NodeJS.Timeout | undefined;
    }
  >();
  private stderrTail = "";
  private closed = false;
  private exitError: Error | undefined;
  private readyResolve!: (version: string) => void;
  private readyReject!: (e: Error) => void;
  /** Resolves with scapy's version once python has imported scapy. */
  readonly ready: Promise<string>;
  readonly exited: Promise<string>;

  private constructor(private readonly transport: Transport) {
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => undefined);
    let buffered = "";
    transport.onStdout((chunk) => {
      buffered += chunk.toString("utf8");
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.onLine(line);
        nl = buffered.indexOf("\n");
      }
    });
    transport.onStderr((chunk) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-4000);
    });
    this.exited = transport.exited.then((detail) => {
      this.exitError = new ScapyBridgeExitedError(detail, this.stderrTail.trim());
      this.readyReject(this.exitError);
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(this.exitError);
        this.pending.delete(id);
      }
      return detail;
    });
  }

  /** Starts the bridge on this machine, optionally inside a network namespace. */
  static async startLocal(options: StartLocalOptions = {}): Promise<ScapyBridge> {
    const argv = bridgeCommandLine();
    const full = options.namespace ? ["ip", "netns", "exec", options.namespace, ...argv] : argv;
    const child = spawn(full[0]!, full.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    const bridge = new ScapyBridge(childTransport(child));
    await bridge.waitReady(options.startTimeoutMs ?? 30_000);
    return bridge;
  }

  /** Starts the bridge on a lab host over its SSH session. */
  static async startRemote(
    remote: RemoteHost,
    options: { startTimeoutMs?: number } = {},
  ): Promise<ScapyBridge> {
    let onOut: (c: Buffer) => void = () => undefined;
    let onErr: (c: Buffer) => void = () => undefined;
    const proc = await remote.execStream(bridgeCommandLine(), {
      onStdout: (c) => onOut(c),
      onStderr: (c) => onErr(c),
    });
    const bridge = new ScapyBridge(
      remoteTransport(
        proc,
        (cb) => {
          onOut = cb;
        },
        (cb) => {
          onErr = cb;
        },
      ),
    );
    await bridge.waitReady(options.startTimeoutMs ?? 30_000);
    return bridge;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ScapyBridgeTimeoutError("start", timeoutMs)), timeoutMs);
    });
    try {
      await Promise.race([this.ready, timeout]);
    } catch (error) {
      await this.transport.kill();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    let msg: {
      ready?: boolean;
      scapy?: string;
      id?: number;
      result?: unknown;
      error?: Record<string, string>;
    };
    try {
      msg = JSON.parse(line);
    } catch {
      this.stderrTail += `\n[non-JSON stdout] ${line}`;
      return;
    }
    if (msg.ready) {
      this.readyResolve(msg.scapy ?? "unknown");
      return;
    }
    const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
    if (!p || msg.id === undefined) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) {
      p.reject(
        new ScapyBridgeError(p.method, msg.error.type ?? "Error", msg.error.message ?? "", msg.error.trace),
      );
    } else {
      p.resolve(msg.result);
    }
  }

  /** Calls a bridge method; rejects with ScapyBridgeError, ScapyBridgeTimeoutError or ScapyBridgeExitedError. */
  call<T>(method: string, params: object = {}, options: CallOptions = {}): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    if (this.closed) return Promise.reject(new Error("scapy bridge is closed"));
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ScapyBridgeTimeoutError(method, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, timer });
      this.transport.write(`${JSON.stringify({ id, method, params })}\n`);
    });
  }

  ping(): Promise<{ pong: boolean; scapy: string }> {
    return this.call("ping");
  }

  /** Builds a packet from a layer description; returns its bytes and scapy's decoding of them. */
  build(layers: ScapyLayer[]): Promise<{ hex: string; layers: ScapyDecodedLayer[] }> {
    return this.call("build", { layers });
  }

  /** Decodes a frame (first layer "Ether" by default, or "IP") and checks every checksum it carries. */
  decode(
    bytes: Uint8Array | string,
    first: "Ether" | "IP" | string = "Ether",
  ): Promise<{ layers: ScapyDecodedLayer[]; checksums: ScapyChecksumCheck[] }> {
    const hex = typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("hex");
    return this.call("decode", { hex, first });
  }

  /** Sends a frame on an interface of the host the bridge runs on (layer 2, one cached socket). */
  send(
    iface: string,
    frame: Uint8Array | ScapyLayer[],
    options: { count?: number; intervalMs?: number; layer?: 2 | 3 } = {},
  ): Promise<{ sent: number; bytes: number }> {
    const what =
      frame instanceof Uint8Array ? { hex: Buffer.from(frame).toString("hex") } : { layers: frame };
    const count = options.count ?? 1;
    const timeoutMs = 30_000 + count * (options.intervalMs ?? 0);
    return this.call("send", { iface, ...what, ...options }, { timeoutMs });
  }

  /** Starts a background capture; collect it with sniffWait (send meanwhile). */
  sniffStart(options: SniffOptions): Promise<{ handle: number }> {
    return this.call("sniffStart", options);
  }

  /** Waits for a capture to end (count or timeout), or stops it at once with stop=true. */
  async sniffWait(
    handle: number,
    options: { stop?: boolean; waitMs?: number } = {},
  ): Promise<ScapyCapturedPacket[]> {
    const waitMs = options.waitMs ?? 60_000;
    const r = await this.call<{ packets: ScapyCapturedPacket[] }>(
      "sniffWait",
      { handle, waitMs, stop: options.stop ?? false },
      { timeoutMs: waitMs + 15_000 },
    );
    return r.packets;
  }

  /** Captures with a BPF filter until `count` packets or `timeoutMs`. */
  async sniff(options: SniffOptions): Promise<ScapyCapturedPacket[]> {
    const { handle } = await this.sniffStart(options);
    return this.sniffWait(handle, { waitMs: options.timeoutMs ?? 60_000 });
  }

  /** Asks the bridge to exit; kills it if it does not within `graceMs`. Idempotent. */
  async close(graceMs = 3000): Promise<void> {
    if (this.closed) {
      await this.exited;
      return;
    }
    this.closed = true;
    if (!this.exitError) {
      try {
        this.transport.write(`${JSON.stringify({ id: 0, method: "shutdown" })}\n`);
        this.transport.endInput();
      } catch {
        // the process may be gone already
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), graceMs);
    });
    const outcome = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      await this.transport.kill();
      await this.exited;
    }
  }
}

function childTransport(child: ChildProcess): Transport {
  const exited = new Promise<string>((resolve) => {
    child.on("error", (e) => resolve(`cannot start ${PYTHON}: ${e.message}`));
    child.on("close", (code, signal) => resolve(signal ? `killed by ${signal}` : `exit code ${code}`));
  });
  // readline is not needed for parsing, but keeps stdout flowing even without listeners.
  return {
    write: (line) => {
      child.stdin?.write(line);
    },
    endInput: () => child.stdin?.end(),
    onStdout: (cb) => child.stdout?.on("data", cb),
    onStderr: (cb) => child.stderr?.on("data", cb),
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

function remoteTransport(
  proc: RemoteProcess,
  setOut: (cb: (c: Buffer) => void) => void,
  setErr: (cb: (c: Buffer) => void) => void,
): Transport {
  return {
    write: (line) => {
      proc.write(line);
    },
    endInput: () => proc.endInput(),
    onStdout: setOut,
    onStderr: setErr,
    exited: proc.done.then((r) => (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`)),
    kill: () => proc.kill("KILL"),
  };
}
