import { type ChildProcess, spawn } from "node:child_process";
import { Socket } from "node:net";
import { Duplex } from "node:stream";
import type { ClientChannel, ConnectConfig, SFTPWrapper } from "ssh2";
import ssh2 from "ssh2";
import type { CommandHost, ExecOptions, ExecResult } from "./command.ts";
import {
  AuthFailedError,
  HostUnreachableError,
  RemoteCommandError,
  RemoteError,
  RemoteTimeoutError,
} from "./errors.ts";
import { keyFingerprint, publicKeyBlob } from "./keys.ts";
import { commandLine, withEnvironment } from "./quote.ts";
import { Semaphore } from "./semaphore.ts";
import { pause } from "./wait.ts";

/** sshd reached by TCP (physical hosts, or a loopback listener). */
export interface TcpTarget {
  kind: "tcp";
  host: string;
  port?: number;
}

/**
 * sshd inside a network namespace, reached through `ip netns exec NS socat STDIO
 * TCP:address:port` used as the SSH transport (like a ProxyCommand behind a jump box),
 * so the lab needs no management interface in the machine's own namespace.
 */
export interface NamespaceTarget {
  kind: "namespace";
  namespace: string;
  /** Address sshd listens on inside the namespace; default 127.0.0.1. */
  address?: string;
  port?: number;
}

export type RemoteTarget = TcpTarget | NamespaceTarget;

export interface RemoteHostOptions {
  /** Name used in errors and logs (the lab host name); defaults to the target's address. */
  name?: string;
  target: RemoteTarget;
  /** Default "root". */
  username?: string;
  /** OpenSSH private key (contents, not a path). */
  privateKey: string | Buffer;
  /** Pins the server's host key: an OpenSSH public key line ("ssh-ed25519 AAAA..."). */
  hostPublicKey?: string;
  /** Pins the server's host key by its OpenSSH fingerprint ("SHA256:..."), as an inventory does. */
  hostKeyFingerprint?: string;
  /** SSH handshake timeout; default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Channels open at once on the one connection; beyond it calls queue. Default 48, below
   * our sshd's MaxSessions 64; use 8 for a stock sshd (MaxSessions 10).
   */
  maxChannels?: number;
  /**
   * "posix" (default): the login shell is sh-like, so each command is prefixed with
   * `echo $$;` to learn its process group for kill(). "raw": commands go verbatim (a
   * vendor CLI); kill() then sends an SSH signal request and closes the channel.
   */
  shell?: "posix" | "raw";
  /** SSH keepalive interval; default 10 s (a dead peer is noticed after 3 missed). */
  keepaliveIntervalMs?: number;
  /** A physical host's prepared directory (`tandem lab prepare`): agents, addons, bin/pktgen. */
  preparedDir?: string;
}

export interface StreamOptions {
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  env?: Readonly<Record<string, string>>;
  /** Also collect output into the result (default false: long-running processes would grow it forever). */
  collect?: boolean;
}

/** A command running over its own SSH channel; stdin stays open until `endInput()`. */
export interface RemoteProcess {
  readonly command: string;
  readonly channel: ClientChannel;
  /** Resolves when the channel closes (never rejects). */
  readonly done: Promise<ExecResult>;
  /**
   * The remote process group (the session shell's pid; sshd runs each session under
   * setsid); undefined if it ended before telling or the shell is raw.
   */
  readonly processGroup: Promise<number | undefined>;
  write(data: string | Buffer): boolean;
  endInput(): void;
  /**
   * Signals the remote process group (default KILL) over a second channel, then closes
   * this one. Resolves once the signal was delivered (or there was nothing to signal).
   */
  kill(signal?: string): Promise<void>;
}

const DEFAULT_PORT = 22;
/** Prefix of the line carrying a command's process group (see startProcess). */
const PGID_MARKER = "tandem-pgid=";

/**
 * One lab host reached over SSH. Holds one ssh2 connection, opened lazily on first
 * use and reopened if it dropped; every exec/stream/upload opens a channel on it.
 */
export class RemoteHost implements CommandHost {
  readonly name: string;
  /** How many SSH connections this host has opened so far (1 while reuse works). */
  connectionsOpened = 0;
  private readonly slots: Semaphore;
  private current: { client: ssh2.Client; ready: Promise<ssh2.Client> } | undefined;
  private closed = false;
  private readonly pinnedHostKey: Buffer | undefined;

