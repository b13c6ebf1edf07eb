/**
 * Replay rejection for authenticated control messages (VRLS extension, NAT-LB control):
 * per sender, accept only a (incarnation, sequence) pair greater than the last accepted.
 * Used after the HMAC verified, so an attacker cannot advance the window.
 */
export type ReplayVerdict = "accept" | "replay" | "stale-incarnation";

export class ReplayWindow {
  private readonly last = new Map<string, { incarnation: bigint; sequence: bigint }>();

  check(sender: string, incarnation: number | bigint, sequence: number | bigint): ReplayVerdict {
    const inc = BigInt(incarnation);
    const seq = BigInt(sequence);
    const prev = this.last.get(sender);
    if (prev) {
      if (inc < prev.incarnation) return "stale-incarnation";
      if (inc === prev.incarnation && seq <= prev.sequence) return "replay";
    }
    this.last.set(sender, { incarnation: inc, sequence: seq });
    return "accept";
  }

  /** Forget a sender (e.g. removed from the configuration). */
  forget(sender: string): void {
    this.last.delete(sender);
  }
}
