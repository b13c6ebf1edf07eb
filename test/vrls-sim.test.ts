// The reference VRLS protocol (RouterCore: RFC 5798 + seed types 2-5) over a simulated hub LAN
// with delayed and lost control messages: election, allocation, every hand-off mode, failover.
import { describe, expect, it } from "vitest";
import type { HandoffMode } from "../lib/roles/vrls/messages.ts";
import type { RouterCoreOptions } from "../lib/roles/vrls/router-core.ts";
import { masterDownIntervalMs } from "../lib/roles/vrls/timers.ts";
import { LanSimulation, mulberry32, type SimFlow } from "./vrls-simulation.ts";

const members = [
  { id: "198.18.1.2", priority: 200 },
  { id: "198.18.1.3", priority: 150 },
  { id: "198.18.1.4", priority: 100 },
];
// Seed Fig. 7: four end systems on the LAN, two behind router C.
const endSystems = ["198.18.1.11", "198.18.1.12", "198.18.1.13", "198.18.1.14", "198.18.3.15", "198.18.3.16"];

function routers(n: number, mode: HandoffMode, advertIntervalCs = 1): RouterCoreOptions[] {
  const ms = members.slice(0, n);
  return ms.map((m) => ({
    vrid: 51,
    self: m.id,
    priority: m.priority,
    advertIntervalCs,
    preempt: true,
    virtualAddresses: ["198.18.1.1"],
    members: ms,
    mode,
    timerDelayMs: 20,
    retryMs: 5,
    maxRetries: 40,
    responseTimeoutMs: advertIntervalCs * 40 + 20,
    discoveryMs: 50,
    infoRequestIntervalMs: 0,
    subnets: [
      { cidr: "198.18.1.0/24", via: null },
      { cidr: "198.18.3.0/24", via: "198.18.1.5" },
    ],
    conditions: { kind: "address" },
  }));
}

function flows(): SimFlow[] {
  // One UDP and one TCP flow per end system, 2 ms apart each (500 pps per flow).
  return endSystems.flatMap((src, i) => [
    { src, dst: "198.18.2.10", protocol: 17 as const, sport: 10000 + i, dport: 9000, periodMs: 2 },
    { src, dst: "198.18.2.10", protocol: 6 as const, sport: 20000 + i, dport: 9001, periodMs: 2 },
  ]);
}

function settle(sim: LanSimulation, limitMs: number): void {
  const end = sim.now + limitMs;
  while (sim.now < end) {
    sim.runUntil(sim.now + 2);
    const m = sim.master();
    if (m && !m.core.master.busy) return;
  }
  throw new Error(`did not settle within ${limitMs} ms`);
}

function perProtocol(sim: LanSimulation, from: number, to: number) {
  const out = { udp: { sent: 0, lost: 0, dup: 0 }, tcp: { sent: 0, lost: 0, dup: 0 } };
  const fl = flows();
  for (const p of sim.packets) {
    if (p.at < from || p.at >= to) continue;
    const k = fl[p.flow]?.protocol === 6 ? out.tcp : out.udp;
    k.sent++;
    if (p.forwards.length === 0) k.lost++;
    if (p.forwards.length > 1) k.dup += p.forwards.length - 1;
  }
  return out;
}

