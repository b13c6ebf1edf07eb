import type { Balancer } from "./balancer.ts";
import type { HoldReport } from "./hold.ts";
import type { BalancerPort, TransferPhase } from "./move.ts";

/**
 * BalancerPort over Balancer objects in this process (namespace tests drive several
 * balancers from one process). Entries go from one balancer's conntrack to the other's
 * directly; the agents do the same over the NAT-LB control messages.
 */
export class LocalBalancerPort implements BalancerPort {
  constructor(
    private readonly balancer: Balancer,
    private readonly peers: ReadonlyMap<string, Balancer>,
  ) {}

  get name(): string {
    return this.balancer.name;
  }

  beginTransition(vip: string): Promise<void> {
    return this.balancer.beginTransition(vip);
  }
  abortTransition(vip: string): Promise<HoldReport> {
    return this.balancer.abortTransition(vip);
  }
  claim(vip: string): Promise<void> {
    return this.balancer.claim(vip);
  }
  release(vip: string): Promise<void> {
    return this.balancer.release(vip);
  }
  sendEntries(vip: string, to: string, transferId?: string, phase: TransferPhase = "final"): Promise<number> {
    const peer = this.peers.get(to);
    if (!peer) throw new Error(`no balancer named "${to}"`);
    return this.balancer.sendEntries(vip, (entries) => peer.importEntries(entries), transferId, phase);
  }
  endSwitch(vip: string, side: "old" | "new"): Promise<HoldReport> {
    return this.balancer.endSwitch(vip, side);
  }
}

export function localPorts(balancers: readonly Balancer[]): Map<string, BalancerPort> {
  const byName = new Map(balancers.map((b) => [b.name, b]));
  return new Map(balancers.map((b) => [b.name, new LocalBalancerPort(b, byName)]));
}
