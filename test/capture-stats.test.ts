import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Capture, captureIncompleteness, parseTcpdumpStats } from "../lib/traffic/capture.ts";
import { PcapReader } from "../lib/traffic/pcap-reader.ts";
import { type L2Path, sendUdpStream } from "../lib/traffic/udp.ts";
import { InconclusiveError, requireCompleteCaptures } from "../suites/support/evidence.ts";
import { namespaceWithSshd, type TestNamespace } from "./remote-fixture.ts";

// tcpdump's closing statistics ("N packets dropped by kernel"), from a real tcpdump in a
// scratch namespace: stopped with SIGINT directly, and as a Capture started over SSH on a
// lab host. Drops are real: a 4 KiB kernel buffer (-B 4) and a burst of 200,000 datagrams
// on the namespace's loopback (native pktgen, as fast as it goes).
const LO: L2Path = {
  device: "lo",
  srcMac: "00:00:00:00:00:00",
  srcIp: "127.0.0.1",
  nextHopMac: "00:00:00:00:00:00",
};

let ns: TestNamespace;
let dir: string;

beforeAll(async () => {
  ns = await namespaceWithSshd("cap");
  dir = await mkdtemp(join(tmpdir(), "tandem-capture-stats-"));
}, 60_000);

afterAll(async () => {
  await ns?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function send(count: number, pps: number, port = 9) {
  return sendUdpStream(ns.host(), { streamId: 77, dstIp: "127.0.0.1", dstPort: port, pps, count }, LO);
}

async function records(path: string): Promise<number> {
  let n = 0;
  for await (const _ of PcapReader.fromFile(path)) n++;
  return n;
}

/** tcpdump run directly in the namespace; resolves with its stderr once SIGINT stopped it. */
async function tcpdumpDirect(
  bufferKiB: number,
  path: string,
  during: () => Promise<unknown>,
): Promise<string> {
  const args = ["netns", "exec", ns.namespace, "tcpdump", "-i", "lo", "-w", path, "-s", "96", "-U"];
  const child = spawn("ip", [...args, "--immediate-mode", "-B", String(bufferKiB), "-nn", "udp dst port 9"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  const listening = new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes("listening on")) resolve();
    });
    child.on("exit", () => reject(new Error(`tcpdump exited: ${stderr}`)));
  });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  await listening;
  await during();
  await new Promise((r) => setTimeout(r, 300));
  child.kill("SIGINT");
  await exited;
  return stderr;
}