describe("VRLS protocol over a simulated hub LAN", () => {
  for (const n of [2, 3]) {
    it(`${n} members: the highest priority is master, end systems split equally, each packet forwarded once`, () => {
      const sim = new LanSimulation({
        routers: routers(n, "exactly-once"),
        flows: flows(),
        minDelayMs: 0.05,
        maxDelayMs: 1,
        lossRate: 0,
        seed: n,
      });
      sim.start();
      sim.runUntil(100);
      const master = sim.master();
      expect(master?.core.opts.self).toBe("198.18.1.2");
      const firstMasterAt = 40; // Master_Down_Interval at 10 ms is ~37 ms
      settle(sim, 1000);
      const t0 = sim.now;
      sim.runUntil(t0 + 500);
      const snap = master?.core.snapshot(sim.now);
      const owners = Object.values(snap?.master?.allocation ?? {});
      expect(owners).toHaveLength(6);
      for (const m of members.slice(0, n)) expect(owners.filter((o) => o === m.id)).toHaveLength(6 / n);
      expect(snap?.endSystems.map((e) => e.address).sort()).toEqual([...endSystems].sort());
      // Every packet since the master was elected, through discovery and the initial hand-off.
      const t = sim.tally(firstMasterAt, sim.now - 5);
      expect(t.lost).toBe(0);
      expect(t.duplicated).toBe(0);
      // Attribution matches the allocation: each end system's packets after settling come from its owner.
      for (const p of sim.packets.filter((x) => x.at > t0 && x.at < sim.now - 5)) {
        const src = flows()[p.flow]?.src ?? "";
        expect(p.forwards).toEqual([snap?.master?.allocation[src]]);
      }
    });
  }

  const expectations: Record<HandoffMode, (r: ReturnType<typeof perProtocol>) => void> = {
    "exactly-once": (r) => {
      expect(r.udp).toMatchObject({ lost: 0, dup: 0 });
      expect(r.tcp).toMatchObject({ lost: 0, dup: 0 });
    },
    "sequence-number": (r) => {
      expect(r.tcp).toMatchObject({ lost: 0, dup: 0 });
      expect(r.udp.dup).toBe(0);
    },
    timer: (r) => {
      expect(r.udp.dup).toBe(0);
      expect(r.tcp.dup).toBe(0);
      expect(r.udp.lost + r.tcp.lost).toBeGreaterThan(0); // the seed's known weakness, visible
    },
  };

  for (const mode of ["exactly-once", "sequence-number", "timer"] as const) {
    it(`${mode}: 200 reallocations with 2% control-message loss`, () => {
      const sim = new LanSimulation({
        routers: routers(3, mode),
        flows: flows(),
        minDelayMs: 0.05,
        maxDelayMs: 1.5,
        lossRate: 0.02,
        seed: 7,
      });
      sim.start();
      settle(sim, 2000);
      const t0 = sim.now;
      const rnd = mulberry32(42);
      let done = 0;
      for (let i = 0; i < 200; i++) {
        const master = sim.master();
        if (!master) throw new Error("no master");
        const alloc = master.core.master.allocationInForce;
        const cond = endSystems[Math.floor(rnd() * endSystems.length)] as string;
        const others = members
          .slice(0, 3)
          .map((m) => m.id)
          .filter((m) => m !== alloc.get(cond));
        sim.reallocate(new Map([[cond, others[Math.floor(rnd() * others.length)] as string]]));
        settle(sim, 2000);
        sim.runUntil(sim.now + 3);
        done++;
      }
      sim.runUntil(sim.now + 50);
      expect(done).toBe(200);
      expect(sim.master()?.core.master.completedAllocations).toBeGreaterThanOrEqual(201);
      expect(sim.controlLost).toBeGreaterThan(0);
      const r = perProtocol(sim, t0, sim.now - 5);
      console.log(
        mode,
        JSON.stringify(r),
        sim.controlMessages,
        sim.controlLost,
        sim.master()?.core.master.completedAllocations,
      );
      expectations[mode](r);
    });
  }

  it("master killed: a backup takes over within Master_Down_Interval; only the dead member's end systems pause", () => {
    const sim = new LanSimulation({
      routers: routers(3, "exactly-once"),
      flows: flows(),
      minDelayMs: 0.05,
      maxDelayMs: 0.5,
      lossRate: 0,
      seed: 3,
    });
    sim.start();
    settle(sim, 2000);
    sim.runUntil(sim.now + 100);
    const before = sim.master()?.core.master.allocationInForce;
    const deadOwned = new Set(
      [...(before ?? new Map())].filter(([, o]) => o === "198.18.1.2").map(([c]) => c),
    );
    const killAt = sim.now;
    sim.kill(0);
    const mdi = masterDownIntervalMs(150, 1);
    sim.runUntil(killAt + mdi + 2);
    expect(sim.master()?.core.opts.self).toBe("198.18.1.3");
    settle(sim, 500);
    sim.runUntil(sim.now + 200);
    // Interruption per end system: longest run of packets nobody forwarded.
    const fl = flows();
    const gap = new Map<string, number>();
    const lastOk = new Map<string, number>();
    for (const p of sim.packets.filter((x) => x.at >= killAt - 10 && x.at < sim.now - 5)) {
      const src = fl[p.flow]?.src ?? "";
      if (p.forwards.length > 0) {
        const prev = lastOk.get(src) ?? p.at;
        gap.set(src, Math.max(gap.get(src) ?? 0, p.at - prev));
        lastOk.set(src, p.at);
      }
      expect(p.forwards.length).toBeLessThanOrEqual(1);
    }
    for (const src of endSystems) {
      if (deadOwned.has(src)) expect(gap.get(src) ?? 0).toBeLessThan(100);
      else expect(gap.get(src) ?? 0).toBeLessThanOrEqual(2.01); // one packet period: no interruption
    }
    const after = sim.master()?.core.master.allocationInForce;
    expect([...(after ?? new Map()).values()].filter((o) => o === "198.18.1.2")).toHaveLength(0);
  });

  it("staggered start: a lower-priority router is master first, the owner preempts, the allocation converges", () => {
    for (const offset of [0, 10, 30, 34, 36, 40, 80]) {
      const sim = new LanSimulation({
        routers: routers(2, "exactly-once"),
        flows: flows(),
        minDelayMs: 0.05,
        maxDelayMs: 1,
        lossRate: 0.01,
        seed: offset,
        startAt: [offset, 0],
      });
      sim.start();
      sim.runUntil(offset + 200);
      settle(sim, 3000);
      sim.runUntil(sim.now + 100);
      const m = sim.master();
      expect(m?.core.opts.self, `offset ${offset}`).toBe("198.18.1.2");
      const owners = Object.values(m?.core.snapshot(sim.now).master?.allocation ?? {});
      expect(
        owners.filter((o) => o === "198.18.1.2"),
        `offset ${offset}`,
      ).toHaveLength(3);
      const t = sim.tally(sim.now - 60, sim.now - 5);
      expect(t.lost + t.duplicated, `offset ${offset}`).toBe(0);
    }
  });

  it("a brief partition makes two masters; after it heals the owner is master again and the allocation converges", () => {
    const sim = new LanSimulation({
      routers: routers(2, "exactly-once"),
      flows: flows(),
      minDelayMs: 0.05,
      maxDelayMs: 1,
      lossRate: 0,
      seed: 11,
    });
    sim.start();
    settle(sim, 2000);
    sim.partition(300);
    sim.runUntil(sim.now + 150);
    expect(sim.routers.filter((r) => r.core.role === "master")).toHaveLength(2);
    sim.runUntil(sim.now + 400);
    settle(sim, 3000);
    sim.runUntil(sim.now + 100);
    expect(sim.master()?.core.opts.self).toBe("198.18.1.2");
    const alloc = sim.master()?.core.master.allocationInForce ?? new Map();
    expect([...alloc.values()].filter((o) => o === "198.18.1.3")).toHaveLength(3);
    // Both members apply the owner's allocation again: each packet forwarded exactly once.
    const t = sim.tally(sim.now - 60, sim.now - 5);
    expect(t.lost + t.duplicated).toBe(0);
    // And hand-offs still work.
    sim.reallocate(
      new Map([
        [
          "198.18.1.11",
          [...alloc.entries()].find(([c]) => c === "198.18.1.11")?.[1] === "198.18.1.2"
            ? "198.18.1.3"
            : "198.18.1.2",
        ],
      ]),
    );
    settle(sim, 2000);
    sim.runUntil(sim.now + 50);
    const t2 = sim.tally(sim.now - 100, sim.now - 5);
    expect(t2.lost + t2.duplicated).toBe(0);
  });

  it("backup killed: the master marks it faulty after its responses stop and reallocates its end systems", () => {
    const sim = new LanSimulation({
      routers: routers(2, "exactly-once"),
      flows: flows(),
      minDelayMs: 0.05,
      maxDelayMs: 0.5,
      lossRate: 0,
      seed: 5,
    });
    sim.start();
    settle(sim, 2000);
    sim.kill(1);
    sim.runUntil(sim.now + 200);
    const m = sim.master();
    expect(m?.core.master.memberCondition("198.18.1.3")).toBe("faulty");
    expect(
      [...(m?.core.master.allocationInForce ?? new Map()).values()].every((o) => o === "198.18.1.2"),
    ).toBe(true);
    const t = sim.tally(sim.now - 50, sim.now - 5);
    expect(t.lost).toBe(0);
  });
});
