/**
 * Transition-mode holding (seed 002, first step: "the load balancer 3b stores the received
 * packet into a memory"). A balancer holds the packets of a VIP in transition and, at the
 * end of switch (fourth step), sends them through the new entries in arrival order.
 *
 * The balancer talks to this interface; the kernel side (nftables mark + one iptables
 * NFQUEUE rule) is the same for every implementation.
 */
export interface HoldReport {
  vip: string;
  held: number;
  released: number;
  /** Dropped on purpose (a rolled-back move). */
  discarded: number;
  /** Dropped because a bound (packets or bytes) was hit. */
  overflowDropped: number;
  /** Dropped because a packet waited longer than maxHoldMs. */
  timeoutDropped: number;
  /** How long the oldest released packet waited (ms); 0 when nothing was held. */
  holdMs: number;
  /** Whether released packets left in the order they arrived. */
  inOrder: boolean;
}

export interface TransitionHold {
  /** Installs the queue (idempotent). */
  open(): Promise<void>;
  hold(vip: string): Promise<void>;
  /** Releases what is held for `vip` in arrival order, then lets new arrivals through. */
  release(vip: string): Promise<HoldReport>;
  discard(vip: string): Promise<HoldReport>;
  close(): Promise<void>;
}

export function emptyReport(vip: string): HoldReport {
  return {
    vip,
    held: 0,
    released: 0,
    discarded: 0,
    overflowDropped: 0,
    timeoutDropped: 0,
    holdMs: 0,
    inOrder: true,
  };
}

/**
 * No holding at all: packets of a VIP in transition go on to conntrack, which has no
 * entry for them yet, so they are INVALID and answered with a RST. This is the seed's
 * prior art, used to show the failure the transition mode fixes.
 */
export const noHold: TransitionHold = {
  async open() {},
  async hold() {},
  async release(vip) {
    return emptyReport(vip);
  },
  async discard(vip) {
    return emptyReport(vip);
  },
  async close() {},
};
