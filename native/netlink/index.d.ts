/**
 * tandem-netlink: a NAT-LB balancer's kernel access on persistent sockets, no process per
 * operation. Every call is synchronous (a netlink round trip, or a batch of them) except
 * the event subscription, which delivers on the event loop.
 */
export interface NetnsOptions {
  /** Network namespace (a name under /var/run/netns, or a path) whose sockets are used. Default: the caller's. */
  netns?: string;
}

/** The original-direction tuple of a conntrack entry (its key). */
export interface CtKey {
  protocol: "tcp" | "udp";
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

export interface CtTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

/** An IPv4 TCP/UDP conntrack entry as the kernel reports it. */
export interface CtFlow {
  protocol: "tcp" | "udp";
  orig: CtTuple;
  /** The reply tuple: where the kernel's NAT sends the flow (server, and internal address for SNAT). */
  reply: CtTuple;
  /** TCP_CONNTRACK_* (0 NONE .. 9 SYN_SENT2), when the kernel said (events carry it only when it changed). */
  tcpState?: number;
  /** Seconds left (0 when the message had none, e.g. a DESTROY event). */
  timeoutS: number;
  /** IPS_* bits (IPS_SEEN_REPLY 2, IPS_ASSURED 4, ...). */
  status: number;
  mark: number;
}

/** An entry to create: its key, NAT bindings, and state. */
export interface CtCreate extends CtKey {
  /** Destination NAT (`conntrack -I --dst-nat address:port`). */
  dnat?: { address: string; port: number };
  /** Source NAT (`--src-nat address:port`). */
  snat?: { address: string; port: number };
  tcpState?: number;
  status: number;
  timeoutS: number;
  mark?: number;
}

export interface CtCreateResult {
  created: number;
  /** Entries that existed and were destroyed and created again (`replace`). */
  replaced: number;
  /** Entries that existed and were left alone (no `replace`). */
  existing: number;
  errors: { index: number; errno: number; code: string; message: string }[];
}

/** One persistent ctnetlink socket. */
export class Conntrack {
  constructor(options?: NetnsOptions);
  /** Every IPv4 TCP/UDP entry, or those whose original destination is in `dst`. */
  dump(options?: { dst?: string[] }): CtFlow[];
  /** Each key's entry now, null when it is not there. */
  get(keys: CtKey[]): (CtFlow | null)[];
  /** Creates entries in batches (one datagram per 128); an existing one is left alone or, with `replace`, replaced. */
  create(entries: CtCreate[], options?: { replace?: boolean }): CtCreateResult;
  destroy(keys: CtKey[]): { destroyed: number; missing: number };
  counters(): { requests: number; dumps: number; created: number; destroyed: number; malformed: number };
  readonly open: boolean;
  close(): void;
}

export interface CtEvent {
  type: "new" | "update" | "destroy";
  flow: CtFlow;
}

/** A subscription to conntrack NEW/UPDATE/DESTROY events (optionally only for entries whose original destination is in `dst`). */
export class ConntrackEvents {
  constructor(
    options: NetnsOptions & { dst?: string[]; rcvBufBytes?: number },
    onEvents: (events: CtEvent[]) => void,
  );
  /** The events queued right now, read synchronously (they are not given to onEvents). */
  pump(): CtEvent[];
  /** `enobufs` > 0: the kernel dropped events (the socket buffer overflowed). */
  counters(): { events: number; delivered: number; enobufs: number; malformed: number };
  close(): void;
}

/** Interfaces of a namespace: rtnetlink (addresses, links) and an AF_PACKET socket (frames). */
export class Link {
  constructor(options?: NetnsOptions);
  info(ifname: string): { index: number; mac: string };
  /** IPv4 addresses as "a.b.c.d/len". */
  addresses(ifname: string): string[];
  /** `ip addr add` (or `ip addr replace` with `replace`). Throws an Error with `errno`/`code`. */
  addAddress(ifname: string, address: string, prefixLen: number, options?: { replace?: boolean }): void;
  /** `ip addr del`; false when the address was not there. */
  deleteAddress(ifname: string, address: string, prefixLen: number): boolean;
  /**
   * Every interface's root qdisc and its drop counter (RTM_GETQDISC dump, what
   * `tc -s qdisc show` prints for `root`); drops null when the kernel reported no statistics.
   */
  rootQdiscs(): { index: number; kind: string; drops: number | null }[];
  /** Sends whole Ethernet frames on the interface; returns how many went. */
  sendFrames(ifname: string, frames: Uint8Array[]): number;
  readonly open: boolean;
  close(): void;
}

/**
 * Sets the calling thread's scheduling policy (sched_setscheduler(2) with
 * SCHED_RESET_ON_FORK): "fifo" with a real-time priority 1..99, or "other" with 0 (the
 * thread's nice value is kept). Throws with the errno text, e.g. EPERM without
 * CAP_SYS_NICE.
 */
export declare function setThreadScheduler(policy: "fifo" | "other", priority: number): void;

/** Runs the calling thread only on these CPUs (sched_setaffinity(2)); throws with the errno text. */
export declare function setThreadAffinity(cpus: readonly number[]): void;
