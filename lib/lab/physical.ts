import {
  AuthFailedError,
  HostUnreachableError,
  RemoteCommandError,
  RemoteError,
  type RemoteHost,
} from "../remote/index.ts";
import type { ClockOffset } from "./state.ts";

/**
 * Physical labs (issue 14): what the controller checks on every host before a lab is
 * used, and the advice that goes with each failure.
 */

/** One host's failure, with what the user should do about it. */
export interface HostProblem {
  host: string;
  message: string;
  advice: string;
}

/** A lab whose hosts are not all usable; nothing may run on it. */
export class LabHostsError extends Error {
  constructor(
    readonly lab: string,
    readonly problems: readonly HostProblem[],
  ) {
    super(
      `lab ${lab}: ${problems.length} host(s) not usable; no suite was started:\n${problems
        .map((p) => `  ${p.host}: ${p.message}\n    what to do: ${p.advice}`)
        .join("\n")}`,
    );
    this.name = "LabHostsError";
  }
}

/** What to do about a remote error, by its kind. */
export function adviceFor(error: unknown, where: string): string {
  if (error instanceof AuthFailedError) {
    return /host key/.test(error.message)
      ? `the host at ${where} is not the one the inventory pins (hostKey); check the address, or update hostKey if the host was reinstalled`
      : `install the inventory key's public half (key + ".pub") in the user's authorized_keys on ${where}, or fix inventory key/user`;
  }
  if (error instanceof HostUnreachableError) {
    return /connection lost while|ECONNRESET|closed/i.test(error.message) &&
      !/before handshake/i.test(error.message)
      ? `the SSH session to ${where} dropped; check that sshd runs on the host and the management network, then run the case again`
      : `check that the host is powered, that sshd listens on ${where} and that the management network reaches it (inventory address/port)`;
  }
  if (error instanceof RemoteCommandError && error.code === 127)
    return "install the missing program on the host (see `tandem doctor --lab FILE`)";
  if (error instanceof RemoteCommandError && /No space left/i.test(error.stderr))
    return "free disk space on the host (its /var/lib/tandem and /tmp)";
  return "see the message; `tandem doctor --lab FILE` checks every host";
}

/** The error as a HostProblem (host from the remote error, else the given name). */
export function problemOf(host: string, error: unknown, where: string): HostProblem {
  const message = error instanceof Error ? error.message : String(error);
  return { host: error instanceof RemoteError ? error.host : host, message, advice: adviceFor(error, where) };
}

/**
 * Measures a host's clock offset to the controller: `date +%s%N` over the open SSH
 * connection, bracketed by the controller's clock; the round trip with the smallest
 * duration of five gives the offset (remote minus the midpoint) and its uncertainty
 * (half that round trip). Five samples are a measurement, not a retry.
 */
export async function measureClockOffset(remote: RemoteHost): Promise<ClockOffset> {
  await remote.execOrThrow(["true"], { timeoutMs: 15_000 }); // the connection is open before timing
  let best: { rtt: number; offset: number } | undefined;
  for (let i = 0; i < 5; i++) {
    const t0 = nowNs();
    const result = await remote.execOrThrow(["date", "+%s%N"], { timeoutMs: 10_000 });
    const t1 = nowNs();
    const remoteNs = BigInt(result.stdout.trim());
    const rtt = Number(t1 - t0) / 1e6;
    const offset = Number(remoteNs - (t0 + t1) / 2n) / 1e6;
    if (!best || rtt < best.rtt) best = { rtt, offset };
  }
  return {
    offsetMs: round3(best!.offset),
    uncertaintyMs: round3(best!.rtt / 2),
    measuredAt: new Date().toISOString(),
  };
}

/** The controller's wall clock in ns (Date.now has ms; hrtime is monotonic, so anchor it once). */
const anchor = { wallNs: BigInt(Date.now()) * 1_000_000n, hr: process.hrtime.bigint() };
function nowNs(): bigint {
  return anchor.wallNs + (process.hrtime.bigint() - anchor.hr);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
