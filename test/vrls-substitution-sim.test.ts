// The substitution server (seed Figs. 14-16) without sockets: the CoordinatorCore's rules
// (P24 the master is not waited for, P25 a backup's response is transferred, P33 the end
// systems are asked again before a review's reallocation), then routers and server together
// on the simulated hub LAN: the master router never confirms the server's allocations, the
// backups' confirmations reach it through the server, and hand-offs in both directions
// (master -> backup, backup -> master) neither lose nor duplicate a packet.
import { describe, expect, it } from "vitest";
import {
  type CoordinatorAction,
  CoordinatorCore,
  type CoordinatorCoreOptions,
} from "../lib/roles/vrls/coordinator-core.ts";
import type { HandoffMode, VrlsMessage } from "../lib/roles/vrls/messages.ts";
import type { RouterCoreOptions } from "../lib/roles/vrls/router-core.ts";
import { LanSimulation, type SimFlow } from "./vrls-simulation.ts";

const RA = "198.18.1.2";
const RB = "198.18.1.3";
const SUB = "198.18.1.6";
const ROUTERS = [
  { id: RA, priority: 200 },
  { id: RB, priority: 100 },
];
const END_SYSTEMS = ["198.18.1.11", "198.18.1.12", "198.18.1.13", "198.18.1.14"];
const REVIEW = {
  imbalancePct: 30,
  overflowsPerUnit: 20,
  holdDownMs: 3000,
  collectMs: 300,
  minRateBps: 100_000,
};

function coordinatorOptions(mode: HandoffMode, review = false): CoordinatorCoreOptions {
  return {
    self: SUB,
    routers: ROUTERS,
    mode,
    retryMs: 5,
    maxRetries: 40,
    responseTimeoutMs: 60,
    discoveryMs: 30,
    infoRequestIntervalMs: 0,
    keepaliveMs: 10,
    conditions: "address",
    fixedConditions: [],
    ...(review ? { review: REVIEW } : {}),
  };
}

function routerOptions(mode: HandoffMode): RouterCoreOptions[] {
  return ROUTERS.map((m) => ({
    vrid: 51,
    self: m.id,
    priority: m.priority,
    advertIntervalCs: 1,
    preempt: true,
    virtualAddresses: ["198.18.1.1"],
    members: ROUTERS,
    mode,
    timerDelayMs: 20,
    retryMs: 5,
    maxRetries: 40,
    responseTimeoutMs: 60,
    discoveryMs: 30,
    infoRequestIntervalMs: 0,
    coordinator: SUB,
    coordinatorTimeoutMs: 60,
    coordinatorGraceMs: 10,
    subnets: [{ cidr: "198.18.1.0/24", via: null }],
    conditions: { kind: "address" },
  }));
}

function flows(): SimFlow[] {
  // One UDP and one TCP flow per end system, a packet every 2 ms each.
  return END_SYSTEMS.flatMap((src, i) => [
    { src, dst: "198.18.2.10", protocol: 17 as const, sport: 10000 + i, dport: 9000, periodMs: 2 },
    { src, dst: "198.18.2.10", protocol: 6 as const, sport: 20000 + i, dport: 9001, periodMs: 2 },
  ]);
}

function sends(actions: CoordinatorAction[], type: VrlsMessage["type"]) {
  return actions.filter((a) => a.type === "send" && a.message.type === type);
}

