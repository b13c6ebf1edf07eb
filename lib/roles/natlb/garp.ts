import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { gratuitousArpFrame } from "../../wire/arp.ts";
import type { Exec } from "./exec.ts";

/**
 * Sends gratuitous ARP frames (step 2 of a move: the new owner announces the VIP and the
 * VIP's internal address, so the upstream router and the servers send to it at once).
 * The frames are built by lib/wire; Node cannot open an AF_PACKET socket, and Debian's
 * python3 can with its standard library (no scapy start-up cost), so a small python
 * process, started once per balancer, sends the prebuilt bytes it reads from stdin
 * (a fresh python per move would add ~50-100 ms to every route switch; iputils-arping
 * would need an extra package).
 */
const SENDER = [
  "import socket,sys",
  "socks={}",
  "for line in sys.stdin:",
  "  out=[]",
  "  for a in line.split():",
  "    i,h=a.split('=')",
  "    s=socks.get(i)",
  "    if s is None:",
  "      s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind((i,0)); socks[i]=s",
  "    s.send(bytes.fromhex(h))",
  "  sys.stdout.write('ok\\n'); sys.stdout.flush()",
].join("\n");

export interface Announcement {
  ifname: string;
  mac: string;
  address: string;
}

export async function interfaceMac(exec: Exec, ifname: string): Promise<string> {
  const r = await exec(["ip", "-j", "link", "show", "dev", ifname]);
  const parsed = JSON.parse(r.stdout) as { address?: string }[];
  const mac = parsed[0]?.address;
  if (!mac) throw new Error(`interface ${ifname} has no MAC address`);
  return mac;
}

function line(announcements: readonly Announcement[]): string {
  return announcements
    .map((a) => `${a.ifname}=${Buffer.from(gratuitousArpFrame(a.mac, a.address)).toString("hex")}`)
    .join(" ");
}

/** One-shot sender (used when no persistent sender is running). */
export async function sendGratuitousArp(exec: Exec, announcements: readonly Announcement[]): Promise<void> {
  if (announcements.length === 0) return;
  await exec(["/usr/bin/python3", "-c", SENDER], { input: `${line(announcements)}\n` });
}

/** A persistent sender process (inside `namespace` when given, else in this process's). */
export class GarpSender {
  private child: ChildProcessWithoutNullStreams | undefined;
  private waiting: (() => void)[] = [];
  private buffer = "";

  constructor(private readonly namespace?: string) {}

  private start(): ChildProcessWithoutNullStreams {
    const argv = [
      ...(this.namespace ? ["ip", "netns", "exec", this.namespace] : []),
      "/usr/bin/python3",
      "-u",
      "-c",
      SENDER,
    ];
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      this.buffer += d;
      for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
        this.buffer = this.buffer.slice(nl + 1);
        this.waiting.shift()?.();
      }
    });
    child.on("exit", () => {
      if (this.child === child) this.child = undefined;
      for (const w of this.waiting.splice(0)) w();
    });
    this.child = child;
    return child;
  }

  send(announcements: readonly Announcement[]): Promise<void> {
    if (announcements.length === 0) return Promise.resolve();
    const child = this.child ?? this.start();
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      child.stdin.write(`${line(announcements)}\n`);
    });
  }

  close(): void {
    this.child?.stdin.end();
    this.child?.kill();
    this.child = undefined;
  }
}
