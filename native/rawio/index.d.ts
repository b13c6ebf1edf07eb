/**
 * What the receive sockets listen to: IPv4 protocol 112 (VRRP / VRLS) and/or ICMP, and
 * IPv6 next header 112 (VRRPv3 over IPv6, joined to ff02::12; each packet is handed over
 * behind a rebuilt IPv6 header carrying the received hop limit, source and destination).
 */
export type RawListen = "vrrp" | "icmp" | "vrrp6";

export interface RawSocketsOptions {
  /** The interface to send on and listen to (SO_BINDTODEVICE; IP_MULTICAST_IF; AF_PACKET bind). */
  interface: string;
  /** Receive sockets to open. Default none (send only). */
  listen?: readonly RawListen[];
  /** Network namespace to open every socket in: a name under /var/run/netns or a path. Default: the process's. */
  netns?: string;
  /**
   * false: open no IPv4 socket and need no IPv4 address on the interface (an IPv6-only
   * agent; listen "vrrp6" only, sendIp fails, counted). Default true.
   */
  ipv4?: boolean;
  /** Receive buffer of the protocol-112 sockets (SO_RCVBUFFORCE, else SO_RCVBUF). Default 4 MiB. */
  vrrpRcvBufBytes?: number;
  /** Receive buffer of the ICMP socket. Default 1 MiB. */
  icmpRcvBufBytes?: number;
}

/** One received IPv4 packet (header first), as the raw socket returned it; "vrrp6": the IPv6 packet, header rebuilt. */
export interface RawPacket {
  kind: RawListen;
  data: Buffer;
}

export interface RawSocketStats {
  /** Packets handed to JavaScript. */
  received: number;
  /** Batches handed to JavaScript (one per socket wake-up). */
  batches: number;
  /** The kernel's drop counter of this socket (sk_drops: did not fit in the receive buffer). */
  rxDrops: number;
  /** Datagrams longer than the receive slot (64 KiB): never for IPv4. */
  truncated: number;
  recvErrors: number;
  lastRecvErrno: number;
  /** The receive buffer the kernel granted (SO_RCVBUF as read back: twice the request). */
  rcvbufBytes: number;
}

export interface RawIoStats {
  open: boolean;
  /** Packets handed to JavaScript, all receive sockets. */
  received: number;
  batches: number;
  /** Sum of the receive sockets' kernel drop counters (read now, with SO_MEMINFO). */
  rxDrops: number;
  sentIp: number;
  sentFrames: number;
  /** Sends that failed (counted, never thrown): ENOBUFS, EAGAIN, ENETUNREACH, a short packet, ... */
  sendErrors: number;
  /** The last send failure, e.g. "sendIp to 203.0.113.9: ENETUNREACH (Network is unreachable)". */
  lastSendError: string | null;
  lastSendErrno: number;
  sockets: Partial<Record<RawListen, RawSocketStats>>;
}

export declare class RawSockets {
  readonly interface: string;
  /** The interface's IPv4 address (SIOCGIFADDR at open); "" with ipv4: false. */
  readonly address: string;
  /** The interface's index (if_nametoindex at open). */
  readonly ifindex: number;
  /** Sends an IPv4 packet with its header (the kernel routes it to bytes 16..19). False on failure (counted). */
  sendIp(packet: Uint8Array): boolean;
  /** Sends a complete Ethernet frame on the interface. False on failure (counted). */
  sendFrame(frame: Uint8Array): boolean;
  /** Reads, now and synchronously, what the receive sockets hold (what the next wake-up would do). */
  pump(): void;
  stats(): RawIoStats;
  /** Closes every socket. Idempotent; later sends fail (counted). */
  close(): void;
}

/**
 * Opens the send sockets and the requested receive sockets on `interface`; each socket
 * wake-up calls `onBatch` once with every packet read (from the event loop; no threads).
 * Throws, naming the interface, if a socket cannot be opened or the interface has no IPv4 address.
 */
export declare function openRawSockets(
  options: RawSocketsOptions,
  onBatch: (batch: RawPacket[]) => void,
): RawSockets;
