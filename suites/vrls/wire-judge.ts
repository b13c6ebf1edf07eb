import { PcapReader } from "../../lib/traffic/pcap-reader.ts";
import {
  type Condition,
  decodeEthernet,
  decodeIpv4,
  decodeVrls,
  ETHERTYPE,
  IP_PROTOCOL,
  VRLS_TYPE,
  type VrlsMessage,
} from "../../lib/wire/index.ts";

/**
 * Wire judgements of the vrls cases that need the messages' bodies, not only their types:
 * every VRLS message of a capture decoded and authenticated with lib/wire (decodeVrls,
 * the virtual router's key), and the forwarded datagrams of a member's far-side capture.
 *  - timer mode (VRLS-HANDOFF-TMR-001): per hand-off on the wire (an allocation, type 3,
 *    naming the new owner with a previous router), the new owner's first forwarded packet
 *    of the condition against the moment the seed's delay starts (the allocation's
 *    arrival at the new owner);
 *  - reallocation by rate (VRLS-REVIEW-003): the order of conditions in the reallocation
 *    (type 3) after a review against the rates the backups reported (type 8).
 */

export interface DecodedMessage {
  tsMs: number;
  src: string;
  dst: string;
  message: VrlsMessage;
}

/** Every VRLS message (types 2-10) of a capture that decodes and authenticates with `key`. */
export async function decodeVrlsCapture(path: string, key: string): Promise<DecodedMessage[]> {
  const keyBytes = new TextEncoder().encode(key);
  const out: DecodedMessage[] = [];
  for await (const rec of PcapReader.fromFile(path)) {
    const eth = decodeEthernet(rec.data);
    if (!eth.ok || eth.value.etherType !== ETHERTYPE.ipv4) continue;
    const ip = decodeIpv4(eth.value.payload);
    if (!ip.ok || ip.value.protocol !== IP_PROTOCOL.vrrp) continue;
    if (((ip.value.payload[0] ?? 0) & 0x0f) === VRLS_TYPE.advertisement) continue;
    const m = decodeVrls(ip.value.payload, { key: keyBytes });
    if (m.ok) out.push({ tsMs: rec.tsMs, src: ip.value.src, dst: ip.value.dst, message: m.value });
  }
  return out;
}

/** A condition as text (evidence, map keys). */
export function conditionText(c: Condition): string {
  return c.kind === "prefix"
    ? `${c.address}/${c.prefixLength}`
    : `${c.hashInput}#${c.bucket}/${c.bucketCount}`;
}