  constructor(private readonly options: RemoteHostOptions) {
    this.name = options.name ?? describeTarget(options.target);
    this.slots = new Semaphore(options.maxChannels ?? 48);
    this.pinnedHostKey = options.hostPublicKey ? publicKeyBlob(options.hostPublicKey) : undefined;
  }

  get target(): RemoteTarget {
    return this.options.target;
  }

  /** The host's prepared directory on a physical lab; undefined where hosts share the controller's files. */
  get preparedDir(): string | undefined {
    return this.options.preparedDir;
  }

  /** Runs a command and collects its output; a non-zero exit is a result, not an error. */
  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const proc = await this.startProcess(
      command,
      { collect: true, ...(options.env ? { env: options.env } : {}) },
      true,
    );
    if (options.input !== undefined) proc.channel.end(options.input);
    else proc.endInput();
    if (!options.timeoutMs) return this.checkConnectionLost(proc, await proc.done);
    const timeoutMs = options.timeoutMs;
    let timedOut = false;
    let giveUp: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      void proc.kill("KILL");
    }, timeoutMs);
    // If even the kill goes unanswered (a hung connection), stop waiting after a grace period.
    const abandoned = new Promise<ExecResult>((resolve) => {
      giveUp = setTimeout(
        () => resolve({ code: null, signal: null, stdout: "", stderr: "" }),
        timeoutMs + 5000,
      );
    });
    try {
      const result = await Promise.race([proc.done, abandoned]);
      if (timedOut)
        throw new RemoteTimeoutError(this.name, proc.command, timeoutMs, result.stdout, result.stderr);
      return this.checkConnectionLost(proc, result);
    } finally {
      clearTimeout(timer);
      clearTimeout(giveUp);
    }
  }

  /** Like exec, but a non-zero exit (or a signal) throws RemoteCommandError. */
  async execOrThrow(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const result = await this.exec(command, options);
    if (result.code !== 0) {
      throw new RemoteCommandError(
        this.name,
        commandLine(command),
        result.code,
        result.signal,
        result.stdout,
        result.stderr,
      );
    }
    return result;
  }

  /** Starts a (long-running) command on its own channel and streams its output. */
  execStream(command: string | readonly string[], options: StreamOptions = {}): Promise<RemoteProcess> {
    return this.startProcess(command, options, true);
  }

  /**
   * `queued: false` skips the channel limit: a kill must not wait for a slot held by the
   * very command it is killing (sshd's MaxSessions 64 leaves room above our 48).
   */
  private async startProcess(
    command: string | readonly string[],
    options: StreamOptions,
    queued: boolean,
  ): Promise<RemoteProcess> {
    const line = withEnvironment(commandLine(command), options.env);
    // OpenSSH refuses "signal" channel requests in root sessions ("session signalling
    // requires privilege separation", which sshd turns off after a root login), so each
    // command first prints its shell's pid (= its process group: sshd runs every session
    // under setsid) as the first stdout line, and kill() signals that group instead.
    const posix = this.options.shell !== "raw";
    if (!posix && options.env) throw new Error(`env is not supported on ${this.name} (shell: raw)`);
    const wrapped = posix ? `echo ${PGID_MARKER}$$; ${line}` : line;
    const release = queued ? await this.slots.acquire() : () => {};
    const killGroup = async (group: number, signalName: string) => {
      const killer = await this.startProcess(["kill", "-s", signalName, "--", `-${group}`], {}, false);
      killer.endInput();
      await killer.done;
    };
    try {
      // Listeners go on inside ssh2's callback: the exit status and the first output can
      // arrive in the same read as the channel confirmation, before an await resumes.
      return await this.openChannel<RemoteProcess>(
        (client, callback) =>
          client.exec(wrapped, (err, channel) => {
            if (err) callback(err, undefined as never);
            else
              callback(
                undefined,
                watchProcess(line, channel, options, release, posix ? killGroup : undefined),
              );
          }),
        line,
      );
    } catch (error) {
      release();
      throw error;
    }
  }

  /** Copies a local file to the host over SFTP, then sets its mode if given. */
  async upload(localPath: string, remotePath: string, mode?: number): Promise<void> {
    const release = await this.slots.acquire();
    let sftp: SFTPWrapper | undefined;
    try {
      sftp = await this.openChannel<SFTPWrapper>((client, callback) => client.sftp(callback), "sftp");
      const session = sftp;
      await new Promise<void>((resolve, reject) =>
        session.fastPut(localPath, remotePath, (err) => (err ? reject(err) : resolve())),
      );
      if (mode !== undefined) {
        await new Promise<void>((resolve, reject) =>
          session.chmod(remotePath, mode, (err) => (err ? reject(err) : resolve())),
        );
      }
    } catch (error) {
      if (error instanceof RemoteError) throw error;
      throw new RemoteError(
        `upload of ${localPath} to ${this.name}:${remotePath} failed: ${errorMessage(error)}`,
        this.name,
        { cause: error },
      );
    } finally {
      sftp?.end();
      release();
    }
  }

  /** Copies a file of the host to the controller over SFTP (captures, logs, status files). */
  async download(remotePath: string, localPath: string): Promise<void> {
    const release = await this.slots.acquire();
    let sftp: SFTPWrapper | undefined;
    try {
      sftp = await this.openChannel<SFTPWrapper>((client, callback) => client.sftp(callback), "sftp");
      const session = sftp;
      await new Promise<void>((resolve, reject) =>
        session.fastGet(remotePath, localPath, (err) => (err ? reject(err) : resolve())),
      );
    } catch (error) {
      if (error instanceof RemoteError) throw error;
      throw new RemoteError(
        `download of ${this.name}:${remotePath} to ${localPath} failed: ${errorMessage(error)}`,
        this.name,
        { cause: error },
      );
    } finally {
      sftp?.end();
      release();
    }
  }

  /** Closes the connection; later calls fail. Running channels end with it. */
  close(): void {
    this.closed = true;
    this.current?.client.end();
    this.current = undefined;
  }

  private checkConnectionLost(proc: RemoteProcess, result: ExecResult): ExecResult {
    if (result.code === null && result.signal === null) {
      throw new HostUnreachableError(this.name, `connection lost while running: ${proc.command}`);
    }
    return result;
  }

  /**
   * Opens a channel. Reconnects once if the cached connection turned out to be dead, and
   * retries a refused open for a while: sshd frees a session slot a little after the
   * channel closes on our side, so a burst can briefly hit MaxSessions.
   */
  private async openChannel<T>(
    open: (client: ssh2.Client, callback: (err: Error | undefined, value: T) => void) => void,
    what: string,
  ): Promise<T> {
    let reconnected = false;
    for (let refusals = 0; ; ) {
      const client = await this.connection();
      try {
        return await new Promise<T>((resolve, reject) => {
          open(client, (err, value) => (err ? reject(err) : resolve(value)));
        });
      } catch (error) {
        const connectionDied = this.current?.client !== client;
        if (connectionDied && !reconnected && !this.closed) {
          reconnected = true;
          continue;
        }
        const refused = /Channel open failure/i.test(errorMessage(error));
        if (refused && !connectionDied && refusals < 40) {
          refusals++;
          // sshd refused a channel (its MaxSessions is full for a moment): a transport-level
          // back-off before asking again, not a wait for a condition we could observe.
          await pause(Math.min(5 * refusals, 100));
          continue;
        }
        throw new RemoteError(
          `cannot open a channel on ${this.name} for ${what}: ${errorMessage(error)}`,
          this.name,
          { cause: error },
        );
      }
    }
  }

  private connection(): Promise<ssh2.Client> {
    if (this.closed)
      return Promise.reject(new RemoteError(`connection to ${this.name} was closed`, this.name));
    if (!this.current) {
      const client = new ssh2.Client();
      const entry = { client, ready: this.connect(client) };
      this.current = entry;
      entry.ready.catch(() => {
        if (this.current === entry) this.current = undefined;
      });
      client.on("close", () => {
        if (this.current === entry) this.current = undefined;
      });
    }
    return this.current.ready;
  }

  private connect(client: ssh2.Client): Promise<ssh2.Client> {
    const target = this.options.target;
    const timeoutMs = this.options.connectTimeoutMs ?? 10_000;
    const config: ConnectConfig = {
      username: this.options.username ?? "root",
      privateKey: this.options.privateKey,
      readyTimeout: timeoutMs,
      keepaliveInterval: this.options.keepaliveIntervalMs ?? 10_000,
      keepaliveCountMax: 3,
      // Key only: skipping ssh2's default "none" attempt saves a round trip per connect.
      authHandler: ["publickey"],
    };
    let hostKeyMismatch = false;
    const pinned = this.pinnedHostKey;
    const fingerprint = this.options.hostKeyFingerprint;
    if (fingerprint && !pinned) {
      config.hostVerifier = (key: Buffer) => {
        hostKeyMismatch = keyFingerprint(key) !== fingerprint;
        return !hostKeyMismatch;
      };
    }
    if (pinned) {
      config.hostVerifier = (key: Buffer) => {
        hostKeyMismatch = !key.equals(pinned);
        return !hostKeyMismatch;
      };
    }
    let proxy: { child: ChildProcess; stderr: string; exited: Promise<number | null> } | undefined;
    if (target.kind === "tcp") {
      // Our own socket so Nagle is off from the first byte: with it on, the small
      // handshake messages wait out delayed ACKs (~40 ms each). ssh2 waits for 'connect'.
      const socket = new Socket();
      socket.setNoDelay(true);
      socket.connect({ host: target.host, port: target.port ?? DEFAULT_PORT });
      config.sock = socket;
      config.host = target.host;
      config.port = target.port ?? DEFAULT_PORT;
    } else {
      const child = spawn(
        "ip",
        [
          "netns",
          "exec",
          target.namespace,
          "socat",
          "STDIO",
          `TCP:${target.address ?? "127.0.0.1"}:${target.port ?? DEFAULT_PORT},nodelay`,
        ],
        { stdio: ["pipe", "pipe", "pipe"] },
      );
      const started = { child, stderr: "", exited: new Promise<number | null>(() => {}) };
      started.exited = new Promise((resolve) => {
        child.on("close", (code) => resolve(code));
        child.on("error", (err) => {
          started.stderr += err.message;
          resolve(127);
        });
      });
      child.stderr!.on("data", (d: Buffer) => {
        started.stderr += d.toString();
      });
      proxy = started;
      config.sock = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
      client.on("close", () => child.kill());
    }

    return new Promise((resolve, reject) => {
      let ready = false;
      let failed = false;
      const fail = async (err: Error & { level?: string; code?: string }) => {
        if (ready || failed) return;
        failed = true;
        client.end();
        if (proxy) {
          // The proxy's stderr says why (e.g. "Cannot open network namespace"); wait for all of it.
          const code = await Promise.race([proxy.exited, pause(1000).then(() => undefined)]);
          proxy.child.kill();
          if (code !== 0 && proxy.stderr.trim()) {
            reject(
              new HostUnreachableError(
                this.name,
                `via namespace ${describeTarget(target)}: ${lastLine(proxy.stderr)}`,
                { cause: err },
              ),
            );
            return;
          }
        }
        reject(this.translateConnectError(err, hostKeyMismatch, timeoutMs));
      };
      client.on("ready", () => {
        ready = true;
        this.connectionsOpened++;
        resolve(client);
      });
      client.on("error", (err) => void fail(err));
      client.on("close", () => void fail(new Error("connection closed during handshake")));
      try {
        client.connect(config);
      } catch (error) {
        void fail(error as Error);
      }
    });
  }

  private translateConnectError(
    err: Error & { level?: string; code?: string },
    hostKeyMismatch: boolean,
    timeoutMs: number,
  ): RemoteError {
    const where = describeTarget(this.options.target);
    if (hostKeyMismatch) {
      return new AuthFailedError(this.name, `host key of ${where} does not match the pinned host key`, {
        cause: err,
      });
    }
    if (err.level === "client-authentication") {
      return new AuthFailedError(
        this.name,
        `${where} did not accept the key for user ${this.options.username ?? "root"}`,
        { cause: err },
      );
    }
    if (err.level === "client-timeout") {
      return new HostUnreachableError(this.name, `no SSH handshake from ${where} within ${timeoutMs} ms`, {
        cause: err,
      });
    }
    const detail = err.code ? `${err.code} connecting to ${where}` : `${where}: ${err.message}`;
    return new HostUnreachableError(this.name, detail, { cause: err });
  }
}

