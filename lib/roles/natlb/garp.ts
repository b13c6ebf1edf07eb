import { gratuitousArpFrame } from "../../wire/arp.ts";
import type { Exec } from "./exec.ts";

/**
 * Sends gratuitous ARP frames (step 2 of a move: the new owner announces the VIP and the
 * VIP's internal address, so the upstream router and the servers send to it at once).
 * The frames are built by lib/wire; Node cannot open an AF_PACKET socket, and Debian's
 * python3 can with its standard library (no scapy start-up cost), so a one-line python
 * program sends the prebuilt bytes. iputils-arping would need an extra package.
 */
const SENDER = [
  "import socket,sys",
  "for a in sys.argv[1:]:",
  "  i,h=a.split('=')",
  "  s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)",
  "  s.bind((i,0))",
  "  s.send(bytes.fromhex(h))",
  "  s.close()",
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

export async function sendGratuitousArp(exec: Exec, announcements: readonly Announcement[]): Promise<void> {
  if (announcements.length === 0) return;
  const args = announcements.map((a) => {
    const frame = gratuitousArpFrame(a.mac, a.address);
    return `${a.ifname}=${Buffer.from(frame).toString("hex")}`;
  });
  await exec(["/usr/bin/python3", "-c", SENDER, ...args]);
}