function ipToInt(a: string): number {
  return a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

/** Does a source address fall in a prefix condition? (Bucket conditions: not judged here.) */
function inPrefix(src: string, c: Condition): boolean {
  if (c.kind !== "prefix") return false;
  const span = 2 ** (32 - c.prefixLength);
  return Math.floor(ipToInt(src) / span) === Math.floor(ipToInt(c.address) / span);
}

/** The first copy of each allocation (type 3) by serial: retransmissions are the same allocation. */
function firstAllocations(ms: readonly DecodedMessage[]): (DecodedMessage & { message: { type: 3 } })[] {
  const seen = new Set<number>();
  const out: (DecodedMessage & { message: { type: 3 } })[] = [];
  for (const m of ms) {
    if (m.message.type !== VRLS_TYPE.allocation) continue;
    if (seen.has(m.message.allocationSerial)) continue;
    seen.add(m.message.allocationSerial);
    out.push(m as DecodedMessage & { message: { type: 3 } });
  }
  return out;
}

/** Source address and time of each forwarded IPv4 datagram of a capture. */
export async function forwardedPackets(
  path: string,
): Promise<{ packets: { tsMs: number; src: string }[]; undecodable: number }> {
  const packets: { tsMs: number; src: string }[] = [];
  let undecodable = 0;
  for await (const rec of PcapReader.fromFile(path)) {
    const eth = decodeEthernet(rec.data);
    if (!eth.ok || eth.value.etherType !== ETHERTYPE.ipv4) continue;
    const ip = decodeIpv4(eth.value.payload);
    if (ip.ok) packets.push({ tsMs: rec.tsMs, src: ip.value.src });
    else undecodable++;
  }
  return { packets, undecodable };
}

export interface TimerHandoff {
  serial: number;
  condition: string;
  from: string;
  to: string;
  /** The allocation on the new owner's LAN interface (where the seed's delay starts). */
  allocationAtMs: number;
  /** The new owner's allocation confirmation (type 4) of this serial, after the allocation. */
  confirmationAfterMs: number | null;
  /** The new owner's first forwarded packet of the condition after the allocation (its far interface). */
  firstForwardAfterMs: number | null;
}

/**
 * Timer mode on the new owner's own wire (both captures on the new owner, one clock):
 * `lan` the VRLS messages on its LAN interface, `far` what it forwarded on its far
 * interface. One entry per condition the allocations hand over to `member` from another
 * router (the type 3's previous-router field), up to `untilMs` (a later hand-off of the same
 * condition ends the search for its first packet).
 */
export function timerHandoffs(
  member: string,
  lan: readonly DecodedMessage[],
  far: readonly { tsMs: number; src: string }[],
): TimerHandoff[] {
  const allocations = firstAllocations(lan);
  const out: TimerHandoff[] = [];
  for (const [i, a] of allocations.entries()) {
    for (const asg of a.message.assignments) {
      if (asg.router !== member || asg.previousRouter === undefined || asg.previousRouter === member)
        continue;
      for (const c of asg.conditions) {
        const text = conditionText(c);
        // The next allocation that moves this condition away again bounds the search.
        const next = allocations
          .slice(i + 1)
          .find((b) =>
            b.message.assignments.some(
              (x) => x.router !== member && x.conditions.some((y) => conditionText(y) === text),
            ),
          );
        const first = far.find(
          (p) => p.tsMs > a.tsMs && (next === undefined || p.tsMs < next.tsMs) && inPrefix(p.src, c),
        );
        const conf = lan.find(
          (m) =>
            m.src === member &&
            m.tsMs >= a.tsMs &&
            m.message.type === VRLS_TYPE.allocationConfirmation &&
            m.message.allocationSerial === a.message.allocationSerial,
        );
        out.push({
          serial: a.message.allocationSerial,
          condition: text,
          from: asg.previousRouter,
          to: member,
          allocationAtMs: a.tsMs,
          confirmationAfterMs: conf ? round1(conf.tsMs - a.tsMs) : null,
          firstForwardAfterMs: first ? round1(first.tsMs - a.tsMs) : null,
        });
      }
    }
  }
  return out;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

export interface RateOrderCheck {
  /** The review round: its first flow rate request (type 7). */
  requestAtMs: number;
  /** The reallocation (type 3) that followed the round's responses, when there was one. */
  allocationSerial: number | null;
  allocationAtMs: number | null;
  /** Rates reported in the round's flow rate responses (type 8), bit/s by condition. */
  reported: number;
  /**
   * Per router of the reallocation: the conditions with a reported rate in the order the
   * allocation lists them, with their rates.
   */
  orderByRouter: { router: string; previousRouter?: string; rates: number[] }[];
  /** Places where a condition listed later has a higher reported rate than one before it. */
  inversions: { router: string; before: string; beforeBps: number; after: string; afterBps: number }[];
}

/**
 * Seed, allocation reviewing: "place each condition in order of the flow rate, and then
 * allocate to each router substantially equal amount out of the total flow rate". For each
 * review round on the wire (7 -> 8 ... -> 3 from `master`): the reallocation's condition lists
 * (per router, in the order the allocation names them: the order of placement) against the
 * rates the backups reported in their 8s. Biggest first: within each list, no condition
 * comes after one with a lower reported rate. The master's own conditions have no rate on
 * the wire and are left out of the comparison.
 */
export function rateOrder(
  ms: readonly DecodedMessage[],
  master: string,
  collectMs: number,
): RateOrderCheck[] {
  const sevens = ms.filter((m) => m.src === master && m.message.type === VRLS_TYPE.flowRateRequest);
  // Rounds: a master's 7s to each backup within collectMs of the round's first.
  const rounds: DecodedMessage[] = [];
  for (const s of sevens) if (!rounds.length || s.tsMs - rounds.at(-1)!.tsMs >= collectMs) rounds.push(s);
  return rounds.map((r, i) => {
    const end = rounds[i + 1]?.tsMs ?? Number.POSITIVE_INFINITY;
    const eights = ms.filter(
      (m) =>
        m.message.type === VRLS_TYPE.flowRateResponse && m.dst === master && m.tsMs >= r.tsMs && m.tsMs < end,
    );
    // The master decides when every 8 is in (or collectMs passed): its next allocation is
    // the reallocation, if it reallocates at all (within collectMs + 1 s of the last 8).
    const lastEight = eights.at(-1)?.tsMs ?? r.tsMs;
    const alloc = firstAllocations(ms).find(
      (m) => m.src === master && m.tsMs > lastEight && m.tsMs < Math.min(end, lastEight + collectMs + 1000),
    );
    const rates = new Map<string, number>();
    for (const e of eights)
      if (e.message.type === VRLS_TYPE.flowRateResponse)
        for (const x of e.message.rates) rates.set(conditionText(x.condition), Number(x.rateBps));
    const orderByRouter: RateOrderCheck["orderByRouter"] = [];
    const inversions: RateOrderCheck["inversions"] = [];
    if (alloc)
      for (const asg of alloc.message.assignments) {
        const listed = asg.conditions.map(conditionText).filter((c) => rates.has(c));
        orderByRouter.push({
          router: asg.router,
          ...(asg.previousRouter !== undefined ? { previousRouter: asg.previousRouter } : {}),
          rates: listed.map((c) => rates.get(c)!),
        });
        for (let k = 1; k < listed.length; k++) {
          const before = listed[k - 1]!;
          const after = listed[k]!;
          if (rates.get(after)! > rates.get(before)!)
            inversions.push({
              router: asg.router,
              before,
              beforeBps: rates.get(before)!,
              after,
              afterBps: rates.get(after)!,
            });
        }
      }
    return {
      requestAtMs: r.tsMs,
      allocationSerial: alloc?.message.allocationSerial ?? null,
      allocationAtMs: alloc?.tsMs ?? null,
      reported: rates.size,
      orderByRouter,
      inversions,
    };
  });
}
