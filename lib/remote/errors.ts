/** Errors of the remote layer; each names the host (its lab name or address) and what happened. */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly host: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RemoteError";
  }
}

/** The host could not be reached: connection refused, timeout, namespace missing, dropped connection. */
export class HostUnreachableError extends RemoteError {
  constructor(host: string, detail: string, options?: { cause?: unknown }) {
    super(`host ${host} unreachable: ${detail}`, host, options);
    this.name = "HostUnreachableError";
  }
}

/** The host answered but refused our key (or its host key did not match the pinned one). */
export class AuthFailedError extends RemoteError {
  constructor(host: string, detail: string, options?: { cause?: unknown }) {
    super(`authentication to ${host} failed: ${detail}`, host, options);
    this.name = "AuthFailedError";
  }
}

/** A command exited non-zero (or by a signal), on any CommandHost (lib/remote/command.ts). */
export class CommandError extends RemoteError {
  constructor(
    host: string,
    readonly command: string,
    readonly code: number | null,
    readonly signal: string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    const how = code !== null ? `exit code ${code}` : `signal ${signal ?? "unknown"}`;
    const tail = stderr.trim().split("\n").slice(-10).join("\n");
    super(`command on ${host} failed (${how}): ${command}${tail ? `\n${tail}` : ""}`, host);
    this.name = "CommandError";
  }
}

/** The same error from an SSH host (kept as its own name for callers that test for it). */
export class RemoteCommandError extends CommandError {
  constructor(
    host: string,
    command: string,
    code: number | null,
    signal: string | null,
    stdout: string,
    stderr: string,
  ) {
    super(host, command, code, signal, stdout, stderr);
    this.name = "RemoteCommandError";
  }
}

/** A command ran longer than its timeout; it was killed. */
export class CommandTimeoutError extends RemoteError {
  constructor(
    host: string,
    readonly command: string,
    readonly timeoutMs: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`command on ${host} timed out after ${timeoutMs} ms (killed): ${command}`, host);
    this.name = "CommandTimeoutError";
  }
}

/** An SSH command ran longer than its timeout; it was killed. */
export class RemoteTimeoutError extends CommandTimeoutError {
  constructor(host: string, command: string, timeoutMs: number, stdout: string, stderr: string) {
    super(host, command, timeoutMs, stdout, stderr);
    this.name = "RemoteTimeoutError";
  }
}
