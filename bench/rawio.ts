// `tandem bench rawio` (printRawIoBench prints the table, then the JSON line last): the VRLS
// agents' raw-socket path before and after the tandem-rawio addon, side by side in one run.
//
// - "python": the python3 helper process RawIo used until the addon (its source is kept
//   below, only here, for this comparison): the agent writes length-prefixed frames to the
//   helper's stdin and reads received packets from its stdout; the helper owns the sockets
//   and runs a select loop.
// - "addon": lib/roles/vrls/rawio.ts as the agents use it now (sockets in process).
//
// Two scratch namespaces A and B of a fresh run prefix joined by one veth pair (removed on
// exit, on failure and on Ctrl-C/SIGTERM). Two measurements per path:
// 1. Round trip of one 60-byte protocol-112 packet (IPv4 header + 40 bytes, TTL 255): this
//    process sends it from A, B's receive callback sends it straight back (source and
//    destination swapped), A's callback stops the clock. Every hop a VRRP/VRLS control
//    message takes (send from JS, kernel, receive into JS), twice. Blocks of iterations
//    alternate between the paths so that load on the shared machine hits both.
// 2. Floods of bad VRRP frames (valid IPv4, VRRPv3 to 224.0.0.18 with a wrong checksum: what
//    a broken or hostile LAN host sends) from a separate python3 AF_PACKET sender in A, as
//    fast as it goes and paced at fixed rates; B's callback validates each packet as the router agent does
//    (validateVrrpPacket). Counted: packets that reached JavaScript, the kernel's drop
//    counter of B's protocol-112 socket (read from /proc/net/raw in B, the "drops" column),
//    and what neither accounts for.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { registerLiveLab, unregisterLiveLab } from "../lib/lab/signals.ts";
import { teardownPrefix } from "../lib/lab/teardown.ts";
import { heldWithin } from "../lib/remote/wait.ts";
import { RawIo } from "../lib/roles/vrls/rawio.ts";
import { ETHERTYPE, encodeEthernet } from "../lib/wire/ethernet.ts";
import { encodeIpv4, IP_PROTOCOL } from "../lib/wire/ipv4.ts";
import { encodeVrrp, VRRP_MULTICAST } from "../lib/wire/vrrp.ts";
import { validateVrrpPacket } from "../lib/wire/vrrp-validate.ts";

export type RawIoPath = "python" | "addon";
const PATHS: RawIoPath[] = ["python", "addon"];

export interface LatencySummary {
  samples: number;
  /** Pings without an answer within 1 s. */
  lost: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
}

export interface FloodSummary {
  /** The sender's target rate (packets/s); null: as fast as it goes. */
  target_pps: number | null;
  /** The rate it reached. */
  sent_pps: number;
  sent: number;
  /** Packets that reached the receive callback. */
  received: number;
  /** B's protocol-112 socket drop counter (kernel: did not fit in the receive buffer). */
  kernel_drops: number;
  /** The addon's own stats().rxDrops (null for the helper, which has no such counter). */
  reported_drops: number | null;
  /** CPU time of this process plus the helper process (if any) during the flood. */
  cpu_ms: number;
  /** cpu_ms per packet that reached the callback, in microseconds. */
  cpu_us_per_packet: number;
  /** sent - received - kernel_drops. */
  unaccounted: number;
  /** Sender's send time. */
  send_ms: number;
  /** From the sender's start until the last packet reached the callback. */
  drain_ms: number;
}

export interface RawIoBenchResult {
  python_rtt_p50_ms: number;
  addon_rtt_p50_ms: number;
  python_rtt_p99_ms: number;
  addon_rtt_p99_ms: number;
  /** Received of the unpaced flood. */
  python_flood_received: number;
  addon_flood_received: number;
  rtt: Record<RawIoPath, LatencySummary>;
  /** One entry per flood rate, in the order of the options' floodRates. */
  flood: Record<RawIoPath, FloodSummary[]>;
  blocks: number;
  iterations_per_block: number;
  loadavg: [number, number];
}

export interface RawIoBenchOptions {
  /** Blocks per path (alternating), default 5. */
  blocks?: number;
  /** Timed round trips per block, default 400 (plus 20 untimed). */
  iterations?: number;
  /** Frames in each flood, default 110,000. */
  floodFrames?: number;
  /** Flood rates in packets/s (0: as fast as the sender goes), default 100k, 300k, unpaced. */
  floodRates?: number[];
  log?: (line: string) => void;
}

