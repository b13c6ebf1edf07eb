import { findSequence, type WireMessage } from "../../lib/traffic/wire-log.ts";
import { ICMP_TYPE } from "../../lib/wire/icmp.ts";
import { VRLS_TYPE, type VrlsTypeName } from "../../lib/wire/vrls.ts";
import { VRRP_MULTICAST } from "../../lib/wire/vrrp.ts";
import type { LanMessage } from "./lan-capture.ts";

/**
 * Frame predicates of the vrls cases: which decoded hub messages (lan-capture.ts) are of a
 * VRLS type (by name, lib/wire's VRLS_TYPE), from whom, in which order. The cases judge
 * with these; no case compares a bare type number.
 */

/** The VRRP/VRLS messages of a capture as a time-ordered log (findSequence's input). */
export function vrlsLog(ms: readonly LanMessage[]): WireMessage[] {
  return ms
    .filter((m) => m.kind === "vrrp")
    .map((m) => ({ at: m.tsMs, src: m.src, dst: m.dst, type: m.type }));
}

/** A step of a sequence: a message of `type`, from `src` when given. */
export function step(type: VrlsTypeName, src?: string): { type: number; src?: string } {
  return src === undefined ? { type: VRLS_TYPE[type] } : { type: VRLS_TYPE[type], src };
}

/** `types` in order in `log` (each from its sender when given), from `fromMs` on; null when absent. */
export function sequenceOf(
  log: readonly WireMessage[],
  steps: readonly { type: number; src?: string }[],
  fromMs = 0,
): WireMessage[] | null {
  return findSequence(log, steps, fromMs);
}

/** Messages of VRLS `type` (from `src` when given). */
export function ofType<M extends { type: number; src: string }>(
  log: readonly M[],
  type: VrlsTypeName,
  src?: string,
): M[] {
  return log.filter((m) => m.type === VRLS_TYPE[type] && (src === undefined || m.src === src));
}

/** VRRP/VRLS messages of a decoded capture by type name (and sender). */
export function vrlsMessages(ms: readonly LanMessage[], type: VrlsTypeName, src?: string): LanMessage[] {
  return ms.filter(
    (m) => m.kind === "vrrp" && m.type === VRLS_TYPE[type] && (src === undefined || m.src === src),
  );
}

/** ICMP information requests (15) / replies (16) of a decoded capture. */
export function icmpMessages(
  ms: readonly LanMessage[],
  type: "informationRequest" | "informationReply",
): LanMessage[] {
  return ms.filter((m) => m.kind === "icmp" && m.type === ICMP_TYPE[type]);
}

/**
 * Review rounds: a master asks each backup with its own flow rate request (7, unicast), so
 * one round is the 7s one sender sends within `withinMs` of the round's first; returns the
 * first 7 of each round.
 */
export function reviewRounds<M extends { type: number; src: string; at: number }>(
  log: readonly M[],
  withinMs: number,
): M[] {
  const rounds: M[] = [];
  for (const m of ofType(log, "flowRateRequest")) {
    const open = rounds.filter((x) => x.src === m.src).at(-1);
    if (!open || m.at - open.at >= withinMs) rounds.push(m);
  }
  return rounds;
}

export function isBroadcast(dst: string): boolean {
  return dst === "255.255.255.255" || dst.endsWith(".255");
}

/** Master-triggered review: the first flow rate request (7) from `fromMs` with no review request (6) since `fromMs`. */
export function voluntaryRequest(log: readonly WireMessage[], fromMs: number): WireMessage | undefined {
  return ofType(log, "flowRateRequest").find(
    (m) => m.at >= fromMs && !ofType(log, "reviewRequest").some((x) => x.at >= fromMs && x.at <= m.at),
  );
}

/**
 * Fig. 15 P25 on the wire: each allocation confirmation (4) of `backup` that the server
 * received (sent to it, or multicast) from `fromMs` on, and the server's transfer of it to
 * the master: the same message (sender and sequence) from the server's address to the
 * master's.
 */
export function transfersOf(
  ms: readonly LanMessage[],
  fromMs: number,
  who: { backup: string; server: string; master: string },
): { atMs: number; sequence: number | undefined; transferredAfterMs: number | null }[] {
  const confirmations = vrlsMessages(ms, "allocationConfirmation");
  const responses = confirmations.filter(
    (m) => m.src === who.backup && (m.dst === who.server || m.dst === VRRP_MULTICAST) && m.tsMs >= fromMs,
  );
  const copies = confirmations.filter(
    (m) => m.src === who.server && m.dst === who.master && m.sender === who.backup,
  );
  return responses.map((m) => {
    const copy = copies.find((c) => c.sequence === m.sequence && c.tsMs >= m.tsMs);
    return {
      atMs: m.tsMs,
      sequence: m.sequence,
      transferredAfterMs: copy ? Math.round((copy.tsMs - m.tsMs) * 10) / 10 : null,
    };
  });
}
