/**
 * Raw packet I/O for the VRLS agents. Node has no raw sockets, so a tiny helper
 * process (Debian's python3, standard library only, no scapy) owns them and
 * speaks a length-prefixed binary protocol over its stdin/stdout:
 *   frame = kind (1 byte) | length (4 bytes, big-endian) | bytes
 *   to the helper:   1 = send an IPv4 packet (raw IP socket, IP_HDRINCL: the kernel
 *                        routes it and resolves the next hop's MAC)
 *                    2 = send an Ethernet frame (AF_PACKET on the interface, e.g. VRRP
 *                        advertisements from the virtual MAC, gratuitous ARP)
 *   from the helper: 1 = an IPv4 packet of protocol 112 (VRRP / VRLS) received on the interface
 *                    2 = an ICMP packet received on the interface
 * Why not a native addon: raw sockets need nothing but socket(2) and setsockopt(2), which
 * the Python standard library exposes; a helper avoids a second node-gyp build and works
 * unchanged on physical hosts (python3 is everywhere). The helper is one process per agent
 * and adds well under a millisecond per message (measured in bench/failover.ts runs at 10 ms
 * advertisements); data packets never pass through it (the kernel forwards them).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";

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

export interface RawIoOptions {
  /** The interface to send on and listen to (e.g. the LAN interface eth0). */
  interface: string;
  /** Which protocols to receive. */
  listen: ("vrrp" | "icmp")[];
  onVrrp?: (ipPacket: Buffer) => void;
  onIcmp?: (ipPacket: Buffer) => void;
  onLog?: (line: string) => void;
  python?: string;
}

export class RawIo {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly address: string,
    readonly ifindex: number,
  ) {}

  /** Starts the helper and waits until its sockets are open (it reports the interface address). */
  static open(options: RawIoOptions): Promise<RawIo> {
    const child = spawn(
      options.python ?? "/usr/bin/python3",
      ["-u", "-c", HELPER, options.interface, options.listen.join(",")],
      {
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    return new Promise((resolve, reject) => {
      let io: RawIo | undefined;
      let pending: Buffer = Buffer.alloc(0);
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        for (const line of d.toString().split("\n")) if (line.trim()) options.onLog?.(`rawio: ${line}`);
      });
      child.on("error", (e) => reject(new Error(`cannot start the raw socket helper: ${e.message}`)));
      child.on("exit", (code) => {
        if (!io)
          reject(new Error(`raw socket helper exited (${code}) on ${options.interface}: ${stderr.trim()}`));
      });
      child.stdout.on("data", (d: Buffer) => {
        pending = pending.length ? Buffer.concat([pending, d]) : d;
        while (pending.length >= 5) {
          const kind = pending[0];
          const n = pending.readUInt32BE(1);
          if (pending.length < 5 + n) break;
          const data = pending.subarray(5, 5 + n);
          pending = pending.subarray(5 + n);
          if (kind === 0 && !io) {
            const [address, idx] = data.toString().split(" ");
            io = new RawIo(child, address ?? "", Number(idx));
            resolve(io);
          } else if (kind === 1) options.onVrrp?.(Buffer.from(data));
          else if (kind === 2) options.onIcmp?.(Buffer.from(data));
        }
      });
    });
  }

  /** Sends an IPv4 packet; the kernel routes it (multicast leaves on our interface). */
  sendIp(packet: Uint8Array): void {
    this.write(1, packet);
  }

  /** Sends a complete Ethernet frame on the interface. */
  sendFrame(frame: Uint8Array): void {
    this.write(2, frame);
  }

  private write(kind: number, data: Uint8Array): void {
    const head = Buffer.alloc(5);
    head[0] = kind;
    head.writeUInt32BE(data.length, 1);
    this.child.stdin.write(Buffer.concat([head, data]));
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill("SIGTERM");
  }

  get exited(): Promise<number | null> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) resolve(this.child.exitCode);
      else this.child.once("exit", (c) => resolve(c));
    });
  }
}
