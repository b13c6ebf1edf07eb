// The forwarding lab the data-plane tests and bench/holdqueue.ts share: sender -> forwarder
// -> receiver, a virtual lab (upLab) with its own run prefix; teardown (lab.down) removes
// exactly that run's objects. It lives in lib/ so a bench never imports test code (issue 12).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { CommandHost } from "../remote/command.ts";
import { waitUntil } from "../remote/wait.ts";
import { parseTopologyText } from "../topology/load.ts";
import { run } from "./command.ts";
import { type Lab, upLab } from "./lab.ts";

export const SOURCE_A = "198.18.1.10";
export const SOURCE_B = "198.18.1.11";
export const RECEIVER = "198.18.2.10";
export const UDP_PORT = 5000;

export interface Datagram {
  src: string;
  tag: string;
  seq: number;
}

export interface ForwardingLab {
  prefix: string;
  sender: string;
  forwarder: string;
  receiver: string;
  /** Each host over its SSH session, as a controller reaches it. */
  exec: { sender: CommandHost; forwarder: CommandHost; receiver: CommandHost };
  /** Datagrams the receiver's UDP socket got, in arrival order. */
  received: Datagram[];
  /** Sends `count` datagrams "tag:seq" from `src` to the receiver; resolves when all were sent. */
  send(src: string, tag: string, count: number): Promise<void>;
  /** The received datagrams of one tag. */
  receivedOf(tag: string): Datagram[];
  teardown(): Promise<void>;
}

const RECEIVER_SCRIPT = `
const dgram = require("node:dgram");
const s = dgram.createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
s.on("message", (m, r) => process.stdout.write(r.address + " " + m.toString() + "\\n"));
s.bind(${UDP_PORT}, "${RECEIVER}", () => process.stdout.write("ready\\n"));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
`;

const PACED_SENDER_SCRIPT = `
const dgram = require("node:dgram");
const [src, dst, port, tag, count, pps] = process.argv.slice(1).map((v, i) => (i >= 4 ? Number(v) : v));
const s = dgram.createSocket("udp4");
const perTick = Math.max(1, Math.round(pps / 200));
let i = 0;
s.bind({ address: src, port: 0 }, () => {
  const timer = setInterval(() => {
    for (let k = 0; k < perTick && i < count; k++, i++) s.send(tag + ":" + i, port, dst);
    if (i >= count) {
      clearInterval(timer);
      setTimeout(() => s.close(), 50);
    }
  }, 5);
});
`;

/** Sends `count` datagrams "tag:seq" from `src` (in namespace `ns`) to the receiver at about `pps`. */
export async function sendPaced(
  ns: string,
  src: string,
  tag: string,
  count: number,
  pps: number,
): Promise<void> {
  await sh(ns, [
    process.execPath,
    "-e",
    PACED_SENDER_SCRIPT,
    src,
    RECEIVER,
    String(UDP_PORT),
    tag,
    String(count),
    String(pps),
  ]);
}

export interface UdpReceiver {
  received: Datagram[];
  stop(): void;
}

/** Starts the UDP receiver (RECEIVER:UDP_PORT) in a namespace; lines "src tag:seq" are collected. */
export async function startUdpReceiver(ns: string): Promise<UdpReceiver> {
  const received: Datagram[] = [];
  const proc = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", RECEIVER_SCRIPT], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let ready = false;
  createInterface({ input: proc.stdout }).on("line", (line) => {
    if (line === "ready") {
      ready = true;
      return;
    }
    const [src, payload] = line.split(" ");
    const [tag, seq] = (payload ?? "").split(":");
    if (src && tag && seq !== undefined) received.push({ src, tag, seq: Number(seq) });
  });
  const stop = () => {
    proc.stdin.end();
    proc.kill("SIGKILL");
  };
  await waitUntil(() => ready || proc.exitCode !== null, { timeoutMs: 10_000, what: "the receiver to bind" });
  if (!ready) {
    stop();
    throw new Error(`receiver exited with ${proc.exitCode}`);
  }
  return { received, stop };
}

const SENDER_SCRIPT = `
const dgram = require("node:dgram");
const [src, dst, port, tag, count] = process.argv.slice(1);
const s = dgram.createSocket("udp4");
s.bind({ address: src, port: 0 }, async () => {
  for (let i = 0; i < Number(count); i++) {
    await new Promise((res, rej) => s.send(tag + ":" + i, Number(port), dst, (e) => (e ? rej(e) : res())));
    if (i % 25 === 24) await new Promise((res) => setTimeout(res, 1));
  }
  s.close();
});
`;

async function sh(ns: string, argv: string[]): Promise<void> {
  await run(["ip", "netns", "exec", ns, ...argv]);
}

const TOPOLOGY = `
lab: dataplane
description: sender -> one kernel-forwarding namespace -> receiver (lib/lab/forwarding-lab.ts)
segments:
  lan: { subnet: 198.18.1.0/24 }
  far: { subnet: 198.18.2.0/24 }
hosts:
  snd:
    interfaces: { eth0: { segment: lan, addresses: [${SOURCE_A}/24, ${SOURCE_B}/24], mac: "02:00:00:00:01:10" } }
    routes: [{ to: default, via: 198.18.1.1 }]
  fwd:
    forwarding: true
    interfaces:
      eth0: { segment: lan, addresses: [198.18.1.1/24], mac: "02:00:00:00:01:01" }
      eth1: { segment: far, addresses: [198.18.2.1/24], mac: "02:00:00:00:02:01" }
  rcv:
    interfaces: { eth0: { segment: far, addresses: [${RECEIVER}/24], mac: "02:00:00:00:02:10" } }
    routes: [{ to: default, via: 198.18.2.1 }]
`;

/**
 * Brings the three-host lab up with upLab (namespaces, bridges, sshd per host). nft and
 * iptables run over each host's SSH session (LabHost is a CommandHost), as a controller would; the
 * UDP sender/receiver and the HoldQueue reach into the namespaces directly.
 */
export async function buildForwardingLab(): Promise<ForwardingLab> {
  const lab: Lab = await upLab(parseTopologyText(TOPOLOGY, "lib/lab/forwarding-lab.ts"));
  let udpReceiver: UdpReceiver | undefined;
  const teardown = async () => {
    udpReceiver?.stop();
    await lab.down();
  };
  try {
    const sender = lab.namespace("snd");
    const forwarder = lab.namespace("fwd");
    const receiver = lab.namespace("rcv");
    udpReceiver = await startUdpReceiver(receiver);
    const received = udpReceiver.received;
    // Neighbours resolved up front so the first datagrams are not queued behind ARP.
    await sh(sender, ["ping", "-c1", "-W2", "-I", SOURCE_A, RECEIVER]);
    await sh(sender, ["ping", "-c1", "-W2", "-I", SOURCE_B, RECEIVER]);

    return {
      prefix: lab.prefix,
      sender,
      forwarder,
      receiver,
      exec: {
        sender: lab.host("snd"),
        forwarder: lab.host("fwd"),
        receiver: lab.host("rcv"),
      },
      received,
      async send(src, tag, count) {
        await sh(sender, [
          process.execPath,
          "-e",
          SENDER_SCRIPT,
          src,
          RECEIVER,
          String(UDP_PORT),
          tag,
          String(count),
        ]);
      },
      receivedOf(tag) {
        return received.filter((d) => d.tag === tag);
      },
      teardown,
    };
  } catch (e) {
    await teardown();
    throw e;
  }
}

/** Sequence numbers 0..n-1, for comparing with what arrived. */
export function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}
