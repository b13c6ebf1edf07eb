import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { setThreadAffinity, setThreadScheduler } from "tandem-netlink";
import { afterEach, describe, expect, it } from "vitest";
import { controlPlaneCpus, HUB_RX_CPU } from "../lib/lab/cpus.ts";
import { waitUntil } from "../lib/remote/wait.ts";
import { realtimeFromEnv } from "../lib/roles/vrls/agent-args.ts";
import { RealtimeBoost } from "../lib/roles/vrls/realtime-boost.ts";

/** The calling thread's scheduling policy as the kernel reports it: 0 SCHED_OTHER, 1 SCHED_FIFO. */
function threadPolicy(): number {
  const line = readFileSync("/proc/thread-self/sched", "utf8")
    .split("\n")
    .find((l) => l.startsWith("policy"));
  return Number(line?.split(":")[1]);
}

describe("RealtimeBoost: SCHED_FIFO while a hand-off is in flight (real sched_setscheduler)", () => {
  afterEach(() => setThreadScheduler("other", 0));

  it("goes real-time at once, and back to SCHED_OTHER only after the linger", async () => {
    const boost = new RealtimeBoost({ setScheduler: setThreadScheduler, lingerMs: 30 });
    expect(threadPolicy()).toBe(0);
    boost.update(true);
    expect(threadPolicy()).toBe(1);
    expect(boost.active).toBe(true);
    boost.update(false);
    // Still real-time inside the linger; a new hand-off cancels the way down.
    expect(threadPolicy()).toBe(1);
    boost.update(true);
    boost.update(false);
    expect(await waitUntil(() => threadPolicy() === 0, { timeoutMs: 5000, what: "SCHED_OTHER again" })).toBe(
      true,
    );
    expect(boost.active).toBe(false);
    expect(boost.boosts).toBe(1);
  });

  it("a refusal is told once and boosting stops; the thread stays as it was", () => {
    const refusals: string[] = [];
    // Priority 0 is not a real-time priority: the addon refuses it as the kernel would.
    const boost = new RealtimeBoost({
      setScheduler: setThreadScheduler,
      priority: 0,
      onRefused: (m) => refusals.push(m),
    });
    boost.update(true);
    boost.update(true);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/fifo priority is 1\.\.99, got 0/);
    expect(threadPolicy()).toBe(0);
    expect(boost.active).toBe(false);
  });

  it("the addon names a bad policy", () => {
    expect(() => setThreadScheduler("rr" as "fifo", 10)).toThrow(
      /policy must be "fifo" or "other", got "rr"/,
    );
  });

  it("VRLS_REALTIME: unset or 0 never, handoff during hand-offs, 1 always, anything else an error naming the value", () => {
    expect(realtimeFromEnv(undefined)).toBe("off");
    // Kept off the hub's CPU (virtual lab), unset means always real-time; "0" still wins.
    expect(realtimeFromEnv(undefined, true)).toBe("always");
    expect(realtimeFromEnv("0", true)).toBe("off");
    expect(realtimeFromEnv("0")).toBe("off");
    expect(realtimeFromEnv("handoff")).toBe("handoff");
    expect(realtimeFromEnv("1")).toBe("always");
    expect(() => realtimeFromEnv("yes")).toThrow(/VRLS_REALTIME .* got "yes"/);
  });
});

/** The CPUs the calling thread may run on, as the kernel reports them (e.g. "1" or "0-1"). */
function threadCpus(): string {
  const line = readFileSync("/proc/thread-self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith("Cpus_allowed_list"));
  return (line?.split(":")[1] ?? "").trim();
}

describe("control plane CPUs: agents kept off the hub's CPU (real sched_setaffinity)", () => {
  const all = Array.from({ length: availableParallelism() }, (_, i) => i);
  afterEach(() => setThreadAffinity(all));

  it("every CPU but the hub's; nothing to keep apart on one CPU", () => {
    expect(controlPlaneCpus(2)).toEqual([1]);
    expect(controlPlaneCpus(4)).toEqual([1, 2, 3]);
    expect(controlPlaneCpus(1)).toBeUndefined();
    expect(controlPlaneCpus(4)).not.toContain(HUB_RX_CPU);
  });

  it("setThreadAffinity moves the calling thread, and names a bad CPU", () => {
    const last = all[all.length - 1] as number;
    setThreadAffinity([last]);
    expect(threadCpus()).toBe(String(last));
    expect(() => setThreadAffinity([1.5])).toThrow(/not a CPU number: 1.5/);
    expect(() => setThreadAffinity([])).toThrow(/at least one CPU/);
  });
});