/** The python3 raw-socket helper of lib/roles/vrls/rawio.ts before the addon, verbatim. */
const HELPER = String.raw`
import os, sys, socket, struct, select, fcntl
iface = sys.argv[1]
listen = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else []
SO_BINDTODEVICE = 25
def ifindex(name):
    return socket.if_nametoindex(name)
def ifaddr(name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = struct.pack("256s", name.encode()[:15])
    return socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])
idx = ifindex(iface)
addr = ifaddr(iface)
tx_ip = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
tx_ip.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
tx_ip.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
tx_ip.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("4s4si", socket.inet_aton("0.0.0.0"), socket.inet_aton(addr), idx))
tx_ip.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
tx_l2 = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
tx_l2.bind((iface, 0))
rx = {}
if "vrrp" in listen:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4si", socket.inet_aton("224.0.0.18"), socket.inet_aton("0.0.0.0"), idx))
    rx[s.fileno()] = (s, 1)
if "icmp" in listen:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    rx[s.fileno()] = (s, 2)
out = sys.stdout.buffer
def emit(kind, data):
    out.write(struct.pack("!BI", kind, len(data)) + data)
    out.flush()
emit(0, (addr + " " + str(idx)).encode())
buf = b""
os.set_blocking(0, False)
while True:
    r, _, _ = select.select([0] + list(rx.keys()), [], [])
    for fd in r:
        if fd == 0:
            try:
                chunk = os.read(0, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                sys.exit(0)
            buf += chunk
            while len(buf) >= 5:
                kind, n = struct.unpack("!BI", buf[:5])
                if len(buf) < 5 + n:
                    break
                data = buf[5:5 + n]
                buf = buf[5 + n:]
                try:
                    if kind == 1:
                        tx_ip.sendto(data, (socket.inet_ntoa(data[16:20]), 0))
                    elif kind == 2:
                        tx_l2.send(data)
                except OSError as e:
                    sys.stderr.write("rawio send failed: %s\n" % e)
                    sys.stderr.flush()
        else:
            s, kind = rx[fd]
            while True:
                try:
                    data = s.recv(65535, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                emit(kind, data)
`;

