// Standard VRRP interop: one member of the Fig. 7 virtual router is keepalived (VRRPv3, same
// VRID); the reference and keepalived agree on the master and fail over to each other.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { startKeepalived } from "../lib/roles/vrls/harness/keepalived.ts";
import { startVirtualRouter, virtualRouterConfig } from "../lib/roles/vrls/harness/lab-harness.ts";
import { masterDownIntervalMs } from "../lib/roles/vrls/timers.ts";
import { loadTopology } from "../lib/topology/load.ts";
import { resolveL2Path, sendUdpStream, UdpReceiver } from "../lib/traffic/udp.ts";

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("VRLS reference and keepalived in one virtual router", () => {
  const loaded = loadTopology("labs/vrls-fig7.yaml");
  let lab: Lab;
  beforeAll(async () => {
    lab = await upLab(loaded);
  }, 120_000);
  afterAll(async () => {
    await lab?.down();
  }, 60_000);

  it("agree on the master; failover reference -> keepalived and keepalived -> reference", async () => {
    const advertIntervalMs = 100;
    const cfg = (refPriority: number) =>
      virtualRouterConfig(loaded, "vr1", {
        advertIntervalMs,
        members: [
          { host: "ra", priority: refPriority, implementation: "reference" },
          { host: "rb", priority: 150, implementation: "keepalived" },
        ],
      });
    const ka = await startKeepalived(lab, cfg(200), "rb");
    let vr = await startVirtualRouter(lab, cfg(200));
    const server = lab.host("server").remote;
    const receiver = await UdpReceiver.start(server, { port: 5200 });
    let stream: ReturnType<typeof sendUdpStream> | undefined;
    try {
      // 1. Agreement: the reference (200) is master, keepalived (150) backup.
      await vr.waitForMaster(10_000, "ra");
      await until("keepalived BACKUP", async () =>
        (await ka.state())?.state === "BACKUP" ? true : undefined,
      ).catch((e) => {
        throw new Error(`${e.message}\n${ka.log()}`);
      });
      await new Promise((r) => setTimeout(r, 1000));
      expect((await ka.state())?.state).toBe("BACKUP");
      expect((await vr.status("ra")).role).toBe("master");
      // An end system that learned the VIP's MAC now: the virtual MAC (RFC 5798), which
      // whoever is master receives, so it never needs to ARP again.
      const path = await resolveL2Path(lab.host("es1").remote, "198.18.100.10");
      expect(path.nextHopMac).toBe("00:00:5e:00:01:33");
      stream = sendUdpStream(
        lab.host("es1").remote,
        { streamId: 1, dstIp: "198.18.100.10", dstPort: 5200, pps: 500, durationMs: 8000 },
        path,
      );
      await new Promise((r) => setTimeout(r, 500));

      // 2. The reference fails (links down, process killed): keepalived takes over.
      const failA = Date.now();
      await lab
        .host("ra")
        .exec(`ip link set eth0 down; ip link set eth1 down; kill -9 ${vr.agents.get("ra")?.pid}`);
      const kaMaster = await until("keepalived MASTER", async () => {
        const s = await ka.state();
        return s?.state === "MASTER" ? s : undefined;
      });
      const kaTakeoverMs = kaMaster.at - failA;
      await vr.stop();

      // 3. The reference returns with a lower priority (100): keepalived stays master, both agree.
      await lab.host("ra").exec("ip link set eth0 up; ip link set eth1 up");
      vr = await startVirtualRouter(lab, cfg(100));
      await new Promise((r) => setTimeout(r, 1500));
      expect((await vr.status("ra")).role).toBe("backup");
      expect((await vr.status("ra")).masterAddress).toBe("198.18.1.3");
      expect((await ka.state())?.state).toBe("MASTER");

      // 4. keepalived fails (killed, link down): the reference takes over.
      const failB = Date.now();
      await lab.host("rb").exec("ip link set eth0 down; ip link set eth1 down");
      await ka.kill();
      await vr.waitForMaster(10_000, "ra");
      const refTakeover = vr.roleEvents.find((e) => e.host === "ra" && e.role === "master" && e.at >= failB);
      const refTakeoverMs = (refTakeover?.at ?? Number.NaN) - failB;
      const sent = await (stream as ReturnType<typeof sendUdpStream>);
      await new Promise((r) => setTimeout(r, 200));
      const report = await receiver.stop();
      const s = report.streams.find((x) => x.streamId === 1);
      console.log(
        JSON.stringify({
          kaTakeoverMs,
          refTakeoverMs,
          sent: sent.sent,
          received: s?.unique,
          longestGapMs: s?.longestInterruption?.ms,
        }),
      );
      const mdi150 = masterDownIntervalMs(150, advertIntervalMs / 10);
      const mdi100 = masterDownIntervalMs(100, advertIntervalMs / 10);
      expect(kaTakeoverMs).toBeLessThan(mdi150 + 300);
      expect(refTakeoverMs).toBeLessThan(mdi100 + 100);
      // The end system (sending to the virtual MAC) was served by whoever was master: it lost
      // only what the two takeovers cost (Master_Down_Interval each, at 500 pps).
      const takeoverBudget = Math.ceil(((mdi150 + mdi100 + 400) / 1000) * 500);
      expect(sent.sent - (s?.unique ?? 0)).toBeLessThan(takeoverBudget);
    } finally {
      await vr.stop();
      await ka.kill();
      await lab.host("rb").exec("ip link set eth0 up; ip link set eth1 up");
      await lab.host("ra").exec("ip link set eth0 up; ip link set eth1 up");
    }
  }, 120_000);
});
