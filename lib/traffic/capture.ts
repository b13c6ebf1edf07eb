import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
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

export interface CaptureStats {
  captured: number | null;
  receivedByFilter: number | null;
  droppedByKernel: number | null;
}

export class Capture {
  private constructor(
    readonly host: TrafficHost,
    readonly path: string,
    private readonly process: GracefulProcess,
  ) {}

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
    return new Capture(host, path, process);
  }

  /** Stops tcpdump and returns its counters (from "N packets dropped by kernel"). */
  async stop(): Promise<CaptureStats> {
    const result = await this.process.stop("INT");
    return parseTcpdumpStats(result.stderr);
  }

  /**
   * Opens the capture for streaming. On a virtual lab the host shares this filesystem;
   * a physical host would need an SFTP download first (not done yet).
   */
  reader(): PcapReader {
    return new PcapReader(createReadStream(this.path, { highWaterMark: 1 << 20 }));
  }

  async bytes(): Promise<Buffer> {
    return readFile(this.path);
  }

  async remove(): Promise<void> {
    await this.host.exec(["rm", "-f", this.path]);
  }
}

export function parseTcpdumpStats(stderr: string): CaptureStats {
  const number = (pattern: RegExp): number | null => {
    const m = pattern.exec(stderr);
    return m ? Number(m[1]) : null;
  };
  return {
    captured: number(/(\d+) packets? captured/),
    receivedByFilter: number(/(\d+) packets? received by filter/),
    droppedByKernel: number(/(\d+) packets? dropped by kernel/),
  };
}