/** The agent side of the helper (what RawIo.open/sendIp/close did), started in a namespace. */
class PythonHelper {
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  /** The helper's CPU time (user + system) in ms, from /proc (clock ticks of 10 ms). */
  async cpuMs(): Promise<number> {
    const stat = await readFile(`/proc/${this.child.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  }

  static open(netns: string, onVrrp: (p: Buffer) => void): Promise<PythonHelper> {
    const child = spawn(
      "ip",
      ["netns", "exec", netns, "/usr/bin/python3", "-u", "-c", HELPER, "eth0", "vrrp"],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    return new Promise((resolve, reject) => {
      let ready = false;
      let pending: Buffer = Buffer.alloc(0);
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      child.on("error", (e) => reject(e));
      child.on("exit", (code) => {
        if (!ready) reject(new Error(`python helper exited (${code}) in ${netns}: ${stderr.trim()}`));
      });
      child.stdout.on("data", (d: Buffer) => {
        pending = pending.length ? Buffer.concat([pending, d]) : d;
        while (pending.length >= 5) {
          const kind = pending[0];
          const n = pending.readUInt32BE(1);
          if (pending.length < 5 + n) break;
          const data = pending.subarray(5, 5 + n);
          pending = pending.subarray(5 + n);
          if (kind === 0 && !ready) {
            ready = true;
            resolve(new PythonHelper(child));
          } else if (kind === 1) onVrrp(Buffer.from(data));
        }
      });
    });
  }

  sendIp(packet: Uint8Array): void {
    const head = Buffer.alloc(5);
    head[0] = 1;
    head.writeUInt32BE(packet.length, 1);
    this.child.stdin.write(Buffer.concat([head, packet]));
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.stdin.end();
    this.child.kill("SIGTERM");
    await exited;
  }
}

interface Endpoint {
  sendIp(packet: Uint8Array): void;
  close(): void | Promise<void>;
  /** The addon's own drop counter; null for the helper. */
  reportedDrops(): number | null;
  /** CPU time of a helper process in ms (0 without one). */
  helperCpuMs(): Promise<number>;
}

async function openEndpoint(path: RawIoPath, netns: string, onVrrp: (p: Buffer) => void): Promise<Endpoint> {
  if (path === "python") {
    const h = await PythonHelper.open(netns, onVrrp);
    return {
      sendIp: (p) => h.sendIp(p),
      close: () => h.close(),
      reportedDrops: () => null,
      helperCpuMs: () => h.cpuMs(),
    };
  }
  const io = await RawIo.open({ interface: "eth0", listen: ["vrrp"], netns, onVrrp });
  return {
    sendIp: (p) => io.sendIp(p),
    close: () => io.close(),
    reportedDrops: () => io.stats().rxDrops,
    helperCpuMs: async () => 0,
  };
}

const A = "198.18.251.1";
const B = "198.18.251.2";

/** 60 bytes: IPv4 header (TTL 255, protocol 112) + 40 bytes whose first 4 are the sequence number. */
function ping(seq: number): Uint8Array {
  const payload = new Uint8Array(40);
  new DataView(payload.buffer).setUint32(0, seq);
  return encodeIpv4({
    src: A,
    dst: B,
    protocol: IP_PROTOCOL.vrrp,
    ttl: 255,
    identification: (seq % 0xfffe) + 1,
    payload,
  });
}

/** The same packet back: source and destination swapped (the header checksum is unchanged by the swap). */
function echo(packet: Buffer): Buffer {
  const out = Buffer.from(packet);
  packet.copy(out, 12, 16, 20);
  packet.copy(out, 16, 12, 16);
  return out;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

function summarize(values: readonly number[], lost: number): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    lost,
    p50_ms: round3(percentile(sorted, 50)),
    p90_ms: round3(percentile(sorted, 90)),
    p99_ms: round3(percentile(sorted, 99)),
    max_ms: round3(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

async function loadavg(): Promise<number> {
  return Number((await readFile("/proc/loadavg", "utf8")).split(" ")[0]);
}

/** One block of round trips through `path`; returns the RTTs in ms and the count of lost pings. */
async function latencyBlock(
  path: RawIoPath,
  nsA: string,
  nsB: string,
  iterations: number,
  warmup: number,
): Promise<{ rtts: number[]; lost: number }> {
  let waiting: { seq: number; resolve: () => void } | null = null;
  // B answers what A sent (source A); A's own answers (source B) never reach B's socket.
  const b: Endpoint = await openEndpoint(path, nsB, (p) => {
    if (p.length >= 24 && p[12] === 198 && p[15] === 1) b.sendIp(echo(p));
  });
  const a = await openEndpoint(path, nsA, (p) => {
    if (p.length < 24 || waiting === null) return;
    if (p.readUInt32BE(20) === waiting.seq) waiting.resolve();
  });
  const rtts: number[] = [];
  let lost = 0;
  try {
    for (let i = -warmup; i < iterations; i++) {
      const seq = (i + warmup + 1) >>> 0;
      const packet = ping(seq);
      let timer: NodeJS.Timeout | undefined;
      const answered = new Promise<boolean>((resolve) => {
        waiting = { seq, resolve: () => resolve(true) };
        timer = setTimeout(() => resolve(false), 1000);
      });
      const t0 = performance.now();
      a.sendIp(packet);
      const ok = await answered;
      const rtt = performance.now() - t0;
      clearTimeout(timer);
      waiting = null;
      if (i < 0) continue;
      if (ok) rtts.push(rtt);
      else lost++;
    }
  } finally {
    await a.close();
    await b.close();
  }
  return { rtts, lost };
}

/** A bad VRRPv3 advertisement frame (checksum off by one) to 224.0.0.18, from A's MAC. */
function badFrame(srcMac: string): Uint8Array {
  const vrrp = encodeVrrp(
    {
      version: 3,
      type: 1,
      vrid: 51,
      priority: 100,
      maxAdverIntCs: 100,
      addresses: ["198.18.251.10"],
      extension: new Uint8Array(0),
    },
    { src: A, dst: VRRP_MULTICAST },
  );
  vrrp[7] = (vrrp[7] ?? 0) ^ 0x01;
  const ip = encodeIpv4({ src: A, dst: VRRP_MULTICAST, protocol: IP_PROTOCOL.vrrp, ttl: 255, payload: vrrp });
  return encodeEthernet({ dst: "01:00:5e:00:00:12", src: srcMac, etherType: ETHERTYPE.ipv4, payload: ip });
}

const SENDER = `
import json, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
frame = bytes.fromhex(sys.argv[1])
n = int(sys.argv[2])
pps = float(sys.argv[3])
sent = 0
t = time.monotonic()
send = s.send
for i in range(n):
    if pps > 0 and i % 200 == 0:
        ahead = t + i / pps - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    try:
        send(frame)
        sent += 1
    except OSError:
        pass
print(json.dumps({"sent": sent, "seconds": time.monotonic() - t}))
`;

/** Drops of the protocol-112 raw sockets in a namespace (/proc/net/raw: local "port" 0070, last column). */
async function rawDrops(ns: string): Promise<number> {
  const text = (await run(["ip", "netns", "exec", ns, "cat", "/proc/net/raw"])).stdout;
  let drops = 0;
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13 || !f[1]?.endsWith(":0070")) continue;
    drops += Number(f[f.length - 1]);
  }
  return drops;
}

async function flood(
  path: RawIoPath,
  nsA: string,
  nsB: string,
  frames: number,
  pps: number,
): Promise<FloodSummary> {
  let received = 0;
  let lastAt = 0;
  const rejected: Record<string, number> = {};
  const b = await openEndpoint(path, nsB, (p) => {
    received++;
    lastAt = performance.now();
    const v = validateVrrpPacket(p, {
      version: 3,
      vrids: [51],
      acceptedTypes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    });
    if (!v.ok) rejected[v.reason] = (rejected[v.reason] ?? 0) + 1;
  });
  try {
    const mac = (
      JSON.parse((await run(["ip", "-n", nsA, "-j", "link", "show", "eth0"])).stdout)[0] as {
        address: string;
      }
    ).address;
    const frame = Buffer.from(badFrame(mac)).toString("hex");
    const helperCpu0 = await b.helperCpuMs();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const out = await run([
      "ip",
      "netns",
      "exec",
      nsA,
      "/usr/bin/python3",
      "-c",
      SENDER,
      frame,
      String(frames),
      String(pps),
    ]);
    const sender = JSON.parse(out.stdout.trim()) as { sent: number; seconds: number };
    // Quiet for 500 ms (or 30 s in all): the receiver has read everything it will read.
    let seen = -1;
    await heldWithin(
      () => {
        const quiet = seen === received;
        seen = received;
        return quiet;
      },
      { timeoutMs: 30_000, what: "the receiver to go quiet for 500 ms", everyMs: 500 },
    );
    const kernelDrops = await rawDrops(nsB);
    const reported = b.reportedDrops();
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000 + (await b.helperCpuMs()) - helperCpu0;
    if ((rejected["bad-checksum"] ?? 0) !== received)
      throw new Error(
        `bench rawio: flood packets were not all rejected as bad-checksum: ${JSON.stringify(rejected)}`,
      );
    return {
      target_pps: pps > 0 ? pps : null,
      sent_pps: Math.round(sender.sent / sender.seconds),
      sent: sender.sent,
      received,
      kernel_drops: kernelDrops,
      reported_drops: reported,
      unaccounted: sender.sent - received - kernelDrops,
      send_ms: Math.round(sender.seconds * 1000),
      drain_ms: Math.round(lastAt - t0),
      cpu_ms: Math.round(cpuMs),
      cpu_us_per_packet: Math.round((cpuMs * 1000 * 100) / Math.max(1, received)) / 100,
    };
  } finally {
    await b.close();
  }
}

export async function runRawIoBench(options: RawIoBenchOptions = {}): Promise<RawIoBenchResult> {
  const blocks = options.blocks ?? 5;
  const iterations = options.iterations ?? 400;
  const floodFrames = options.floodFrames ?? 110_000;
  const floodRates = options.floodRates ?? [100_000, 300_000, 0];
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (process.getuid?.() !== 0) throw new Error("bench rawio: needs root (it creates network namespaces)");

  const startLoad = await loadavg();
  const prefix = newRunPrefix();
  const nsA = namespaceName(prefix, "rawbencha");
  const nsB = namespaceName(prefix, "rawbenchb");
  registerLiveLab(prefix, () => teardownPrefix(prefix));
  try {
    await run(["ip", "netns", "add", nsA]);
    await run(["ip", "netns", "add", nsB]);
    await run(["ip", "-n", nsA, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", nsB]);
    for (const [ns, addr] of [
      [nsA, A],
      [nsB, B],
    ] as const) {
      await run(["ip", "-n", ns, "addr", "add", `${addr}/24`, "dev", "eth0"]);
      await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
      await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    }
    log(`bench rawio: namespaces ${nsA} ${nsB}; ${blocks} blocks x ${iterations} round trips per path`);
    const rtts: Record<RawIoPath, number[]> = { python: [], addon: [] };
    const lost: Record<RawIoPath, number> = { python: 0, addon: 0 };
    for (let block = 0; block < blocks; block++) {
      const order = block % 2 === 0 ? PATHS : [...PATHS].reverse();
      for (const path of order) {
        const r = await latencyBlock(path, nsA, nsB, iterations, 20);
        rtts[path].push(...r.rtts);
        lost[path] += r.lost;
      }
      log(`bench rawio: block ${block + 1}/${blocks}`);
    }
    const floods: Record<RawIoPath, FloodSummary[]> = { python: [], addon: [] };
    for (const pps of floodRates) {
      for (const path of PATHS) {
        const rate = pps > 0 ? `${pps} pps` : "full speed";
        log(`bench rawio: flood of ${floodFrames} bad VRRP frames at ${rate} through ${path}`);
        floods[path].push(await flood(path, nsA, nsB, floodFrames, pps));
      }
    }
    const unpaced = (path: RawIoPath) => floods[path][floods[path].length - 1]?.received ?? Number.NaN;
    const rtt = { python: summarize(rtts.python, lost.python), addon: summarize(rtts.addon, lost.addon) };
    return {
      python_rtt_p50_ms: rtt.python.p50_ms,
      addon_rtt_p50_ms: rtt.addon.p50_ms,
      python_rtt_p99_ms: rtt.python.p99_ms,
      addon_rtt_p99_ms: rtt.addon.p99_ms,
      python_flood_received: unpaced("python"),
      addon_flood_received: unpaced("addon"),
      rtt,
      flood: floods,
      blocks,
      iterations_per_block: iterations,
      loadavg: [startLoad, await loadavg()],
    };
  } finally {
    await teardownPrefix(prefix);
    unregisterLiveLab(prefix);
  }
}

export function printRawIoBench(result: RawIoBenchResult): void {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const table = (header: string[], rows: string[][]) => {
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
    const line = (cells: string[]) =>
      cells
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
        .join("  ");
    out(line(header));
    for (const r of rows) out(line(r));
  };
  const name: Record<RawIoPath, string> = { python: "python3 helper (pipes)", addon: "tandem-rawio addon" };
  out("round trip of one 60-byte protocol-112 packet, namespace A -> B -> A");
  table(
    ["path", "n", "lost", "p50 ms", "p90 ms", "p99 ms", "max ms"],
    PATHS.map((p) => {
      const s = result.rtt[p];
      return [
        name[p],
        String(s.samples),
        String(s.lost),
        ...[s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms].map(fmt),
      ];
    }),
  );
  out("");
  out("floods of bad VRRP frames (wrong checksum) from a python3 AF_PACKET sender in A");
  const floodRows: string[][] = [];
  for (let i = 0; i < result.flood.python.length; i++) {
    for (const p of PATHS) {
      const f = result.flood[p][i];
      if (!f) continue;
      floodRows.push([
        name[p],
        f.target_pps === null ? "full speed" : String(f.target_pps),
        String(f.sent_pps),
        String(f.sent),
        String(f.received),
        String(f.kernel_drops),
        f.reported_drops === null ? "-" : String(f.reported_drops),
        String(f.unaccounted),
        String(f.drain_ms),
        String(f.cpu_ms),
        f.cpu_us_per_packet.toFixed(2),
      ]);
    }
  }
  table(
    [
      "path",
      "target pps",
      "sent pps",
      "sent",
      "to JS",
      "kernel drops",
      "addon rxDrops",
      "unaccounted",
      "drain ms",
      "CPU ms",
      "CPU us/pkt",
    ],
    floodRows,
  );
  out(`load average ${result.loadavg[0]} -> ${result.loadavg[1]}`);
  out(JSON.stringify(result));
}

function fmt(ms: number): string {
  return ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

// Runnable directly: `node --experimental-strip-types bench/rawio.ts` (Node >= 22.6) or through `tandem bench rawio`.
if (import.meta.url === `file://${process.argv[1]}`) {
  printRawIoBench(await runRawIoBench());
}
