import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Runs an agent bundle (dist/agents/NAME.mjs) inside a network namespace on this machine
 * and speaks JSON-RPC to it over the child's stdio: for namespace-level tests that do not
 * bring up sshd. Lab tests use the SSH launcher instead; both speak the same protocol.
 */
export class LocalAgent {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private buffer = "";
  readonly logs: string[] = [];
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      this.buffer += d;
      for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.onLine(line);
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => this.logs.push(...d.split("\n").filter(Boolean)));
    this.exited = new Promise((res) =>
      child.on("exit", (code) => {
        for (const p of this.pending.values())
          p.reject(new Error(`agent ${name} exited (${code}): ${this.logs.slice(-5).join(" | ")}`));
        this.pending.clear();
        res(code);
      }),
    );
  }

  static start(namespace: string, agent: string, args: unknown = {}): LocalAgent {
    const bundle = fileURLToPath(new URL(`../../../dist/agents/${agent}.mjs`, import.meta.url));
    const child = spawn("ip", ["netns", "exec", namespace, process.execPath, bundle, JSON.stringify(args)], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    return new LocalAgent(`${agent}@${namespace}`, child);
  }

  private onLine(line: string): void {
    let msg: { id?: number; result?: unknown; error?: { message: string } };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.logs.push(`[bad protocol line] ${line}`);
      return;
    }
    if (typeof msg.id !== "number") return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${this.name}: ${msg.error.message}`));
    else p.resolve(msg.result);
  }

  call<T>(method: string, params?: unknown, timeoutMs = 60_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill("SIGKILL"), 3000);
    await this.exited;
    clearTimeout(t);
  }
}
