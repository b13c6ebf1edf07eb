/**
 * Raw packet I/O for the VRLS agents, in process, through the `tandem-rawio` addon
 * (native/rawio): node-addon-api over socket(2)/setsockopt(2), one uv_poll per receive
 * socket, no threads. The sockets, on one interface:
 *   send IPv4     raw IPPROTO_RAW socket (header included: the kernel routes the packet and
 *                 resolves the next hop's MAC), SO_BINDTODEVICE, SO_BROADCAST,
 *                 IP_MULTICAST_IF = the interface's address, IP_MULTICAST_LOOP 0;
 *   send frames   AF_PACKET on the interface (advertisements from the virtual MAC,
 *                 gratuitous ARP);
 *   receive vrrp  raw socket of IP protocol 112 (VRRP / VRLS), bound to the interface, joined
 *                 to 224.0.0.18 on it, 4 MiB receive buffer;
 *   receive icmp  raw ICMP socket bound to the interface, 1 MiB receive buffer;
 *   receive vrrp6 raw IPv6 socket of next header 112 bound to the interface, joined to
 *                 ff02::12 (issue 16, RFC 9568); the addon rebuilds the IPv6 header in front
 *                 of each payload from the hop limit, source and destination the kernel reports.
 * Each socket wake-up reads what the socket holds (at most 256 packets, so timers still run
 * under a flood) and hands the packets to onVrrp / onIcmp in arrival order.
 *
 * Why native now (until then a python3 helper process owned the sockets and spoke
 * length-prefixed frames over stdin/stdout): latency and flood resistance, measured with
 * `tandem bench rawio` (bench/rawio.ts keeps the helper for that comparison; figures and
 * conditions in docs/vrls.md "Raw packet I/O"):
 *  - every control message crossed two pipes and a Python select loop, and a hand-off is 4
 *    messages: round trip of one 60-byte protocol-112 packet between two namespaces, p50 /
 *    p99 0.202 / 1.29 ms through the helper, 0.011 / 0.060 ms in process;
 *  - a flood of 110,000 bad VRRP frames overran the helper and nothing counted what it
 *    missed. Now every loss is counted: stats().rxDrops is the kernel's drop counter of the
 *    receive sockets (packets that did not fit in the receive buffer), and at full speed
 *    (~850 kpps) more frames reach the agent (54,371 vs 44,359) for less CPU per packet
 *    (3.0 vs 3.6 us, agent + helper); the limit is now the agent's own validation.
 * Sends never throw: a failed send (ENOBUFS, EAGAIN, EMSGSIZE) is counted in
 * stats().sendErrors and logged at most once a second.
 */
import { openRawSockets, type RawIoStats, type RawPacket, type RawSockets } from "tandem-rawio";

export type { RawIoStats } from "tandem-rawio";

export interface RawIoOptions {
  /** The interface to send on and listen to (e.g. the LAN interface eth0). */
  interface: string;
  /** Which protocols to receive ("vrrp6": VRRPv3 over IPv6, RFC 9568). */
  listen: ("vrrp" | "icmp" | "vrrp6")[];
  /** false: no IPv4 socket, no IPv4 address needed (an IPv6-only agent). Default true. */
  ipv4?: boolean;
  onVrrp?: (ipPacket: Buffer) => void;
  /** An IPv6 packet with next header 112 (its header rebuilt from what the socket reported). */
  onVrrp6?: (ipv6Packet: Buffer) => void;
  onIcmp?: (ipPacket: Buffer) => void;
  /** Send failures (at most one line a second, with the count since the previous line). */
  onLog?: (line: string) => void;
  /** Open the sockets in this network namespace (name or path); default the process's. Tests and benches. */
  netns?: string;
}

/** Between two lines about failed sends. */
const SEND_ERROR_LOG_MS = 1000;

export class RawIo {
  private lastErrorLog = Number.NEGATIVE_INFINITY;
  private errorsLogged = 0;

  private constructor(
    private readonly sockets: RawSockets,
    private readonly onLog: ((line: string) => void) | undefined,
  ) {}

  get address(): string {
    return this.sockets.address;
  }

  get ifindex(): number {
    return this.sockets.ifindex;
  }

  /** Opens the sockets; rejects (naming the interface) if one cannot be opened or the interface has no IPv4 address. */
  static async open(options: RawIoOptions): Promise<RawIo> {
    const { onVrrp, onIcmp, onVrrp6 } = options;
    const onBatch = (batch: RawPacket[]) => {
      // A throwing handler must not cost the rest of the batch its delivery; the first
      // error is rethrown afterwards (uncaughtException, as it was with the helper's pipe).
      let failure: { e: unknown } | undefined;
      for (const p of batch) {
        try {
          if (p.kind === "vrrp") onVrrp?.(p.data);
          else if (p.kind === "vrrp6") onVrrp6?.(p.data);
          else onIcmp?.(p.data);
        } catch (e) {
          failure ??= { e };
        }
      }
      if (failure) throw failure.e;
    };
    const sockets = openRawSockets(
      {
        interface: options.interface,
        listen: options.listen,
        ...(options.ipv4 === false ? { ipv4: false } : {}),
        ...(options.netns !== undefined ? { netns: options.netns } : {}),
      },
      onBatch,
    );
    return new RawIo(sockets, options.onLog);
  }

  /** Sends an IPv4 packet; the kernel routes it (multicast leaves on our interface). False if it failed (counted). */
  sendIp(packet: Uint8Array): boolean {
    return this.sockets.sendIp(packet) || this.failed();
  }

  /** Sends a complete Ethernet frame on the interface. False if it failed (counted). */
  sendFrame(frame: Uint8Array): boolean {
    return this.sockets.sendFrame(frame) || this.failed();
  }

  /** Receive, drop and send counters (rxDrops: the kernel's, read now). */
  stats(): RawIoStats {
    return this.sockets.stats();
  }

  /** Reads now what the receive sockets hold (what the next event-loop wake-up would do). */
  pump(): void {
    this.sockets.pump();
  }

  /** Closes the sockets. Idempotent. */
  close(): void {
    this.sockets.close();
  }

  private failed(): false {
    const t = performance.now();
    if (this.onLog && t - this.lastErrorLog >= SEND_ERROR_LOG_MS) {
      const s = this.sockets.stats();
      this.onLog(
        `rawio: send failed (${s.sendErrors - this.errorsLogged} since the last report, ${s.sendErrors} in all): ${s.lastSendError}`,
      );
      this.errorsLogged = s.sendErrors;
      this.lastErrorLog = t;
    }
    return false;
  }
}
