// RFC 5798 state machine and timers of the reference VRLS router (pure reducer).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { masterDownIntervalMs, skewTimeMs } from "../lib/roles/vrls/timers.ts";
import {
  initialVrrpState,
  outranks,
  step,
  type VrrpEvent,
  type VrrpState,
} from "../lib/roles/vrls/vrrp-state.ts";

const params = (priority: number, address: string, advertIntervalCs = 100, preempt = true) => ({
  vrid: 51,
  priority,
  advertIntervalCs,
  preempt,
  primaryAddress: address,
  virtualAddresses: ["198.18.1.1"],
});

function run(state: VrrpState, events: VrrpEvent[]) {
  let s = state;
  const actions = [];
  for (const e of events) {
    const r = step(s, e);
    s = r.state;
    actions.push(...r.actions);
  }
  return { state: s, actions };
}

describe("RFC 5798 timers", () => {
  it("computes Skew_Time and Master_Down_Interval in milliseconds from centiseconds", () => {
    expect(skewTimeMs(100, 100)).toBeCloseTo(609.375);
    expect(masterDownIntervalMs(100, 100)).toBeCloseTo(3609.375);
    expect(masterDownIntervalMs(254, 1)).toBeCloseTo(30.078125);
    expect(skewTimeMs(255, 100)).toBeCloseTo(3.90625);
  });
});

