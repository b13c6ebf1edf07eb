/**
 * The hand-off of a condition from its old owner to its new owner, the part of
 * the seed's "Prevention of packet duplication" that decides what happens to
 * each packet. Pure functions over packet descriptors; the agent gets the
 * descriptors from the HoldQueue (NFQUEUE) and applies the verdicts.
 *
 * - timer (seed, "by means of timer"): the new owner forwards after a delay; the
 *   old owner stops when it hears the confirmation. No duplicates if the delay
 *   exceeds the confirmation's trip; packets in between are lost.
 * - sequence-number (seed, "by means of sequence number", Fig. 10C): the old owner
 *   observes from the allocation on and, when it stops, reports per TCP flow the
 *   next sequence number after the last segment it forwarded; the new owner, which
 *   held the condition, drops older segments and releases the rest. Held packets of
 *   other protocols are discarded ("UDP packets may possibly be discarded").
 * - exactly-once (beyond the seed, docs/vrls.md and docs/dataplane.md): as above but the marker is
 *   the identity (hash of the IP packet as received) of the last packet forwarded
 *   per flow, for every protocol; the new owner drops up to and including it.
 */
import type { FlowMarker } from "./messages.ts";

/** A packet as the hold queue and the observer see it. */
export interface PacketInfo {
  id: number;
  flow: string;
  /** 64-bit identity of the IP packet as received (hex). */
  identity: string;
  protocol: number;
  tcp?: { seq: number; ack: number; payloadLength: number; syn: boolean; fin: boolean };
}

export interface HeldDecision {
  release: number[];
  drop: number[];
}

/** a < b in 32-bit sequence space (RFC 1982 style, as TCP compares). */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Sequence space consumed by a segment: payload plus one for SYN and FIN. */
export function tcpNextSeq(tcp: NonNullable<PacketInfo["tcp"]>): number {
  return (tcp.seq + tcp.payloadLength + (tcp.syn ? 1 : 0) + (tcp.fin ? 1 : 0)) >>> 0;
}

/**
 * What the old owner records while it observes a condition it is giving up:
 * per flow, the last packet it let through. Call `forwarded` for every packet it
 * accepts; `markers` when it stops.
 */
export class FlowObserver {
  private readonly flows = new Map<
    string,
    { identity: string; count: number; nextSeq?: number; lastAck?: number }
  >();

  forwarded(p: PacketInfo): void {
    const prev = this.flows.get(p.flow);
    const rec = {
      identity: p.identity,
      count: (prev?.count ?? 0) + 1,
      nextSeq: prev?.nextSeq,
      lastAck: prev?.lastAck,
    };
    if (p.tcp) {
      const next = tcpNextSeq(p.tcp);
      // Keep the highest point reached (a retransmission does not move it back).
      if (rec.nextSeq === undefined || seqLt(rec.nextSeq, next)) rec.nextSeq = next;
      if (rec.lastAck === undefined || seqLt(rec.lastAck, p.tcp.ack)) rec.lastAck = p.tcp.ack;
    }
    this.flows.set(p.flow, rec);
  }

  get flowCount(): number {
    return this.flows.size;
  }

  markers(mode: "sequence-number" | "exactly-once"): FlowMarker[] {
    const out: FlowMarker[] = [];
    for (const [flow, r] of this.flows) {
      if (mode === "exactly-once") out.push({ flow, identity: r.identity, count: r.count });
      else if (r.nextSeq !== undefined)
        out.push({ flow, nextSeq: r.nextSeq, lastAck: r.lastAck ?? 0, count: r.count });
    }
    return out;
  }
}

/**
 * exactly-once: for each flow with a marker found among the held packets, drop
 * everything up to and including the marker's last occurrence and release the
 * rest. A marker that is not held means the old owner's last packet came before
 * the hold began, so every held packet of that flow is new: release all.
 *
 * `preBoundary`: the held packets that arrived before the old owner said it observes (the
 * new owner's prehold, docs/vrls.md). The old owner may have forwarded those in its kernel,
 * unrecorded. For a flow with a marker that does not matter: everything after the marker
 * was not forwarded by the old owner, including a packet this member took in before the
 * boundary that the old owner's host reached only after its stop (without the prehold the
 * new owner's kernel dropped that packet and the old owner blocked it: lost). For a flow
 * without a marker the old owner forwarded nothing while observing: its pre-boundary packets
 * may be its kernel's, so they are dropped, and the rest released.
 */
export function decideExactlyOnce(
  held: readonly PacketInfo[],
  markers: readonly FlowMarker[],
  preBoundary: ReadonlySet<number> = new Set(),
): HeldDecision {
  const markerOf = new Map(markers.filter((m) => m.identity !== undefined).map((m) => [m.flow, m.identity]));
  const cut = new Map<string, number>();
  held.forEach((p, i) => {
    if (markerOf.get(p.flow) === p.identity) cut.set(p.flow, i);
  });
  const out: HeldDecision = { release: [], drop: [] };
  held.forEach((p, i) => {
    const c = cut.get(p.flow);
    const forwardedByOldOwner = c !== undefined && i <= c;
    const maybeForwardedUnrecorded = !markerOf.has(p.flow) && preBoundary.has(p.id);
    (forwardedByOldOwner || maybeForwardedUnrecorded ? out.drop : out.release).push(p.id);
  });
  return out;
}

/**
 * sequence-number (Fig. 10C): TCP segments before the reported sequence number were
 * forwarded by the old owner: drop; a bare ACK at that point is dropped when its ACK
 * number was already forwarded. TCP flows without a marker ("conforming packet not
 * found"): release, except those held before the boundary (see decideExactlyOnce). Other
 * protocols: drop, as the seed accepts.
 */
export function decideSequenceNumber(
  held: readonly PacketInfo[],
  markers: readonly FlowMarker[],
  preBoundary: ReadonlySet<number> = new Set(),
): HeldDecision {
  const markerOf = new Map(markers.filter((m) => m.nextSeq !== undefined).map((m) => [m.flow, m]));
  const out: HeldDecision = { release: [], drop: [] };
  for (const p of held) {
    if (!p.tcp) {
      out.drop.push(p.id);
      continue;
    }
    const m = markerOf.get(p.flow);
    if (!m || m.nextSeq === undefined) {
      (preBoundary.has(p.id) ? out.drop : out.release).push(p.id);
      continue;
    }
    const bare = p.tcp.payloadLength === 0 && !p.tcp.syn && !p.tcp.fin;
    const old =
      seqLt(p.tcp.seq, m.nextSeq) || (bare && p.tcp.seq === m.nextSeq && !seqLt(m.lastAck ?? 0, p.tcp.ack));
    (old ? out.drop : out.release).push(p.id);
  }
  return out;
}