describe("substitution server rules (CoordinatorCore, pure)", () => {
  /** The routers are alive: ra advertises, rb answers (type 2, copied to the server). */
  function alive(c: CoordinatorCore, now: number): CoordinatorAction[] {
    return [
      ...c.handle({ type: "advertisement", now, from: RA }),
      ...c.handle({
        type: "message",
        now,
        from: RB,
        message: { type: "response", priority: 100, epoch: 0, version: 0 },
      }),
    ];
  }
  /** A tick with both routers alive. */
  function tick(c: CoordinatorCore, now: number): CoordinatorAction[] {
    return [...alive(c, now), ...c.handle({ type: "tick", now })];
  }

  /** A registered server with the master router RA known from its advertisements. */
  function registered(mode: HandoffMode = "exactly-once", review = false) {
    const c = new CoordinatorCore(coordinatorOptions(mode, review));
    c.handle({ type: "start", now: 0 });
    c.handle({ type: "advertisement", now: 1, from: RA });
    for (const address of END_SYSTEMS) c.handle({ type: "infoReply", now: 2, address });
    c.handle({
      type: "message",
      now: 3,
      from: RA,
      message: { type: "registrationAck", epoch: 0, accepted: true, role: "coordinator", member: SUB },
    });
    return c;
  }

  it("P24: the allocation does not wait for the master router; P25: a backup's response is transferred to it", () => {
    const c = registered();
    const out = tick(c, 40);
    const alloc = sends(out, "allocation")[0];
    expect(alloc, "the server allocates after the discovery time").toBeDefined();
    const m = alloc?.type === "send" && alloc.message.type === "allocation" ? alloc.message : undefined;
    expect(new Set(m?.entries.map((e) => e.owner))).toEqual(new Set([RA, RB]));
    expect(c.engine.snapshot(40).inFlight?.waiting, "waiting for the backup only").toEqual([RB]);
    const done: VrlsMessage = {
      type: "confirmation",
      epoch: m?.epoch ?? 0,
      version: m?.version ?? 0,
      observing: [],
      holding: [],
      done: true,
    };
    // The backup's response: transferred to the master router, and the allocation completes.
    const fromRb = c.handle({ type: "message", now: 41, from: RB, message: done });
    expect(fromRb.filter((a) => a.type === "transfer")).toEqual([{ type: "transfer", to: [RA] }]);
    expect(c.engine.snapshot(41).inFlight).toBeNull();
    // A (non-conforming) master's confirmation is counted, never transferred.
    const fromRa = c.handle({ type: "message", now: 42, from: RA, message: done });
    expect(fromRa.filter((a) => a.type === "transfer")).toEqual([]);
    expect(c.counters["rx.confirmationFromMaster"]).toBe(1);
    // No confirmation from the master for as long as it takes: never declared faulty for it.
    let t = 42;
    for (; t < 2000; t += 5) tick(c, t);
    expect(c.engine.snapshot(t).members.find((x) => x.id === RA)?.condition).toBe("working");
  });

  it("P33: a review's reallocation waits for the end systems' answers to new information requests", () => {
    const c = registered("exactly-once", true);
    // Complete the initial allocation.
    const first = sends(tick(c, 40), "allocation")[0];
    const a = first?.type === "send" && first.message.type === "allocation" ? first.message : undefined;
    expect(a).toBeDefined();
    c.handle({
      type: "message",
      now: 41,
      from: RB,
      message: {
        type: "confirmation",
        epoch: a!.epoch,
        version: a!.version,
        observing: [],
        holding: [],
        done: true,
      },
    });
    const owners = new Map(a!.entries.map((e) => [e.condition, e.owner]));
    // P30: rb asks; P31: the server asks both routers (7) ...
    const asked = c.handle({
      type: "message",
      now: 100,
      from: RB,
      message: { type: "reviewRequest", epoch: a!.epoch },
    });
    expect(sends(asked, "rateRequest").map((x) => x.type === "send" && x.to)).toEqual([
      { member: RA },
      { member: RB },
    ]);
    // ... both answer: everything on rb's conditions (P32: imbalance, reallocation necessary).
    const rates = (who: string) =>
      [...owners]
        .filter(([, o]) => o === who)
        .map(([condition]) => ({ condition, bps: who === RB ? 4e6 : 0 }));
    c.handle({
      type: "message",
      now: 101,
      from: RA,
      message: { type: "rateResponse", epoch: a!.epoch, rates: rates(RA), overflowsPerUnit: 0 },
    });
    const decided = c.handle({
      type: "message",
      now: 102,
      from: RB,
      message: { type: "rateResponse", epoch: a!.epoch, rates: rates(RB), overflowsPerUnit: 50 },
    });
    // P33: ICMP information requests first, no allocation yet.
    expect(decided.filter((x) => x.type === "sendInfoRequest")).toEqual([
      { type: "sendInfoRequest", reason: "review" },
    ]);
    expect(sends(decided, "allocation")).toEqual([]);
    expect(sends(tick(c, 110), "allocation"), "nothing before the answers").toEqual([]);
    // Three of four answered: still waiting (up to discoveryMs) ...
    for (const address of END_SYSTEMS.slice(0, 3)) c.handle({ type: "infoReply", now: 112, address });
    expect(sends(tick(c, 115), "allocation")).toEqual([]);
    // ... the fourth: the reallocation by rate goes out on the next tick.
    c.handle({ type: "infoReply", now: 116, address: END_SYSTEMS[3]! });
    const re = sends(tick(c, 117), "allocation")[0];
    expect(re, "reallocation after the end systems answered").toBeDefined();
    const moved = re?.type === "send" && re.message.type === "allocation" ? re.message.entries : [];
    expect(moved.filter((e) => e.owner !== owners.get(e.condition)).length).toBeGreaterThan(0);
    expect(c.counters.reviewReallocations).toBe(1);
  });

  it("P33 with end systems that do not answer: the reallocation goes out after the discovery time", () => {
    const c = registered("exactly-once", true);
    const first = sends(tick(c, 40), "allocation")[0];
    const a = first?.type === "send" && first.message.type === "allocation" ? first.message : undefined;
    c.handle({
      type: "message",
      now: 41,
      from: RB,
      message: {
        type: "confirmation",
        epoch: a!.epoch,
        version: a!.version,
        observing: [],
        holding: [],
        done: true,
      },
    });
    c.handle({ type: "message", now: 100, from: RB, message: { type: "reviewRequest", epoch: a!.epoch } });
    const rates = a!.entries.filter((e) => e.owner === RB).map((e) => ({ condition: e.condition, bps: 4e6 }));
    c.handle({
      type: "message",
      now: 101,
      from: RA,
      message: { type: "rateResponse", epoch: a!.epoch, rates: [], overflowsPerUnit: 0 },
    });
    c.handle({
      type: "message",
      now: 102,
      from: RB,
      message: { type: "rateResponse", epoch: a!.epoch, rates, overflowsPerUnit: 50 },
    });
    expect(sends(tick(c, 131), "allocation")).toEqual([]);
    expect(sends(tick(c, 133), "allocation")).toHaveLength(1);
  });
});