/**
 * Collects a channel's output and exit status; releases its slot when it closes. The
 * first stdout line is the remote process group (see execStream), not the command's.
 */
function watchProcess(
  command: string,
  channel: ClientChannel,
  options: StreamOptions,
  release: () => void,
  /** Absent for a raw shell: then there is no pid line and kill() uses an SSH signal request. */
  killGroup: ((group: number, signal: string) => Promise<void>) | undefined,
): RemoteProcess {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let code: number | null = null;
  let signal: string | null = null;
  let header: Buffer | undefined = killGroup ? Buffer.alloc(0) : undefined;
  let tellGroup: (group: number | undefined) => void = () => {};
  const processGroup = new Promise<number | undefined>((resolve) => {
    tellGroup = resolve;
  });
  const onOutput = (chunk: Buffer) => {
    if (options.collect) stdout.push(chunk);
    options.onStdout?.(chunk);
  };
  channel.on("data", (chunk: Buffer) => {
    if (header === undefined) return onOutput(chunk);
    header = Buffer.concat([header, chunk]);
    // Lines before the marker come from the login shell's rc files: they are output.
    for (;;) {
      const newline: number = header.indexOf(10);
      if (newline < 0) break;
      const text = header.subarray(0, newline).toString();
      if (text.startsWith(PGID_MARKER)) {
        const group = Number(text.slice(PGID_MARKER.length));
        tellGroup(Number.isInteger(group) && group > 1 ? group : undefined);
        const rest = header.subarray(newline + 1);
        header = undefined;
        if (rest.length) onOutput(rest);
        return;
      }
      onOutput(header.subarray(0, newline + 1));
      header = header.subarray(newline + 1);
    }
    if (header.length > 65536) {
      // No marker after this much output: not a POSIX shell after all; stop looking.
      tellGroup(undefined);
      onOutput(header);
      header = undefined;
    }
  });
  channel.stderr.on("data", (chunk: Buffer) => {
    if (options.collect) stderr.push(chunk);
    options.onStderr?.(chunk);
  });
  // A write after the remote end went away surfaces as a stream error; without a listener
  // it would crash the controller. The close event reports the end anyway.
  channel.on("error", () => {});
  channel.stderr.on("error", () => {});
  channel.on("exit", (exitCode: number | null, signalName?: string) => {
    if (typeof exitCode === "number") code = exitCode;
    else signal = signalName ?? null;
  });
  let closed = false;
  if (!killGroup) tellGroup(undefined);
  const done = new Promise<ExecResult>((resolve) => {
    channel.on("close", () => {
      closed = true;
      tellGroup(undefined);
      release();
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
      });
    });
  });
  return {
    command,
    channel,
    done,
    processGroup,
    write: (data) => !closed && channel.writable && channel.write(data),
    endInput: () => {
      channel.end();
    },
    kill: async (signalName = "KILL") => {
      const name = signalName.replace(/^SIG/, "");
      if (!killGroup) sendSignalRequest(channel, name);
      const group = closed ? undefined : await processGroup;
      if (group !== undefined && !closed && killGroup) {
        // Bounded: on a hung connection the kill never completes; close regardless.
        await Promise.race([killGroup(group, name).catch(() => undefined), pause(3000)]);
      }
      channel.close();
    },
  };
}

function describeTarget(target: RemoteTarget): string {
  if (target.kind === "tcp") return `${target.host}:${target.port ?? DEFAULT_PORT}`;
  return `${target.namespace}/${target.address ?? "127.0.0.1"}:${target.port ?? DEFAULT_PORT}`;
}

/**
 * An SSH "signal" channel request (RFC 4254 6.9). ssh2's Channel.signal() does nothing
 * once our side has ended stdin (it checks `writable`) although the protocol allows it
 * until the channel closes, so this goes to ssh2's protocol object when it can.
 */
function sendSignalRequest(channel: ClientChannel, name: string): void {
  const internal = channel as unknown as {
    outgoing?: { id: number; state: string };
    _client?: { _protocol?: { signal(id: number, name: string): void } };
  };
  try {
    const state = internal.outgoing?.state;
    const protocol = internal._client?._protocol;
    if (internal.outgoing && protocol && (state === "open" || state === "eof")) {
      protocol.signal(internal.outgoing.id, name);
    } else {
      channel.signal(name);
    }
  } catch {
    // channel or connection already gone: nothing to signal
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1] ?? "";
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
