// Pure logic of the reference VRLS router: conditions, allocation, discovery, hand-off decisions, config.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocateByRate, allocateEqualCounts, movedConditions } from "../lib/roles/vrls/allocation.ts";
import { bucketOf, conditionKey, conditionMatches, parseConditionKey } from "../lib/roles/vrls/conditions.ts";
import { coreOptionsFor, loadVrlsConfig } from "../lib/roles/vrls/config.ts";
import { Discovery } from "../lib/roles/vrls/discovery.ts";
import {
  decideExactlyOnce,
  decideSequenceNumber,
  FlowObserver,
  type PacketInfo,
  seqLt,
} from "../lib/roles/vrls/handoff.ts";
import { jhash } from "../lib/roles/vrls/jhash.ts";
import { ConfigError } from "../lib/topology/errors.ts";
import { parseTopologyText } from "../lib/topology/load.ts";

describe("conditions", () => {
  it("round-trips keys and matches addresses, prefixes and buckets", () => {
    const keys = ["198.18.1.10", "198.18.1.0/28", "src#3/16@0", "src+dst#0/4@7"];
    for (const k of keys) expect(conditionKey(parseConditionKey(k)!)).toBe(k);
    expect(parseConditionKey("198.18.1.300")).toBeUndefined();
    expect(parseConditionKey("src#16/16@0")).toBeUndefined();
    expect(conditionKey(parseConditionKey("198.18.1.77/28")!)).toBe("198.18.1.64/28");
    expect(conditionMatches({ kind: "prefix", network: "198.18.1.0", length: 28 }, "198.18.1.15", "x")).toBe(
      true,
    );
    expect(conditionMatches({ kind: "prefix", network: "198.18.1.0", length: 28 }, "198.18.1.16", "x")).toBe(
      false,
    );
    const b = bucketOf("src", "198.18.1.10", "198.18.3.5", 16, 0);
    expect(
      conditionMatches({ kind: "bucket", over: "src", index: b, of: 16, seed: 0 }, "198.18.1.10", "1.1.1.1"),
    ).toBe(true);
  });

  it("jhash matches lookup3 reference values (empty key, seed 0 -> 0xdeadbeef)", () => {
    expect(jhash(new Uint8Array(0), 0)).toBe(0xdeadbeef);
    // Every bucket gets used by a /24 of sources.
    const seen = new Set<number>();
    for (let i = 1; i < 255; i++) seen.add(bucketOf("src", `198.18.1.${i}`, "0.0.0.0", 16, 0));
    expect(seen.size).toBe(16);
  });
});

