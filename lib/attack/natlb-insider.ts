/**
 * Issue 15, an insider on the NAT-LB control LAN: someone who has the lab's key (the natlb
 * section's control.key, as the agents read it) seals valid-looking control messages, of
 * every type, for a VIP no balancer serves. Used by the live attack (natlb-attack.ts) and
 * the channel's regression test (test/natlb-control.test.ts).
 */
import { type ConnEntry, encodeNatlb } from "../wire/natlb.ts";
import { encodeLoadReport } from "../wire/natlb-status.ts";

/** A VIP no balancer of the lab serves (TEST-NET-2; the labs' VIPs are elsewhere). */
export const UNKNOWN_VIP = "198.51.100.99";
/**
 * The insider's sequences: above any genuine one (the channels count from the ms clock x
 * 65,536, about 2^57), so a receiver that took one would refuse the genuine sender's next
 * messages as replays.
 */
export const INSIDER_SEQUENCE_BASE = 0xffff_ffff_0000_0000n;

/** One kind per message type (1-7). */
export const INSIDER_KINDS = [
  "insider-transition",
  "insider-route-switch",
  "insider-transfer",
  "insider-end-switch",
  "insider-push",
  "insider-load-report",
  "insider-ack",
] as const;
export type InsiderKind = (typeof INSIDER_KINDS)[number];

/**
 * One datagram of an insider holding the lab's key: correctly sealed, naming `vip` (a VIP
 * the lab does not have) in its header (types 1-4), in its entry (3, 5) or in its load
 * record (7); the ack (6) answers a request nobody sent. The receivers must refuse each
 * (unknown-vip, unsolicited-ack) before their replay window and act on none.
 */
export function insiderDatagram(
  kind: InsiderKind,
  o: {
    key: Uint8Array;
    /** The controller's id (types 1-4 come from it). */
    controller: number;
    /** A balancer id the receiver takes pushes, reports and acks from (not the receiver's own). */
    balancer: number;
    /** The other balancer (the move's destination). */
    other: number;
    sequence: bigint;
    vip?: string;
  },
): Uint8Array {
  const vip = o.vip ?? UNKNOWN_VIP;
  const head = { sender: o.controller, sequence: o.sequence, moveId: 7 };
  const entry: ConnEntry = {
    protocol: 6,
    tcpState: "ESTABLISHED",
    status: 6,
    client: { address: "203.0.113.77", port: 40000 },
    vip: { address: vip, port: 80 },
    server: { address: "192.0.2.77", port: 80 },
    timeoutSeconds: 300,
    mark: 0,
    flowControl: { origSeq: 0, replySeq: 0, origWindow: 0, replyWindow: 0, origWscale: 0, replyWscale: 0 },
    removed: false,
  };
  const move = { vip, from: o.balancer, to: o.other };
  switch (kind) {
    case "insider-transition":
      return encodeNatlb({ ...head, type: 1, ...move, enter: true }, o.key);
    case "insider-route-switch":
      return encodeNatlb({ ...head, type: 2, ...move, method: "garp" }, o.key);
    case "insider-transfer":
      return encodeNatlb({ ...head, type: 3, ...move, part: 0, parts: 1, entries: [entry] }, o.key);
    case "insider-end-switch":
      return encodeNatlb({ ...head, type: 4, ...move, entriesTransferred: 1 }, o.key);
    case "insider-push":
      return encodeNatlb(
        {
          ...head,
          sender: o.balancer,
          moveId: 0,
          type: 5,
          balancer: o.balancer,
          kind: "full",
          generation: 0x7fff_fff0,
          part: 0,
          parts: 1,
          entries: [entry],
        },
        o.key,
      );
    case "insider-load-report":
      return encodeLoadReport(
        {
          sender: o.balancer,
          sequence: o.sequence,
          balancer: o.balancer,
          invalidRejected: 0n,
          vips: [{ vip, owned: true, transition: false, packets: 1n, bytes: 100n }],
        },
        o.key,
      );
    case "insider-ack":
      return encodeNatlb(
        { ...head, sender: o.balancer, moveId: 0, type: 6, inReplyTo: o.sequence, status: "ok", detail: 0 },
        o.key,
      );
  }
}
