// Marks and NFQUEUE numbers the reference roles use, so two roles (or a role and a
// test) on one host never share a queue or a mark bit. docs/dataplane.md explains them.

/** Bits of the packet mark that belong to the data plane's "queue me" decision. */
export const QUEUE_MARK_MASK = 0xf000;

export const ROLE_QUEUES = {
  /** VRLS member: conditions held (new owner) or observed (old owner) during a hand-off. */
  vrls: { queueNum: 100, mark: 0x1000 },
  /** NAT-LB balancer: VIPs in transition mode. */
  natlb: { queueNum: 200, mark: 0x2000 },
  /** Tests and benches. */
  test: { queueNum: 300, mark: 0x3000 },
} as const;