describe("allocation", () => {
  const six = ["198.18.1.11", "198.18.1.12", "198.18.1.13", "198.18.1.14", "198.18.3.15", "198.18.3.16"];

  it("seed Fig. 7: six end systems over two routers -> three each; over three -> two each", () => {
    const two = allocateEqualCounts({ conditions: six, members: ["a", "b"] });
    expect([...two.values()].filter((m) => m === "a")).toHaveLength(3);
    const three = allocateEqualCounts({ conditions: six, members: ["a", "b", "c"] });
    for (const m of ["a", "b", "c"]) expect([...three.values()].filter((x) => x === m)).toHaveLength(2);
  });

  it("property: counts differ by at most one, every condition placed, and few moves from a balanced start", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        (n, m1, m2) => {
          const conds = Array.from({ length: n }, (_, i) => `198.18.1.${i + 1}`);
          const before = allocateEqualCounts({
            conditions: conds,
            members: Array.from({ length: m1 }, (_, i) => `m${i}`),
          });
          const members = Array.from({ length: m2 }, (_, i) => `m${i}`);
          const after = allocateEqualCounts({ conditions: conds, members, current: before });
          expect(after.size).toBe(n);
          const counts = members.map((m) => [...after.values()].filter((x) => x === m).length);
          expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
          // Stable: re-running on the result moves nothing.
          expect(
            movedConditions(after, allocateEqualCounts({ conditions: conds, members, current: after })),
          ).toEqual([]);
          // Minimal movement: only conditions of removed members, plus what the new balance needs.
          const moved = movedConditions(before, after).length;
          const lowerBound = [...before.values()].filter((m) => !members.includes(m)).length;
          const perMember = Math.ceil(n / m2);
          expect(moved).toBeLessThanOrEqual(lowerBound + perMember * Math.max(0, m2 - m1) + 1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("by flow rate: biggest first to the least loaded", () => {
    const rates = new Map([
      ["a1", 900],
      ["a2", 500],
      ["a3", 400],
      ["a4", 100],
    ]);
    const r = allocateByRate({ conditions: [...rates.keys()], members: ["x", "y"], rateBps: rates });
    expect(Object.fromEntries(r)).toEqual({ a1: "x", a2: "y", a3: "y", a4: "x" });
  });
});

describe("discovery (seed Fig. 9B)", () => {
  it("learns end systems in the configured subnets only, records how, ignores VIP and members", () => {
    const d = new Discovery(
      [
        { cidr: "198.18.1.0/24", via: null },
        { cidr: "198.18.3.0/24", via: "198.18.1.4" },
      ],
      ["198.18.1.1", "198.18.1.2"],
    );
    expect(d.learn("198.18.1.11", "passive", 1)).toBe(true);
    expect(d.learn("198.18.1.11", "icmp-info", 2)).toBe(false);
    expect(d.learn("198.18.3.15", "icmp-info", 3)).toBe(true);
    expect(d.learn("198.18.1.1", "passive", 4)).toBe(false);
    expect(d.learn("198.18.1.255", "passive", 4)).toBe(false);
    expect(d.learn("203.0.113.9", "passive", 4)).toBe(false);
    expect(d.ignored).toBe(3);
    const list = d.list();
    expect(list.find((e) => e.address === "198.18.1.11")).toMatchObject({
      learnedBy: "icmp-info",
      firstSeen: 1,
      lastSeen: 2,
    });
    expect(list.find((e) => e.address === "198.18.3.15")).toMatchObject({
      node: "198.18.1.4",
      subnet: "198.18.3.0/24",
    });
    expect(d.expire(100, 50).sort()).toEqual(["198.18.1.11", "198.18.3.15"]);
  });
});

const udp = (id: number, flow: string, identity = `i${id}`): PacketInfo => ({
  id,
  flow,
  identity,
  protocol: 17,
});
const tcp = (id: number, flow: string, seq: number, len: number, ack = 1): PacketInfo => ({
  id,
  flow,
  identity: `t${id}`,
  protocol: 6,
  tcp: { seq, ack, payloadLength: len, syn: false, fin: false },
});

describe("hand-off decisions", () => {
  it("exactly-once: drop through the marker, release after; no marker or marker not held -> release all", () => {
    const held = [udp(1, "f"), udp(2, "g"), udp(3, "f"), udp(4, "f"), udp(5, "h"), udp(6, "g")];
    const d = decideExactlyOnce(held, [
      { flow: "f", identity: "i3", count: 9 },
      { flow: "h", identity: "gone", count: 2 },
    ]);
    expect(d.drop).toEqual([1, 3]);
    expect(d.release).toEqual([2, 4, 5, 6]);
  });

  it("exactly-once with a prehold: packets held before the old owner observed", () => {
    // Held 1-4 before the boundary, 5-8 after. Flow f: the old owner forwarded through 2 and
    // was stopped before its host reached 3 and 4 (it blocked them): released, not lost.
    // Flow g: no marker (the old owner forwarded none while observing): 4 may be its kernel's.
    const held = [udp(1, "f"), udp(2, "f"), udp(3, "f"), udp(4, "g"), udp(5, "f"), udp(6, "g"), udp(7, "h")];
    const pre = new Set([1, 2, 3, 4]);
    const d = decideExactlyOnce(
      held,
      [
        { flow: "f", identity: "i2", count: 5 },
        { flow: "h", identity: "gone", count: 1 },
      ],
      pre,
    );
    expect(d.drop).toEqual([1, 2, 4]);
    expect(d.release).toEqual([3, 5, 6, 7]);
    // Without the boundary (no prehold), the unmarked flow's packets all go out.
    expect(decideExactlyOnce(held, [{ flow: "f", identity: "i2", count: 5 }]).release).toEqual([
      3, 4, 5, 6, 7,
    ]);
    // sequence-number: a TCP flow without an entry keeps only what came after the boundary.
    const seq = decideSequenceNumber([tcp(1, "t", 10, 10), tcp(2, "t", 20, 10)], [], new Set([1]));
    expect(seq).toEqual({ drop: [1], release: [2] });
  });

  it("sequence-number (Fig. 10C): TCP before the reported number dropped, rest released; UDP discarded", () => {
    const held = [
      tcp(1, "f", 1000, 100),
      tcp(2, "f", 1100, 100),
      tcp(3, "f", 1200, 100),
      udp(4, "u"),
      tcp(5, "g", 7, 10),
    ];
    const d = decideSequenceNumber(held, [{ flow: "f", nextSeq: 1200, lastAck: 1, count: 2 }]);
    expect(d.drop).toEqual([1, 2, 4]);
    expect(d.release).toEqual([3, 5]);
    // Across the 32-bit wrap.
    const wrap = decideSequenceNumber(
      [tcp(1, "f", 0xfffffff0, 16), tcp(2, "f", 0, 16)],
      [{ flow: "f", nextSeq: 0, lastAck: 1, count: 1 }],
    );
    expect(wrap).toEqual({ drop: [1], release: [2] });
    // A bare ACK already forwarded is dropped; a newer one released.
    const acks = decideSequenceNumber(
      [tcp(1, "f", 50, 0, 10), tcp(2, "f", 50, 0, 11)],
      [{ flow: "f", nextSeq: 50, lastAck: 10, count: 1 }],
    );
    expect(acks).toEqual({ drop: [1], release: [2] });
    expect(seqLt(0xffffffff, 0)).toBe(true);
  });

  it("observer keeps the last packet per flow and the highest TCP point", () => {
    const o = new FlowObserver();
    o.forwarded(tcp(1, "f", 100, 10, 5));
    o.forwarded(tcp(2, "f", 110, 10, 6));
    o.forwarded(tcp(3, "f", 100, 10, 4)); // retransmission
    o.forwarded(udp(4, "u"));
    expect(o.markers("exactly-once")).toEqual([
      { flow: "f", identity: "t3", count: 3 },
      { flow: "u", identity: "i4", count: 1 },
    ]);
    expect(o.markers("sequence-number")).toEqual([{ flow: "f", nextSeq: 120, lastAck: 6, count: 3 }]);
  });

  it("property: observer + exactly-once decision forward every packet exactly once for any stop point", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 60 }),
        fc.nat(),
        fc.nat(),
        (flows, holdSeed, stopSeed) => {
          const packets = flows.map((f, i) => udp(i, f));
          const holdStart = holdSeed % packets.length; // new owner holds from here
          const stop = holdStart + (stopSeed % (packets.length - holdStart + 1)); // old owner forwards [0, stop)
          const observer = new FlowObserver();
          const forwarded = new Map<number, number>();
          for (const p of packets.slice(0, stop)) {
            forwarded.set(p.id, 1);
            if (p.id >= 0) observer.forwarded(p);
          }
          const held = packets.slice(holdStart);
          const d = decideExactlyOnce(held, observer.markers("exactly-once"));
          for (const id of d.release) forwarded.set(id, (forwarded.get(id) ?? 0) + 1);
          for (const p of packets) expect(forwarded.get(p.id)).toBe(1);
        },
      ),
      { numRuns: 300 },
    );
  });
});