describe("RFC 5798 state machine", () => {
  it("the address owner (255) becomes master at startup with an advertisement and gratuitous ARP", () => {
    const r = step(initialVrrpState(params(255, "198.18.1.1")), { type: "startup", now: 0 });
    expect(r.state.name).toBe("master");
    expect(r.actions.map((a) => a.type)).toEqual(["sendAdvertisement", "sendGratuitousArp", "transition"]);
    expect(r.state.adverDeadline).toBe(1000);
  });

  it("a backup becomes master when Master_Down_Timer fires, not before", () => {
    const s0 = step(initialVrrpState(params(100, "198.18.1.2")), { type: "startup", now: 0 }).state;
    expect(s0.name).toBe("backup");
    expect(step(s0, { type: "tick", now: 3609 }).state.name).toBe("backup");
    const r = step(s0, { type: "tick", now: 3610 });
    expect(r.state.name).toBe("master");
    expect(r.actions[0]).toEqual({ type: "sendAdvertisement", priority: 100, advertIntervalCs: 100 });
  });

  it("advertisements reset Master_Down_Timer and teach Master_Adver_Interval", () => {
    const s0 = step(initialVrrpState(params(100, "198.18.1.2")), { type: "startup", now: 0 }).state;
    const s1 = step(s0, {
      type: "advertisement",
      now: 3000,
      from: "198.18.1.3",
      priority: 200,
      maxAdverIntCs: 10,
    }).state;
    expect(s1.masterAdverIntCs).toBe(10);
    expect(s1.masterDownDeadline).toBeCloseTo(3000 + masterDownIntervalMs(100, 10));
    expect(s1.masterAddress).toBe("198.18.1.3");
    expect(step(s1, { type: "tick", now: 3300 }).state.name).toBe("backup");
    expect(step(s1, { type: "tick", now: 3400 }).state.name).toBe("master");
  });

  it("priority 0 from the master makes the backup take over after Skew_Time", () => {
    const s0 = step(initialVrrpState(params(100, "198.18.1.2")), { type: "startup", now: 0 }).state;
    const s1 = step(s0, {
      type: "advertisement",
      now: 50,
      from: "198.18.1.3",
      priority: 0,
      maxAdverIntCs: 100,
    }).state;
    expect(s1.masterDownDeadline).toBeCloseTo(50 + skewTimeMs(100, 100));
    expect(step(s1, { type: "tick", now: 50 + 610 }).state.name).toBe("master");
  });

  it("preemption: a backup ignores a lower-priority master and takes over; without preemption it does not", () => {
    const pre = step(initialVrrpState(params(200, "198.18.1.2")), { type: "startup", now: 0 }).state;
    const adv = (now: number): VrrpEvent => ({
      type: "advertisement",
      now,
      from: "198.18.1.3",
      priority: 100,
      maxAdverIntCs: 100,
    });
    const a = run(pre, [adv(1000), adv(2000), adv(3000), { type: "tick", now: 3300 }]);
    expect(a.state.name).toBe("master");
    const noPre = step(initialVrrpState(params(200, "198.18.1.2", 100, false)), {
      type: "startup",
      now: 0,
    }).state;
    const b = run(noPre, [adv(1000), adv(2000), adv(3000), { type: "tick", now: 3300 }]);
    expect(b.state.name).toBe("backup");
  });

  it("a master steps down for a higher priority, and for an equal priority from a greater address only", () => {
    const m = step(initialVrrpState(params(100, "198.18.1.5", 100)), { type: "startup", now: 0 });
    const master = step(m.state, { type: "tick", now: 4000 }).state;
    expect(master.name).toBe("master");
    const lower = step(master, {
      type: "advertisement",
      now: 4100,
      from: "198.18.1.4",
      priority: 100,
      maxAdverIntCs: 100,
    });
    expect(lower.state.name).toBe("master");
    const greater = step(master, {
      type: "advertisement",
      now: 4100,
      from: "198.18.1.6",
      priority: 100,
      maxAdverIntCs: 100,
    });
    expect(greater.state.name).toBe("backup");
    const higher = step(master, {
      type: "advertisement",
      now: 4100,
      from: "198.18.1.2",
      priority: 101,
      maxAdverIntCs: 100,
    });
    expect(higher.state.name).toBe("backup");
    expect(higher.actions).toContainEqual({ type: "transition", from: "master", to: "backup", now: 4100 });
  });

  it("a master sends priority 0 when shut down, and re-advertises when it hears priority 0", () => {
    const master = step(initialVrrpState(params(255, "198.18.1.1")), { type: "startup", now: 0 }).state;
    const z = step(master, {
      type: "advertisement",
      now: 10,
      from: "198.18.1.2",
      priority: 0,
      maxAdverIntCs: 100,
    });
    expect(z.actions).toEqual([{ type: "sendAdvertisement", priority: 255, advertIntervalCs: 100 }]);
    const down = step(master, { type: "shutdown", now: 20 });
    expect(down.state.name).toBe("initialize");
    expect(down.actions[0]).toEqual({ type: "sendAdvertisement", priority: 0, advertIntervalCs: 100 });
  });

  it("rejects out-of-range parameters", () => {
    expect(() => initialVrrpState(params(0, "198.18.1.1"))).toThrow(/priority/);
    expect(() => initialVrrpState(params(100, "198.18.1.1", 0))).toThrow(/interval/);
    expect(() => initialVrrpState({ ...params(100, "198.18.1.1"), vrid: 256 })).toThrow(/VRID/);
  });

  it("property: routers on a lossless LAN elect exactly one master, the highest (priority, address)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 2, max: 250 }), { minLength: 2, maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 6, maxLength: 6 }),
        fc.boolean(),
        (hosts, startDelays, samePriority) => {
          const routers = hosts.map((h, i) => ({
            address: `198.18.1.${h}`,
            state: initialVrrpState(params(samePriority ? 100 : 10 + i * 20, `198.18.1.${h}`, 10)),
            start: startDelays[i] ?? 0,
          }));
          const inbox: { at: number; from: number; priority: number }[] = [];
          for (let now = 0; now <= 6000; now++) {
            for (const [i, r] of routers.entries()) {
              const events: VrrpEvent[] = [];
              if (now === r.start) events.push({ type: "startup", now });
              for (const m of inbox.filter((x) => x.at === now && x.from !== i)) {
                const sender = routers[m.from];
                if (sender)
                  events.push({
                    type: "advertisement",
                    now,
                    from: sender.address,
                    priority: m.priority,
                    maxAdverIntCs: 10,
                  });
              }
              events.push({ type: "tick", now });
              for (const e of events) {
                const res = step(r.state, e);
                r.state = res.state;
                for (const a of res.actions)
                  if (a.type === "sendAdvertisement")
                    inbox.push({ at: now + 1, from: i, priority: a.priority });
              }
            }
          }
          const masters = routers.filter((r) => r.state.name === "master");
          expect(masters).toHaveLength(1);
          // Equal priorities: RFC 5798 keeps whichever became master first (a backup accepts
          // an equal-priority advertisement); the address tie-break only settles two masters.
          if (samePriority) return;
          const best = [...routers].sort((a, b) =>
            outranks(a.state.params.priority, a.address, b.state.params.priority, b.address) ? -1 : 1,
          )[0];
          expect(masters[0]?.address).toBe(best?.address);
        },
      ),
      { numRuns: 40 },
    );
  });
});