describe("routers and substitution server on the simulated hub LAN", () => {
  for (const mode of ["exactly-once", "sequence-number", "timer"] as const) {
    it(`${mode}: the master records without confirming, the backups' confirmations reach it through the server, both directions hand off cleanly`, () => {
      const sim = new LanSimulation({
        routers: routerOptions(mode),
        flows: flows(),
        minDelayMs: 0.05,
        maxDelayMs: 1,
        lossRate: 0,
        seed: 7,
        coordinator: { options: coordinatorOptions(mode), startAt: 150 },
      });
      sim.start();
      const coordinator = sim.coordinator!.core;
      const waitIdle = (limitMs: number) => {
        const end = sim.now + limitMs;
        while (sim.now < end) {
          sim.runUntil(sim.now + 5);
          const st = coordinator.snapshot(sim.now);
          if (
            st.registered &&
            st.master &&
            st.master.inFlight === null &&
            Object.keys(st.master.allocation).length === 4
          )
            return st;
        }
        throw new Error(
          `the server did not complete an allocation: ${JSON.stringify(coordinator.snapshot(sim.now))}`,
        );
      };
      const first = waitIdle(2000);
      const t1 = sim.now;
      expect(new Set(Object.values(first.master!.allocation))).toEqual(new Set([RA, RB]));
      sim.runUntil(sim.now + 200);
      const [ra, rb] = sim.routers;
      expect(ra!.core.role).toBe("master");
      expect(ra!.core.member.snapshot().owners, "the master records the server's allocation").toEqual(
        first.master!.allocation,
      );
      expect(rb!.core.member.snapshot().owners).toEqual(first.master!.allocation);

      // Both directions at once: one of ra's end systems to rb, one of rb's to ra.
      const owners = first.master!.allocation;
      const toRb = Object.keys(owners).find((c) => owners[c] === RA)!;
      const toRa = Object.keys(owners).find((c) => owners[c] === RB)!;
      const moveAt = sim.now;
      coordinator.engine.requestReallocation(
        new Map([
          [toRb, RB],
          [toRa, RA],
        ]),
      );
      sim.runUntil(sim.now + 10);
      const second = waitIdle(2000);
      expect(second.master!.allocation[toRb]).toBe(RB);
      expect(second.master!.allocation[toRa]).toBe(RA);
      sim.runUntil(sim.now + 300);
      // Every hand-off finished: nothing gained still pending, every loss stopped.
      for (const r of [ra!, rb!]) {
        expect(r.core.member.snapshot().gaining).toEqual({});
        expect(Object.values(r.core.member.snapshot().losing).every((l) => l.startsWith("stopped"))).toBe(
          true,
        );
      }

      const since = sim.log.find((m) => m.type === "allocation" && m.src === SUB)?.at ?? 0;
      expect(since).toBeLessThan(t1);
      const afterServer = sim.log.filter((m) => m.at >= since);
      // P24: not one confirmation from the master router once the server allocates.
      expect(sim.log.filter((m) => m.type === "confirmation" && m.sender === RA && m.at >= since)).toEqual(
        [],
      );
      // The backup's go to the server only, and the server transfers them to the master (P25).
      const rbConfirmations = afterServer.filter((m) => m.type === "confirmation" && m.src === RB);
      expect(rbConfirmations.length).toBeGreaterThan(0);
      expect(rbConfirmations.every((m) => m.to === SUB)).toBe(true);
      const transfers = afterServer.filter((m) => m.type === "confirmation" && m.src === SUB);
      expect(transfers.length).toBe(rbConfirmations.length);
      expect(transfers.every((m) => m.sender === RB && m.to === RA)).toBe(true);
      if (mode !== "timer") {
        // P26: sequence number information / markers straight between the routers, both ways.
        expect(
          sim.log.some((m) => m.type === "markers" && m.src === RA && m.to === RB && m.at >= moveAt),
        ).toBe(true);
        expect(
          sim.log.some((m) => m.type === "markers" && m.src === RB && m.to === RA && m.at >= moveAt),
        ).toBe(true);
      }
      expect(ra!.core.member.snapshot().confirmationsWithheld).toBeGreaterThan(0);

      const tally = sim.tally(since, sim.now - 10);
      expect(tally.duplicated, `${mode}: packets forwarded twice`).toBe(0);
      if (mode === "exactly-once") expect(tally.lost, "exactly-once: packets lost").toBe(0);
      if (mode === "sequence-number") {
        const tcp = flows();
        const lostTcp = tally.lostIds.filter((id) => tcp[sim.packets[id]!.flow]?.protocol === 6);
        expect(lostTcp, "sequence-number: TCP packets lost").toEqual([]);
      }
    });
  }

  it("exactly-once with 5% control loss: hand-offs with the silent master still finish, nothing forwarded twice", () => {
    const sim = new LanSimulation({
      routers: routerOptions("exactly-once"),
      flows: flows(),
      minDelayMs: 0.05,
      maxDelayMs: 1,
      lossRate: 0.05,
      seed: 11,
      coordinator: { options: coordinatorOptions("exactly-once"), startAt: 150 },
    });
    sim.start();
    const coordinator = sim.coordinator!.core;
    sim.runUntil(1500);
    const owners = coordinator.snapshot(sim.now).master!.allocation;
    expect(Object.keys(owners)).toHaveLength(4);
    const start = sim.now;
    for (let round = 0; round < 6; round++) {
      // Swap every condition's owner, six times.
      const cur = coordinator.snapshot(sim.now).master!.allocation;
      coordinator.engine.requestReallocation(
        new Map(Object.entries(cur).map(([c, o]) => [c, o === RA ? RB : RA])),
      );
      sim.runUntil(sim.now + 600);
      expect(coordinator.snapshot(sim.now).master!.inFlight, `round ${round}`).toBeNull();
    }
    sim.runUntil(sim.now + 300);
    const tally = sim.tally(start, sim.now - 10);
    expect(tally.duplicated).toBe(0);
    expect(sim.log.filter((m) => m.type === "confirmation" && m.sender === RA && m.at >= start)).toEqual([]);
  });
});