const lab = (vrls: string) => `
lab: fig7
segments:
  lan: { hub: true }
hosts:
  ra: { interfaces: { eth0: { segment: lan, addresses: [198.18.1.2/24] } } }
  rb: { interfaces: { eth0: { segment: lan, addresses: [198.18.1.3/24] } } }
${vrls}`;

describe("vrls: section of a lab file", () => {
  it("parses a virtual router and resolves member addresses", () => {
    const loaded = parseTopologyText(
      lab(`vrls:
  routers:
    vr1:
      vrid: 51
      interface: eth0
      virtualAddress: 198.18.1.1/24
      advertIntervalMs: 10
      mode: sequence-number
      key: "lab-secret-1"
      members: [{ host: ra, priority: 200 }, { host: rb, priority: 100 }]
      subnets: [{ cidr: 198.18.1.0/24 }, { cidr: 198.18.3.0/24, via: 198.18.1.4 }]
`),
    );
    const [vr] = loadVrlsConfig(loaded);
    expect(vr?.members.map((m) => m.address)).toEqual(["198.18.1.2", "198.18.1.3"]);
    const o = coreOptionsFor(vr!, "rb");
    expect(o).toMatchObject({
      self: "198.18.1.3",
      priority: 100,
      advertIntervalCs: 1,
      mode: "sequence-number",
    });
    expect(o.subnets[1]).toEqual({ cidr: "198.18.3.0/24", via: "198.18.1.4" });
  });

  it("names file, path, line and value for bad input", () => {
    const text = lab(`vrls:
  routers:
    vr1:
      vrid: 51
      interface: eth0
      virtualAddress: 198.18.1.1/24
      advertIntervalMs: 15
      key: "lab-secret-1"
      members: [{ host: ra, priority: 200 }, { host: rz, priority: 100 }]
      subnets: [{ cidr: 198.18.1.0/24 }]
`);
    let err: unknown;
    try {
      loadVrlsConfig(parseTopologyText(text, "labs/x.yaml"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(
      /labs\/x\.yaml:\d+:\d+: vrls\.routers\.vr1\.advertIntervalMs: must be a multiple of 10 ms.*15/,
    );
    const text2 = text.replace("advertIntervalMs: 15", "advertIntervalMs: 20");
    expect(() => loadVrlsConfig(parseTopologyText(text2, "labs/x.yaml"))).toThrow(
      /labs\/x\.yaml:\d+:\d+: vrls\.routers\.vr1\.members\[1\]\.host: no host named "rz"/,
    );
  });
});
