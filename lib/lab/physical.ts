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
      `lab ${lab}: ${new Set(problems.map((p) => p.host)).size} host(s) not usable; no suite was started:\n${problems
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
 * Measures a host's clock offset to the controller. A small node program on the host
 * answers each line on its stdin with its wall clock (µs resolution) over one open SSH
 * channel, so a sample costs one channel round trip and no process start; the sample
 * with the smallest round trip of 20 gives the offset (remote minus the midpoint of the
 * controller's clock around it) and its uncertainty (half that round trip). Samples are a
 * measurement, not a retry. Hosts are measured one after the other (lib/lab/lab.ts), so
 * their round trips do not queue behind each other.
 */
export async function measureClockOffset(remote: RemoteHost): Promise<ClockOffset> {
  const samples = 20;
  const replies: string[] = [];
  let waiting: ((line: string) => void) | undefined;
  let buffer = "";
  const proc = await remote.execStream(
    [
      "node",
      "-e",
      'process.stdin.on("data",()=>process.stdout.write((performance.timeOrigin+performance.now()).toFixed(3)+"\\n"));process.stdout.write("ready\\n")',
    ],
    {
      onStdout: (chunk) => {
        buffer += chunk.toString();
        for (let i = buffer.indexOf("\n"); i >= 0; i = buffer.indexOf("\n")) {
          const line = buffer.slice(0, i);
          buffer = buffer.slice(i + 1);
          if (waiting) {
            const w = waiting;
            waiting = undefined;
            w(line);
          } else replies.push(line);
        }
      },
    },
  );
  const next = (what: string) =>
    new Promise<string>((resolve, reject) => {
      const queued = replies.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(
        () => reject(new Error(`${remote.name}: no ${what} from the clock probe within 15 s`)),
        15_000,
      );
      waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      void proc.done.then((r) => {
        clearTimeout(timer);
        reject(
          new RemoteCommandError(remote.name, "node -e <clock probe>", r.code, r.signal, r.stdout, r.stderr),
        );
      });
    });
  try {
    await next("start");
    let best: { rtt: number; offset: number } | undefined;
    for (let i = 0; i < samples; i++) {
      const t0 = nowNs();
      proc.write("t\n");
      const line = await next("answer");
      const t1 = nowNs();
      const remoteNs = BigInt(Math.round(Number(line) * 1000)) * 1000n;
      const rtt = Number(t1 - t0) / 1e6;
      const offset = Number(remoteNs - (t0 + t1) / 2n) / 1e6;
      if (!best || rtt < best.rtt) best = { rtt, offset };
    }
    return {
      offsetMs: round3(best!.offset),
      uncertaintyMs: round3(best!.rtt / 2),
      measuredAt: new Date().toISOString(),
    };
  } finally {
    proc.endInput();
    await proc.kill("TERM").catch(() => undefined);
  }
}

/**
 * The offset the analysis applies: the measured one when it exceeds its uncertainty, else
 * 0 (an offset smaller than the measurement's own error is indistinguishable from none, and
 * applying it would only add that error to every cross-host time).
 */
export function significantOffsetMs(clock: ClockOffset | undefined): number {
  return clock && Math.abs(clock.offsetMs) > clock.uncertaintyMs ? clock.offsetMs : 0;
}

/** The controller's wall clock in ns (Date.now has ms; hrtime is monotonic, so anchor it once). */
const anchor = { wallNs: BigInt(Date.now()) * 1_000_000n, hr: process.hrtime.bigint() };
function nowNs(): bigint {
  return anchor.wallNs + (process.hrtime.bigint() - anchor.hr);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** One clock a cross-host timing verdict reads: a lab host, and whether its timestamps were moved by {@link significantOffsetMs}. */
export interface ClockSide {
  host: string;
  /** true: the analysis applied significantOffsetMs to this host's timestamps. */
  corrected: boolean;
}

/**
 * The most a difference of timestamps taken on `sides` (each against the controller's
 * clock) can be off because of the clocks: per host, what the correction left of the
 * measured offset (all of it when uncorrected) plus the measurement's uncertainty. A
 * host with no measurement (virtual lab: the controller's clock) adds nothing.
 */
export function clockErrorMs(
  clocks: Readonly<Record<string, ClockOffset>> | undefined,
  sides: readonly ClockSide[],
): number {
  let error = 0;
  for (const s of sides) {
    const c = clocks?.[s.host];
    if (!c) continue;
    const applied = s.corrected ? significantOffsetMs(c) : 0;
    error += Math.abs(c.offsetMs - applied) + c.uncertaintyMs;
  }
  return Math.round(error * 1000) / 1000;
}

/**
 * Whether the clocks can decide a timing verdict `measuredMs` against `boundMs` (either
 * side: at most, at least): only when the measurement is farther from the bound than the
 * clock error could move it. Returns the reason when they cannot (the case is then
 * inconclusive, never passed or failed on a guess).
 */
export function unsafeTimingVerdict(
  clocks: Readonly<Record<string, ClockOffset>> | undefined,
  verdict: { what: string; measuredMs: number; boundMs: number; sides: readonly ClockSide[] },
): string | undefined {
  const error = clockErrorMs(clocks, verdict.sides);
  const margin = Math.abs(verdict.measuredMs - verdict.boundMs);
  if (error === 0 || error < margin) return undefined;
  const per = describeOffsets(clocks, verdict.sides);
  return `${verdict.what}: measured ${verdict.measuredMs} ms against a bound of ${verdict.boundMs} ms across host clocks; the clock offsets (${per}) make it uncertain by up to ${error} ms, more than the ${Math.round(margin * 1000) / 1000} ms between measurement and bound, so no verdict`;
}

/** The clocks of a comparison as "host offset ± uncertainty", for a reason text. */
function describeOffsets(
  clocks: Readonly<Record<string, ClockOffset>> | undefined,
  sides: readonly ClockSide[],
): string {
  return sides
    .filter((s) => clocks?.[s.host])
    .map((s) => {
      const c = clocks![s.host]!;
      return `${s.host} ${c.offsetMs} ms ± ${c.uncertaintyMs} ms${s.corrected ? "" : " (uncorrected)"}`;
    })
    .join(", ");
}

/** Events of one clock counted between edges read on other clocks (see unsafeWindowVerdict). */
export interface WindowVerdict {
  what: string;
  eventsMs: readonly number[];
  fromMs?: number;
  toMs?: number;
  sides: readonly ClockSide[];
}

/**
 * The window form of {@link unsafeTimingVerdict}: a case that counts events of one clock
 * (a capture) between edges read on other clocks (the controller's marks, another host's)
 * is decided only when no event lies within the clock error of an edge it is compared
 * with: such an event could be inside or outside on the true time line, so the count could
 * differ. `sides` are all the clocks involved (the events' host and the edges'). Returns the
 * reason when the clocks cannot decide it.
 */
export function unsafeWindowVerdict(
  clocks: Readonly<Record<string, ClockOffset>> | undefined,
  verdict: WindowVerdict,
): string | undefined {
  const error = clockErrorMs(clocks, verdict.sides);
  if (error === 0) return undefined;
  const edges = [
    ...(verdict.fromMs === undefined ? [] : [{ name: "start", at: verdict.fromMs }]),
    ...(verdict.toMs === undefined ? [] : [{ name: "end", at: verdict.toMs }]),
  ];
  let nearest: { edge: string; distance: number } | undefined;
  for (const t of verdict.eventsMs)
    for (const e of edges) {
      const distance = Math.abs(t - e.at);
      if (distance <= error && (!nearest || distance < nearest.distance))
        nearest = { edge: e.name, distance };
    }
  if (!nearest) return undefined;
  const per = describeOffsets(clocks, verdict.sides);
  return `${verdict.what}: an event ${round3(nearest.distance)} ms from the window's ${nearest.edge} across host clocks; the clock offsets (${per}) make it uncertain by up to ${error} ms, so whether it falls inside is unknown and no verdict`;
}