describe("tcpdump's closing statistics", () => {
  it("are parsed from what a real tcpdump prints when SIGINT stops it", async () => {
    const quiet = join(dir, "quiet.pcap");
    const stderr = await tcpdumpDirect(65_536, quiet, () => send(1000, 20_000));
    expect(stderr).toMatch(/^1000 packets captured$/m);
    expect(stderr).toMatch(/^0 packets dropped by kernel$/m);
    expect(parseTcpdumpStats(stderr)).toEqual({
      captured: 1000,
      receivedByFilter: 1000,
      droppedByKernel: 0,
      droppedByInterface: 0,
    });
    expect(await records(quiet)).toBe(1000);

    const dropping = join(dir, "dropping.pcap");
    const burst = await tcpdumpDirect(4, dropping, () => send(200_000, 0));
    const counts = parseTcpdumpStats(burst);
    expect(counts.droppedByKernel, burst).toBeGreaterThan(0);
    expect(burst).toContain(`${counts.droppedByKernel} packets dropped by kernel`);
    expect(counts.receivedByFilter).toBe(200_000);
    expect(counts.captured! + counts.droppedByKernel!).toBe(200_000);
    expect(await records(dropping)).toBe(counts.captured);
  }, 60_000);

  it("also in the forms this kernel did not produce (tcpdump.c info(): SIGUSR1 line, interface drops)", () => {
    expect(
      parseTcpdumpStats(
        "tcpdump: 5 packets captured, 9 packets received by filter, 4 packets dropped by kernel, 1 packet dropped by interface\n",
      ),
    ).toEqual({ captured: 5, receivedByFilter: 9, droppedByKernel: 4, droppedByInterface: 1 });
    expect(
      parseTcpdumpStats(
        "1 packet captured\n1 packet received by filter\n0 packets dropped by kernel\n2 packets dropped by interface\n",
      ),
    ).toEqual({ captured: 1, receivedByFilter: 1, droppedByKernel: 0, droppedByInterface: 2 });
    // Stopped under load: the kernel had queued packets tcpdump had not read yet. Those came
    // after the last packet in the file (seen on natlb's server-side capture: 16193 captured
    // of 16213 received, none dropped); the file is complete up to its end.
    const underLoad = { host: "s5a", interface: "eth0", filter: "tcp port 8080", path: "/tmp/x.pcap" };
    expect(
      captureIncompleteness({
        ...underLoad,
        ...parseTcpdumpStats(
          "16193 packets captured\n16213 packets received by filter\n0 packets dropped by kernel\n",
        ),
      }),
    ).toBeUndefined();
    // Cut off before the statistics (killed): nothing known.
    expect(
      parseTcpdumpStats("tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 96 bytes\n"),
    ).toEqual({
      captured: null,
      receivedByFilter: null,
      droppedByKernel: null,
      droppedByInterface: null,
    });
  });

  it("come back from a Capture started over SSH on a lab host, and say when it dropped", async () => {
    const complete = await Capture.start(ns.host(), {
      interface: "lo",
      filter: "udp dst port 9",
      path: join(dir, "ssh-quiet.pcap"),
    });
    await send(2000, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    const stats = await complete.stop();
    expect(stats).toEqual({
      host: "cap",
      interface: "lo",
      filter: "udp dst port 9",
      path: join(dir, "ssh-quiet.pcap"),
      captured: 2000,
      receivedByFilter: 2000,
      droppedByKernel: 0,
      droppedByInterface: 0,
    });
    expect(await complete.stop(), "a second stop returns the same statistics").toBe(stats);
    expect(captureIncompleteness(stats)).toBeUndefined();
    expect(() => requireCompleteCaptures([stats])).not.toThrow();

    const small = await Capture.start(ns.host(), {
      interface: "lo",
      filter: "udp dst port 9",
      bufferKiB: 4,
      path: join(dir, "ssh-dropping.pcap"),
    });
    await send(200_000, 0);
    await new Promise((r) => setTimeout(r, 300));
    const dropped = await small.stop();
    expect(dropped.droppedByKernel).toBeGreaterThan(0);
    expect(dropped.captured! + dropped.droppedByKernel!).toBe(dropped.receivedByFilter);
    expect(await records(dropped.path)).toBe(dropped.captured);
    const why = captureIncompleteness(dropped);
    expect(why).toContain(`capture on cap:lo (udp dst port 9), ${dropped.path}`);
    expect(why).toContain(`tcpdump dropped ${dropped.droppedByKernel} packets`);
    expect(why).toContain(`${dropped.droppedByKernel} dropped by kernel, 0 dropped by interface`);
    let thrown: unknown;
    try {
      requireCompleteCaptures([stats, dropped]);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(InconclusiveError);
    expect((thrown as Error).message).toMatch(
      /^inconclusive: incomplete evidence, no verdict - capture on cap:lo/,
    );
    expect((thrown as InconclusiveError).evidence).toEqual([stats, dropped]);
  }, 60_000);

  it("a capture whose tcpdump died without its statistics counts as incomplete", async () => {
    const capture = await Capture.start(ns.host(), { interface: "lo", path: join(dir, "killed.pcap") });
    await ns.host().exec(["kill", "-KILL", String(capture.pid)]);
    const stats = await capture.stop();
    expect(stats).toMatchObject({ droppedByKernel: null, droppedByInterface: null });
    expect(stats.error).toMatch(/tcpdump printed no closing statistics/);
    expect(captureIncompleteness(stats)).toMatch(
      /^capture on cap:lo, .*killed\.pcap: drop counts could not be read - tcpdump printed no closing statistics/,
    );
    expect(() => requireCompleteCaptures([stats])).toThrow(InconclusiveError);
  }, 30_000);
});
