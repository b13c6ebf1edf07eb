// Failover of the VRLS reference router on the Fig. 7 lab: the master dies (interfaces down,
// process killed); the backup takes over within Master_Down_Interval and reallocates.
// Interruption per end system from the receiver's per-stream tallies.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reviveMember } from "../lib/experiments/failover-run.ts";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { startVirtualRouter, virtualRouterConfig } from "../lib/roles/vrls/lab-harness.ts";
import { masterDownIntervalMs } from "../lib/roles/vrls/timers.ts";
import { loadTopology } from "../lib/topology/load.ts";
import { sendUdpStream, UdpReceiver } from "../lib/traffic/udp.ts";

const ES = ["es1", "es2", "es3", "es4", "es5", "es6"];
const ES_ADDR = ["198.18.1.11", "198.18.1.12", "198.18.1.13", "198.18.1.14", "198.18.2.11", "198.18.2.12"];

describe("VRLS failover on the Fig. 7 lab", () => {
  const loaded = loadTopology("labs/vrls-fig7.yaml");
  let lab: Lab;
  beforeAll(async () => {
    lab = await upLab(loaded);
  }, 120_000);
  afterAll(async () => {
    await lab?.down();
  }, 60_000);

  it("10 ms advertisements: the master dies; its end systems come back after the takeover, the others lose nothing", {
    timeout: 120_000,
  }, async () => {
    const vr = await startVirtualRouter(
      lab,
      virtualRouterConfig(loaded, "vr1", { advertIntervalMs: 10, discoveryMs: 100 }),
    );
    try {
      expect(await vr.waitForMaster(15_000, "ra")).toBe("ra");
      await Promise.all(
        ES.map((h, i) =>
          sendUdpStream(lab.host(h).remote, {
            streamId: 800 + i,
            dstIp: "198.18.100.10",
            dstPort: 5999,
            pps: 100,
            count: 20,
          }),
        ),
      );
      const allocation = await vr.waitAllocated(6);
      const settledEvents = vr.roleEvents.length;
      const server = lab.host("server").remote;
      // Baseline: the same streams with nothing happening (the gap the machine itself causes).
      const quiet = await UdpReceiver.start(server, { port: 5101 });
      await Promise.all(
        ES.map((h, i) =>
          sendUdpStream(lab.host(h).remote, {
            streamId: 200 + i,
            dstIp: "198.18.100.10",
            dstPort: 5101,
            pps: 1000,
            durationMs: 1500,
          }),
        ),
      );
      await new Promise((r) => setTimeout(r, 200));
      const baseline = (await quiet.stop()).streams.map(
        (s) => Math.round((s.longestInterruption?.ms ?? 0) * 10) / 10,
      );
      const receiver = await UdpReceiver.start(server, { port: 5100 });
      const senders = Promise.all(
        ES.map((h, i) =>
          sendUdpStream(lab.host(h).remote, {
            streamId: 100 + i,
            dstIp: "198.18.100.10",
            dstPort: 5100,
            pps: 1000,
            durationMs: 3000,
          }),
        ),
      );
      // Handled here so that an assertion failing before the streams end does not leave
      // their rejection (the lab torn down under them) unhandled; awaited below as usual.
      senders.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1000));
      // Kill the master: its interfaces go down and its agent process dies without a word.
      const ra = vr.agents.get("ra")!;
      const flapsBefore = vr.roleEvents.slice(settledEvents).filter((e) => e.role === "master");
      expect(flapsBefore, "the backup took over before the kill (load?)").toEqual([]);
      const killedAt = Date.now();
      await lab.host("ra").exec(`ip link set eth0 down; ip link set eth1 down; kill -9 ${ra.pid}`);
      const sent = await senders;
      await new Promise((r) => setTimeout(r, 200));
      const report = await receiver.stop();
      const newMaster = await vr.status("rb");
      expect(newMaster.role).toBe("master");
      const takeover = vr.roleEvents.find((e) => e.host === "rb" && e.role === "master" && e.at >= killedAt);
      expect(takeover).toBeDefined();
      const mdi = masterDownIntervalMs(100, 1);
      const takeoverMs = (takeover?.at ?? 0) - killedAt;
      const perEs: Record<string, { owner: string; interruptionMs: number; lost: number }> = {};
      for (const [i, h] of ES.entries()) {
        const s = report.streams.find((x) => x.streamId === 100 + i);
        const gap = s?.longestInterruption?.ms ?? 0;
        perEs[h] = {
          owner: allocation[ES_ADDR[i]!] ?? "?",
          interruptionMs: Math.round(gap * 10) / 10,
          lost: (sent[i]?.sent ?? 0) - (s?.unique ?? 0),
        };
      }
      console.log(JSON.stringify({ takeoverMs, masterDownIntervalMs: mdi, perEs, baseline }));
      // Timing belongs to bench/failover.ts (this shared machine's load moves it); here generous
      // bounds: the takeover follows Master_Down_Interval, and nothing is lost on survivors.
      expect(takeoverMs).toBeLessThan(mdi + 500);
      // Survivors: nothing lost, and no gap beyond what this shared machine shows with
      // nothing happening (the quiet baseline, measured just before). The dead member's
      // end systems: back within 100 ms.
      const jitter = Math.max(...baseline);
      for (const v of Object.values(perEs)) {
        if (v.owner === "198.18.1.3") {
          expect(v.lost).toBe(0);
          expect(v.interruptionMs).toBeLessThanOrEqual(Math.max(jitter + 10, 100));
        } else {
          expect(v.lost).toBeGreaterThan(0);
          expect(v.interruptionMs).toBeLessThan(1000);
        }
      }
      // The new master re-allocated: everything is rb's now.
      expect(Object.values(newMaster.master?.allocation ?? {}).every((m) => m === "198.18.1.3")).toBe(true);
    } finally {
      await vr.stop();
      // Links up, and what the killed agent left behind removed (the next case starts clean).
      await reviveMember(lab, "ra", 51);
    }
  });
});
