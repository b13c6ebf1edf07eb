// Hand-off on the Fig. 7 lab: 200 reallocations per operation mode while UDP streams run,
// judged by the traffic analyzer (receiver socket + far-side capture), not by the agents.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { percentile, primeDiscovery, runHandoffs } from "../lib/experiments/handoff-run.ts";
import { HUB_RX_CPU } from "../lib/lab/cpus.ts";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { startVirtualRouter, virtualRouterConfig } from "../lib/roles/vrls/harness/lab-harness.ts";
import { loadTopology } from "../lib/topology/load.ts";

const REALLOCATIONS = Number(process.env.VRLS_REALLOCATIONS ?? 200);

describe("VRLS hand-off under load on the Fig. 7 lab", () => {
  const loaded = loadTopology("labs/vrls-fig7.yaml");
  let lab: Lab;
  beforeAll(async () => {
    lab = await upLab(loaded);
  }, 120_000);
  afterAll(async () => {
    await lab?.down();
  }, 60_000);

  for (const [k, mode] of (["exactly-once", "sequence-number", "timer"] as const).entries()) {
    it(`${mode}: ${REALLOCATIONS} reallocations while UDP and TCP run at 2000 pps`, {
      timeout: 180_000,
    }, async () => {
      const vr = await startVirtualRouter(
        lab,
        virtualRouterConfig(loaded, "vr1", { mode, advertIntervalMs: 100, discoveryMs: 200 }),
      );
      try {
        await vr.waitForMaster(15_000, "ra");
        // Passive discovery of all six end systems.
        await primeDiscovery(lab);
        await vr.waitAllocated(6);
        // The virtual lab keeps each agent's event loop off the hub's CPU, and so real-time by
        // default (lib/lab/cpus.ts, agent-args realtimeFromEnv).
        const cpus = lab.controlPlaneCpus();
        for (const host of ["ra", "rb"]) {
          const rt = ((await vr.status(host)) as unknown as { realtime: { mode: string; cpus: string } })
            .realtime;
          if (cpus) {
            // Cpus_allowed_list: "1", "1-3", "1,3"; the hub's CPU is 0, so no range can hide it.
            expect(rt.cpus.split(/[-,]/).map(Number), `${host} runs on the hub's CPU`).not.toContain(
              HUB_RX_CPU,
            );
            if (process.env.VRLS_REALTIME === undefined) expect(rt.mode).toBe("always");
          }
        }
        const r = await runHandoffs(lab, vr, mode, 6000 + k, REALLOCATIONS);
        console.log(
          JSON.stringify({
            ...r,
            handoffMs: undefined,
            p50: percentile(r.handoffMs, 50),
          }),
        );
        // A master change in the middle (a starved master on an overloaded machine) is a
        // different experiment: say so instead of blaming the hand-off.
        expect(r.roleChanges, "VRRP role changed during the run (machine overloaded?)").toEqual([]);
        expect(r.reallocations).toBe(REALLOCATIONS);
        expect(r.tcp.sent).toBeGreaterThan(REALLOCATIONS * 10);
        expect(r.tcp.connections).toBe(6);
        expect(r.tcpSink.resets).toBe(0);
        // No mode duplicates (the seed's purpose); exactly-once loses nothing at all,
        // sequence-number nothing of TCP; timer mode loses during its delay.
        // Every end system is allocated: a packet the owner table matched to no condition was
        // misclassified (dropped by a backup, forwarded and learned by the master). The three-set
        // table of old did that while a move committed (lib/roles/vrls/owner-table.ts).
        expect(r.unknownDuring, "packets classified as from no end system during the hand-offs").toEqual({
          ra: 0,
          rb: 0,
        });
        expect(r.udp.duplicatedWire).toBe(0);
        expect(r.udp.duplicatedReceiver).toBe(0);
        expect(r.tcp.duplicated).toBe(0);
        // Exactly-once loses nothing at all. The race that was left (a frame the new owner's
        // kernel dropped just before its hold, reaching the old owner only after its stop) is
        // closed by the type 4 extension: the old owner stops only once it has taken in one of
        // the packets the new owner named (docs/vrls.md). Its stops must have used it.
        if (mode === "exactly-once") expect(r.udp.lost).toBe(0);
        if (mode !== "timer") {
          const stops = r.members.reduce((n, m) => n + m.stopsHeldObserved, 0);
          expect(stops, "old owners' stops that waited for a named held packet").toBeGreaterThan(0);
        }
        if (mode !== "timer") expect(r.tcp.lost).toBe(0);
        if (mode === "timer") expect(r.udp.lost).toBeGreaterThan(0);
      } finally {
        await vr.stop();
      }
    });
  }
});
