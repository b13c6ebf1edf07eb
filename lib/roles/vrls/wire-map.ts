/**
 * Maps the router core's messages (messages.ts) to lib/wire's VRLS codec (docs/wire.md,
 * "VRLS extension") and back. Epoch = the envelope's master epoch; version = the
 * allocation serial. Conditions travel as /32 or shorter prefixes, or hash buckets.
 * A confirmation (type 4) lists the conditions the sender holds or observes; which of
 * the two follows from the allocation (owner vs previous owner), so the receiver splits
 * them with the allocation it applied. Sequence information and exactly-once markers
 * (type 5) name every condition they cover with a "not found" entry, so a condition
 * without flows is covered too; long lists are split into self-contained parts.
 */
import type {
  SequenceEntry,
  VrlsBody,
  Condition as WireCondition,
  FlowMarker as WireMarker,
  VrlsMessage as WireMessage,
} from "../../wire/vrls.ts";
import { type Condition, conditionKey, conditionMatches, parseConditionKey } from "./conditions.ts";
import type { AllocationEntry, FlowMarker, VrlsMessage } from "./messages.ts";

export function toWireCondition(key: string): WireCondition {
  const c = parseConditionKey(key);
  if (!c) throw new Error(`not a condition key: ${key}`);
  switch (c.kind) {
    case "address":
      return { kind: "prefix", address: c.address, prefixLength: 32 };
    case "prefix":
      return { kind: "prefix", address: c.network, prefixLength: c.length };
    case "bucket":
      return { kind: "bucket", hashInput: c.over, bucketCount: c.of, bucket: c.index };
  }
}

export function fromWireCondition(c: WireCondition, bucketSeed: number): string {
  if (c.kind === "prefix") {
    return c.prefixLength === 32
      ? c.address
      : conditionKey(parseConditionKey(`${c.address}/${c.prefixLength}`)!);
  }
  return conditionKey({
    kind: "bucket",
    over: c.hashInput,
    index: c.bucket,
    of: c.bucketCount,
    seed: bucketSeed,
  });
}

/** "proto src:sport>dst:dport" (PacketSummary.flow) -> parts; ports absent for portless protocols. */
export function parseFlow(
  flow: string,
): { protocol: number; src: string; dst: string; sport: number; dport: number } | undefined {
  const m = /^(\d+) ([\d.]+)(?::(\d+))?>([\d.]+)(?::(\d+))?$/.exec(flow);
  if (!m) return undefined;
  return {
    protocol: Number(m[1]),
    src: m[2] ?? "",
    sport: Number(m[3] ?? 0),
    dst: m[4] ?? "",
    dport: Number(m[5] ?? 0),
  };
}

function flowText(protocol: number, src: string, sport: number, dst: string, dport: number): string {
  return protocol === 6 || protocol === 17
    ? `${protocol} ${src}:${sport}>${dst}:${dport}`
    : `${protocol} ${src}>${dst}`;
}

