import { createReadStream } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { RemoteHost } from "../remote/index.ts";
import { PcapReader } from "./pcap-reader.ts";
import { type GracefulProcess, startGraceful, type TrafficHost } from "./remote-process.ts";

/**
 * Packet capture on any interface of any lab host: `tcpdump -w` started over SSH,
 * stopped with SIGINT (so it writes its statistics), then read back. tcpdump rather than
 * tshark: measured here, `tcpdump -w` keeps up with ~300k pps without drops while tshark
 * drops without a larger -B.
 */
export interface CaptureOptions {
  interface: string;
  /** pcap-filter expression, e.g. "udp dst port 5000". */
  filter?: string;
  /** Snap length; the stream header ends at byte 62 of an untagged frame. Default 96. */
  snapLength?: number;
  /** Kernel buffer in KiB (tcpdump -B). Default 65536. */
  bufferKiB?: number;
  /** Where the host writes the file; default /tmp/tandem-capture-<random>.pcap. */
  path?: string;
}

/**
 * What tcpdump said about its capture when it stopped (its closing statistics on stderr,
 * printed on SIGINT/SIGTERM), and which capture it was. A count is null when tcpdump did
 * not print it (killed, crashed, never started): then nobody knows whether the file is
 * complete. tcpdump prints "dropped by interface" only when that count is non-zero, so it
 * is 0 whenever the kernel line is there without it.
 */
export interface CaptureStats {
  host: string;
  interface: string;
  filter: string | undefined;
  path: string;
  captured: number | null;
  receivedByFilter: number | null;
  droppedByKernel: number | null;
  droppedByInterface: number | null;
  /** Why the statistics are missing (stop failed, tcpdump's last words), when they are. */
  error?: string;
}

export type TcpdumpCounts = Pick<
  CaptureStats,
  "captured" | "receivedByFilter" | "droppedByKernel" | "droppedByInterface"
>;

/** A host that does not share the controller's files: its captures are fetched over SFTP. */
function remoteFiles(host: TrafficHost): (TrafficHost & Pick<RemoteHost, "download">) | undefined {
  const h = host as Partial<RemoteHost>;
  return h.preparedDir !== undefined && typeof h.download === "function"
    ? (host as TrafficHost & Pick<RemoteHost, "download">)
    : undefined;
}

export class Capture {
  private stopping: Promise<CaptureStats> | undefined;
  /**
   * Where the controller reads the capture (after stop()). On a host sharing the
   * controller's files it is `remotePath`; on a physical host, a local copy fetched over
   * SFTP when the capture stops.
   */
  readonly path: string;

  private constructor(
    readonly host: TrafficHost,
    /** The capture file on its host. */
    readonly remotePath: string,
    readonly options: CaptureOptions,
    private readonly process: GracefulProcess,
  ) {
    this.path = remoteFiles(host)
      ? join(tmpdir(), `tandem-fetched-${basename(remotePath, ".pcap")}.pcap`)
      : remotePath;
  }

  /** tcpdump's pid on its host. */
  get pid(): number {
    return this.process.pid;
  }

