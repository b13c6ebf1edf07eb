// MemberEngine.nextDeadline: a hand-off's timed steps tell the driver when to tick. Before it,
// the agent ticked only at its periodic wake (up to 10 advertisement intervals or retryMs),
// so a 20 ms timer-mode delay with 100 ms adverts ended up to 139 ms after the allocation
// (bench handoff, timer mode p99). Pure core, injected clock.
import { describe, expect, it } from "vitest";
import { MemberEngine } from "../lib/roles/vrls/member.ts";

const N = "198.18.1.3";
const O = "198.18.1.2";
const allocation = (mode: "timer" | "exactly-once") => ({
  type: "allocation" as const,
  epoch: 1,
  version: 2,
  mode,
  entries: [{ condition: "198.18.1.11", owner: N, previousOwner: O }],
});

describe("MemberEngine.nextDeadline", () => {
  it("timer mode: the new owner's delay is due timerDelayMs after the allocation, and then it forwards", () => {
    const n = new MemberEngine({ self: N, timerDelayMs: 20, retryMs: 500 });
    expect(n.nextDeadline()).toBeNull();
    n.onAllocation(allocation("timer"), 1000, O);
    expect(n.nextDeadline()).toBe(1020);
    expect(n.snapshot().dispositions["198.18.1.11"]).not.toBe("forward");
    n.onTick(1020);
    expect(n.snapshot().dispositions["198.18.1.11"]).toBe("forward");
    expect(n.nextDeadline()).toBeNull();
  });

  it("exactly-once: nothing timed while the hand-off waits for messages", () => {
    const n = new MemberEngine({ self: N, timerDelayMs: 20, retryMs: 500 });
    n.onAllocation(allocation("exactly-once"), 1000, O);
    expect(n.snapshot().gaining["198.18.1.11"]).toBeDefined();
    expect(n.nextDeadline()).toBeNull();
  });
});