/** Core message -> wire body(ies) + master epoch. Markers may need several parts. */
export function toWire(m: VrlsMessage): { masterEpoch: number; body: VrlsBody }[] {
  switch (m.type) {
    case "response":
      return [{ masterEpoch: m.epoch, body: { type: 2, allocationSerial: m.version, state: "working" } }];
    case "allocation": {
      const groups = new Map<
        string,
        { router: string; previousRouter?: string; conditions: WireCondition[] }
      >();
      for (const e of m.entries) {
        const prev = e.previousOwner !== null && e.previousOwner !== e.owner ? e.previousOwner : undefined;
        const k = `${e.owner}|${prev ?? ""}`;
        let g = groups.get(k);
        if (!g) {
          g =
            prev === undefined
              ? { router: e.owner, conditions: [] }
              : { router: e.owner, previousRouter: prev, conditions: [] };
          groups.set(k, g);
        }
        g.conditions.push(toWireCondition(e.condition));
      }
      return [
        {
          masterEpoch: m.epoch,
          body: {
            type: 3,
            allocationSerial: m.version,
            mode: m.mode,
            timerDelayMs: 0,
            assignments: [...groups.values()],
          },
        },
      ];
    }
    case "confirmation": {
      const keys = [...new Set([...m.observing, ...m.holding])];
      const conditions = keys.map(toWireCondition);
      const body: Extract<VrlsBody, { type: 4 }> = {
        type: 4,
        allocationSerial: m.version,
        accepted: true,
        conditions,
      };
      if (m.done) body.done = true;
      const held = keys.flatMap((k, conditionIndex) =>
        (m.held?.[k] ?? []).map((identity) => ({ conditionIndex, packetId: BigInt(`0x${identity}`) })),
      );
      if (held.length > 0) body.held = held;
      return [{ masterEpoch: m.epoch, body }];
    }
    case "markers":
      return markerParts(m);
    case "reviewRequest":
      return [
        {
          masterEpoch: m.epoch,
          body: {
            type: 6,
            rateExceeded: true,
            overflowExceeded: false,
            totalRateBps: 0n,
            overflowCount: 0,
            timeUnitMs: 1000,
          },
        },
      ];
    case "rateRequest":
      return [{ masterEpoch: m.epoch, body: { type: 7, allocationSerial: 0, conditions: [] } }];
    case "registration":
      // The registered address is the sender's (the envelope's sender field).
      return [
        { masterEpoch: m.epoch, body: { type: 9, role: m.role, registeredAddress: "0.0.0.0", priority: 0 } },
      ];
    case "registrationAck":
      return [
        {
          masterEpoch: m.epoch,
          body: { type: 10, accepted: m.accepted, role: m.role, registeredAddress: m.member },
        },
      ];
    case "rateResponse":
      return [
        {
          masterEpoch: m.epoch,
          body: {
            type: 8,
            allocationSerial: 0,
            timeUnitMs: 1000,
            overflowCount: m.overflowsPerUnit,
            rates: m.rates.map((r) => ({
              condition: toWireCondition(r.condition),
              rateBps: BigInt(Math.round(r.bps)),
              overflows: 0,
            })),
          },
        },
      ];
  }
}

/** Entries per part so a part stays well inside a 1500-byte MTU. */
const MAX_ENTRIES_PER_PART = 36;

function markerParts(
  m: Extract<VrlsMessage, { type: "markers" }>,
): { masterEpoch: number; body: VrlsBody }[] {
  const conds = m.conditions.map((key) => ({ key, parsed: parseConditionKey(key) }));
  const byCondition = new Map<string, FlowMarker[]>(m.conditions.map((c) => [c, []]));
  for (const fm of m.markers) {
    const f = parseFlow(fm.flow);
    const c = f && conds.find((x) => x.parsed && conditionMatches(x.parsed as Condition, f.src, f.dst));
    if (c) byCondition.get(c.key)?.push(fm);
  }
  const parts: { sequences: SequenceEntry[]; markers: WireMarker[] }[] = [];
  let cur = { sequences: [] as SequenceEntry[], markers: [] as WireMarker[] };
  for (const [key, markers] of byCondition) {
    const size = 1 + markers.length;
    if (cur.sequences.length + cur.markers.length + size > MAX_ENTRIES_PER_PART && cur.sequences.length > 0) {
      parts.push(cur);
      cur = { sequences: [], markers: [] };
    }
    const condition = toWireCondition(key);
    cur.sequences.push({ condition, found: false });
    for (const fm of markers) {
      const f = parseFlow(fm.flow);
      if (!f) continue;
      if (fm.nextSeq !== undefined) {
        cur.sequences.push({
          condition,
          found: true,
          src: f.src,
          dst: f.dst,
          srcPort: f.sport,
          dstPort: f.dport,
          tcpSeq: fm.nextSeq,
        });
      }
      if (fm.identity !== undefined) {
        cur.markers.push({
          protocol: f.protocol,
          src: f.src,
          dst: f.dst,
          srcPort: f.sport,
          dstPort: f.dport,
          packetId: BigInt(`0x${fm.identity}`),
          packetCount: BigInt(fm.count),
        });
      }
    }
  }
  parts.push(cur);
  return parts.map((p, i) => ({
    masterEpoch: m.epoch,
    body: {
      type: 5,
      allocationSerial: m.version,
      part: i,
      parts: parts.length,
      sequences: p.sequences,
      markers: p.markers,
    },
  }));
}