  static async start(host: TrafficHost, options: CaptureOptions): Promise<Capture> {
    const path =
      options.path ?? `/tmp/tandem-capture-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.pcap`;
    const argv = [
      "tcpdump",
      "-i",
      options.interface,
      "-w",
      path,
      "-s",
      String(options.snapLength ?? 96),
      "-U",
      "--immediate-mode",
      "-B",
      String(options.bufferKiB ?? 65_536),
      "-nn",
      ...(options.filter ? [options.filter] : []),
    ];
    let ready: () => void = () => {};
    const listening = new Promise<void>((resolve) => {
      ready = resolve;
    });
    let log = "";
    const process = await startGraceful(host, argv, {
      collect: true,
      onStderr: (chunk) => {
        log += chunk.toString();
        if (log.includes("listening on")) ready();
      },
    });
    // tcpdump prints "listening on IF" once the socket is attached: only then is the capture live.
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${host.name}: tcpdump did not start: ${log.trim()}`)), 10_000),
    );
    await Promise.race([listening, timeout, process.done.then(() => Promise.reject(new Error(log)))]);
    return new Capture(host, path, options, process);
  }

  /**
   * Stops tcpdump with SIGINT and returns its closing statistics ("N packets dropped by
   * kernel", ...), read from its stderr over the SSH channel. Never rejects: a capture
   * whose statistics cannot be read comes back with null counts and the reason. Later
   * calls return the same result (a `finally` may stop a capture that already stopped).
   */
  stop(): Promise<CaptureStats> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<CaptureStats> {
    const which = {
      host: this.host.name,
      interface: this.options.interface,
      filter: this.options.filter,
      path: this.remotePath,
    };
    try {
      const result = await this.process.stop("INT");
      const remote = remoteFiles(this.host);
      if (remote) await remote.download(this.remotePath, this.path);
      const counts = parseTcpdumpStats(result.stderr);
      if (counts.droppedByKernel !== null) return { ...which, ...counts };
      const last = result.stderr
        .replace(/^tandem-pid \d+\n/, "")
        .trim()
        .split("\n")
        .slice(-3)
        .join(" | ");
      return {
        ...which,
        ...counts,
        error: `tcpdump printed no closing statistics (exit ${result.code ?? result.signal}${last ? `: ${last}` : ""})`,
      };
    } catch (error) {
      return {
        ...which,
        captured: null,
        receivedByFilter: null,
        droppedByKernel: null,
        droppedByInterface: null,
        error: `stopping tcpdump failed: ${(error as Error).message}`,
      };
    }
  }

  /** Opens the capture for streaming (after stop(), which fetches it from a physical host). */
  reader(): PcapReader {
    return new PcapReader(createReadStream(this.path, { highWaterMark: 1 << 20 }));
  }

  async bytes(): Promise<Buffer> {
    return readFile(this.path);
  }

  async remove(): Promise<void> {
    await this.host.exec(["rm", "-f", this.remotePath]);
    if (this.path !== this.remotePath) await rm(this.path, { force: true });
  }
}

/**
 * tcpdump's closing statistics, as it prints them on stderr when it stops:
 *   "N packets captured", "N packets received by filter", "N packets dropped by kernel",
 *   and, only when non-zero, "N packets dropped by interface" (on the kernel line after a
 *   comma, or on its own line with -v).
 */
export function parseTcpdumpStats(stderr: string): TcpdumpCounts {
  // The last report counts (a SIGUSR1 may have printed earlier ones).
  const number = (pattern: RegExp): number | null => {
    const m = [...stderr.matchAll(pattern)].at(-1);
    return m ? Number(m[1]) : null;
  };
  const droppedByKernel = number(/(\d+) packets? dropped by kernel/g);
  return {
    captured: number(/(\d+) packets? captured/g),
    receivedByFilter: number(/(\d+) packets? received by filter/g),
    droppedByKernel,
    droppedByInterface:
      number(/(\d+) packets? dropped by interface/g) ?? (droppedByKernel === null ? null : 0),
  };
}

/**
 * Why a capture cannot serve as complete evidence, or undefined when it can: tcpdump
 * dropped packets (kernel or interface), or its counts could not be read. Packets the
 * kernel received but tcpdump had not read when it stopped (received by filter > captured
 * + dropped) do not count: the ring is read in order, so those came after the last packet
 * in the file, past the end of the capture (seen when a capture stops under load).
 */
export function captureIncompleteness(s: CaptureStats): string | undefined {
  const which = `capture on ${s.host}:${s.interface}${s.filter ? ` (${s.filter})` : ""}, ${s.path}`;
  if (s.droppedByKernel === null || s.droppedByInterface === null)
    return `${which}: drop counts could not be read${s.error ? ` - ${s.error}` : ""}`;
  const dropped = s.droppedByKernel + s.droppedByInterface;
  if (dropped === 0) return undefined;
  return `${which}: tcpdump dropped ${dropped} packets (${s.droppedByKernel} dropped by kernel, ${s.droppedByInterface} dropped by interface; ${s.captured} captured of ${s.receivedByFilter} received by filter)`;
}
