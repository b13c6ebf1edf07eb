// A throwaway three-namespace lab for the data-plane tests: sender -> forwarder -> receiver,
// built with lib/lab/command.ts (withLab is not needed for three veths). Every namespace
// carries the run prefix and teardown removes exactly those namespaces.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { type Executor, namespaceExecutor } from "../lib/dataplane/exec.ts";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";

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
  exec: { sender: Executor; forwarder: Executor; receiver: Executor };
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

export async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function sh(ns: string, argv: string[]): Promise<void> {
  await run(["ip", "netns", "exec", ns, ...argv]);
}

export async function buildForwardingLab(): Promise<ForwardingLab> {
  const prefix = newRunPrefix();
  const sender = namespaceName(prefix, "snd");
  const forwarder = namespaceName(prefix, "fwd");
  const receiver = namespaceName(prefix, "rcv");
  const created: string[] = [];
  let receiverProcess: ChildProcessWithoutNullStreams | undefined;
  const teardown = async () => {
    receiverProcess?.stdin.end();
    receiverProcess?.kill("SIGKILL");
    for (const ns of created) {
      // Only our own namespaces: kill what runs in them, then delete them.
      const pids = await run(["ip", "netns", "pids", ns], { allowFailure: true });
      for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
        await run(["kill", "-9", pid], { allowFailure: true });
      }
      await run(["ip", "netns", "del", ns], { allowFailure: true });
    }
  };
  try {
    for (const ns of [sender, forwarder, receiver]) {
      await run(["ip", "netns", "add", ns]);
      created.push(ns);
      await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    await run([
      "ip",
      "link",
      "add",
      "eth0",
      "netns",
      sender,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      forwarder,
    ]);
    await run([
      "ip",
      "link",
      "add",
      "eth1",
      "netns",
      forwarder,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      receiver,
    ]);
    await run(["ip", "-n", sender, "-batch", "-"], {
      input: [
        `addr add ${SOURCE_A}/24 dev eth0`,
        `addr add ${SOURCE_B}/24 dev eth0`,
        "link set eth0 up",
        "route add default via 198.18.1.1",
      ].join("\n"),
    });
    await run(["ip", "-n", forwarder, "-batch", "-"], {
      input: [
        "addr add 198.18.1.1/24 dev eth0",
        "addr add 198.18.2.1/24 dev eth1",
        "link set eth0 up",
        "link set eth1 up",
      ].join("\n"),
    });
    await run(["ip", "-n", receiver, "-batch", "-"], {
      input: [
        `addr add ${RECEIVER}/24 dev eth0`,
        "link set eth0 up",
        "route add default via 198.18.2.1",
      ].join("\n"),
    });
    await sh(forwarder, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);

    const received: Datagram[] = [];
    receiverProcess = spawn("ip", ["netns", "exec", receiver, process.execPath, "-e", RECEIVER_SCRIPT], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const proc = receiverProcess;
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
    await waitFor("the receiver to bind", () => ready || proc.exitCode !== null);
    if (!ready) throw new Error(`receiver exited with ${proc.exitCode}`);
    // Neighbours resolved up front so the first datagrams are not queued behind ARP.
    await sh(sender, ["ping", "-c1", "-W2", "-I", SOURCE_A, RECEIVER]);
    await sh(sender, ["ping", "-c1", "-W2", "-I", SOURCE_B, RECEIVER]);

    return {
      prefix,
      sender,
      forwarder,
      receiver,
      exec: {
        sender: namespaceExecutor(sender),
        forwarder: namespaceExecutor(forwarder),
        receiver: namespaceExecutor(receiver),
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