/**
 * Wire message -> core message. `allocation` is the allocation this member applied (to
 * split a confirmation into observing / holding); returns undefined for types the core
 * does not take (registration, 9/10).
 */
export function fromWire(
  w: WireMessage,
  bucketSeed: number,
  allocation: { epoch: number; version: number; entries: readonly AllocationEntry[] },
): VrlsMessage | undefined {
  const epoch = w.masterEpoch;
  switch (w.type) {
    case 2:
      return { type: "response", priority: w.priority, epoch, version: w.allocationSerial };
    case 3: {
      const entries: AllocationEntry[] = [];
      for (const a of w.assignments) {
        for (const c of a.conditions) {
          const condition = fromWireCondition(c, bucketSeed);
          entries.push({ condition, owner: a.router, previousOwner: a.previousRouter ?? null });
        }
      }
      return { type: "allocation", epoch, version: w.allocationSerial, mode: w.mode, entries };
    }
    case 4: {
      const keys = w.conditions.map((c) => fromWireCondition(c, bucketSeed));
      const same = allocation.epoch === epoch && allocation.version === w.allocationSerial;
      const entryOf = new Map(allocation.entries.map((e) => [e.condition, e]));
      const observing: string[] = [];
      const holding: string[] = [];
      for (const k of keys) {
        const e = same ? entryOf.get(k) : undefined;
        if (e?.owner === w.sender) holding.push(k);
        else if (e?.previousOwner === w.sender) observing.push(k);
      }
      const message: Extract<VrlsMessage, { type: "confirmation" }> = {
        type: "confirmation",
        epoch,
        version: w.allocationSerial,
        observing,
        holding,
        done: w.done === true,
      };
      if (w.held && w.held.length > 0) {
        const held: Record<string, string[]> = {};
        for (const h of w.held) {
          const k = keys[h.conditionIndex] as string;
          const list = held[k] ?? [];
          list.push(h.packetId.toString(16).padStart(16, "0"));
          held[k] = list;
        }
        message.held = held;
      }
      return message;
    }
    case 5: {
      const conditions: string[] = [];
      const markers: FlowMarker[] = [];
      for (const s of w.sequences) {
        const key = fromWireCondition(s.condition, bucketSeed);
        if (!s.found) {
          if (!conditions.includes(key)) conditions.push(key);
        } else {
          markers.push({
            flow: flowText(6, s.src, s.srcPort, s.dst, s.dstPort),
            nextSeq: s.tcpSeq,
            count: 0,
          });
        }
      }
      for (const m of w.markers) {
        markers.push({
          flow: flowText(m.protocol, m.src, m.srcPort, m.dst, m.dstPort),
          identity: m.packetId.toString(16).padStart(16, "0"),
          count: Number(m.packetCount),
        });
      }
      return { type: "markers", epoch, version: w.allocationSerial, conditions, markers };
    }
    case 6:
      return { type: "reviewRequest", epoch };
    case 7:
      return { type: "rateRequest", epoch };
    case 8:
      return {
        type: "rateResponse",
        epoch,
        rates: w.rates.map((r) => ({
          condition: fromWireCondition(r.condition, bucketSeed),
          bps: Number(r.rateBps),
        })),
        overflowsPerUnit: w.overflowCount,
      };
    case 9:
      return { type: "registration", epoch, role: w.role };
    case 10:
      return {
        type: "registrationAck",
        epoch,
        accepted: w.accepted,
        role: w.role,
        member: w.registeredAddress,
      };
    default:
      return undefined;
  }
}
