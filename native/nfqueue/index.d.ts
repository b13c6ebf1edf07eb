/** One packet handed to user space by NFQUEUE. It must get exactly one verdict. */
export interface QueuedPacket {
  /** Per-queue packet id (kernel sequence); the handle for verdict(). */
  id: number;
  /** Queue number the packet came from. */
  queue: number;
  /** The IP packet (IPv4/IPv6 header first), as the kernel sees it at the queueing hook. */
  payload: Buffer;
  /** skb mark (nfmark) when queued. */
  mark: number;
  /** EtherType of the packet (0x0800 IPv4, 0x86dd IPv6). */
  hwProtocol: number;
  /** Netfilter hook number (0 prerouting, 1 input, 2 forward, 3 output, 4 postrouting). */
  hook: number;
  /** Input interface index (absent for locally generated packets). */
  indev?: number;
  /** Output interface index (known in forward/output/postrouting). */
  outdev?: number;
  /** Receive timestamp in ns since the epoch, when the skb carries one. */
  timestampNs?: bigint;
  /** Length on the wire when the payload was truncated by copyRange. */
  originalLength?: number;
  /** True when the packet is a GSO super-packet (only with options.gso). */
  gso?: boolean;
}

export interface QueueOptions {
  /** Kernel queue length in packets (NFQA_CFG_QUEUE_MAXLEN); beyond it the kernel drops (or accepts with failOpen) and counts queue_dropped. Default 1024. */
  maxLen?: number;
  /** Bytes of each packet copied to user space. Default 65535 (whole packet). */
  copyRange?: number;
  /** Receive buffer of the netlink socket in bytes (SO_RCVBUFFORCE). Default: the system's. */
  rcvBufBytes?: number;
  /** Network namespace to open the queue in: a name under /var/run/netns or a path. Default: the process's. */
  netns?: string;
  /** Accept instead of drop when the kernel queue is full. Default false (drops are visible). */
  failOpen?: boolean;
  /** Let GSO super-packets through unsegmented. Default false (one packet = one wire packet). */
  gso?: boolean;
}

export type Verdict = "accept" | "drop" | "repeat";

export interface VerdictOptions {
  /** New skb mark. */
  mark?: number;
  /** Replacement packet (same protocol), e.g. rewritten payload. */
  payload?: Buffer;
}

export interface QueueCounters {
  queueNum: number;
  /** Netlink port id of this socket (the peer_portid column of the proc file). */
  portid: number;
  open: boolean;
  /** Packets delivered to onPacket. */
  received: number;
  /** Netlink datagrams read. */
  datagrams: number;
  /** onPacket batches (one per socket wake-up). */
  batches: number;
  /** Verdict messages sent. */
  verdicts: number;
  /** Errors the kernel returned for verdicts (e.g. unknown id). */
  verdictErrors: number;
  /** Deferred verdict batches that could not be sent (see lastErrno). */
  sendErrors: number;
  /** recv() ENOBUFS: the socket receive buffer overflowed and the kernel dropped messages. */
  enobufs: number;
  /** Netlink messages that were not parseable queue packets (counted and skipped). */
  malformed: number;
  lastErrno: number;
}

/** One line of /proc/net/netfilter/nfnetlink_queue. */
export interface KernelQueueStats {
  queueNum: number;
  portid: number;
  /** Packets currently waiting for a verdict. */
  queueTotal: number;
  copyMode: number;
  copyRange: number;
  /** Packets dropped because the queue was full (maxLen). */
  queueDropped: number;
  /** Packets dropped because the netlink socket could not take them (buffer full). */
  userDropped: number;
  /** Last packet id handed out. */
  idSequence: number;
}

export interface QueueStats extends QueueCounters {
  /** This queue's line of the kernel's proc file (undefined if the kernel does not list it). */
  kernel: KernelQueueStats | undefined;
}

export declare class NfQueue {
  readonly queueNum: number;
  /** Gives one packet its verdict (optionally with a new mark and/or replacement payload). */
  verdict(id: number, verdict: Verdict, options?: VerdictOptions): void;
  /** Gives many packets the same verdict, in the given order, in as few syscalls as possible. */
  verdictMany(ids: Uint32Array | readonly number[], verdict: Verdict, options?: { mark?: number }): void;
  /** Kernel batch verdict: every still-queued packet with id <= `id`. */
  verdictUpTo(id: number, verdict: Verdict, options?: { mark?: number }): void;
  /**
   * Reads, now and synchronously, every packet already waiting in the netlink socket and
   * hands it to onPacket (what the event loop would do on its next wake-up).
   */
  pump(): void;
  /** This process's counters. */
  counters(): QueueCounters;
  /** Counters plus the kernel's view of the queue. */
  stats(): QueueStats;
  /** Unbinds the queue and closes the socket; the kernel drops packets still queued. Idempotent. */
  close(): void;
}

/**
 * Binds NFQUEUE number `queueNum` and calls `onPacket` for each queued packet
 * (from the event loop; no threads). Throws if the queue is already bound.
 */
export declare function openQueue(
  queueNum: number,
  options: QueueOptions,
  onPacket: (packet: QueuedPacket) => void,
): NfQueue;

export declare function parseQueueStats(text: string): KernelQueueStats[];
