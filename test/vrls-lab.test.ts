// The VRLS reference router on the seed's Fig. 7 lab (real namespaces, kernel, packets):
// election, discovery, equal split, attribution on the far segment by source MAC.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lab, upLab } from "../lib/lab/index.ts";
import type { AgentClient } from "../lib/remote/index.ts";
import {
  type RunningVirtualRouter,
  startInfoResponders,
  startVirtualRouter,
  virtualRouterConfig,
} from "../lib/roles/vrls/lab-harness.ts";
import { loadTopology } from "../lib/topology/load.ts";
import { analyzeCapture, analyzeStream } from "../lib/traffic/analyzer.ts";
import { Capture } from "../lib/traffic/capture.ts";
import { sendUdpStream, UdpReceiver } from "../lib/traffic/udp.ts";

const ES = ["es1", "es2", "es3", "es4", "es5", "es6"];
const ES_ADDR: Record<string, string> = {
  es1: "198.18.1.11",
  es2: "198.18.1.12",
  es3: "198.18.1.13",
  es4: "198.18.1.14",
  es5: "198.18.2.11",
  es6: "198.18.2.12",
};
const FAR_MAC: Record<string, string> = { ra: "02:00:00:00:64:02", rb: "02:00:00:00:64:03" };
const MEMBER_ADDR: Record<string, string> = { ra: "198.18.1.2", rb: "198.18.1.3" };

describe("VRLS reference router on the Fig. 7 lab", () => {
  const loaded = loadTopology("labs/vrls-fig7.yaml");
  let lab: Lab;
  let vr: RunningVirtualRouter | undefined;
  let responders: AgentClient[] = [];

  beforeAll(async () => {
    lab = await upLab(loaded);
  }, 120_000);

  afterAll(async () => {
    await vr?.stop();
    await Promise.all(responders.map((r) => r.stop().catch(() => undefined)));
    await lab?.down();
  }, 60_000);

  it("two members: one master, discovery (ICMP + passive), 3/3 split, each end system forwarded by exactly its member", async () => {
    responders = await startInfoResponders(lab, ["es1", "es2", "es3", "es4"]);
    vr = await startVirtualRouter(lab, virtualRouterConfig(loaded, "vr1", { advertIntervalMs: 100 }));
    const master = await vr.waitForMaster(15_000, "ra").catch(async (e) => {
      throw new Error(`${e.message}\n${await vr?.diagnostics()}`);
    });
    expect(master).toBe("ra");
    // es5/es6 sit behind router C (no directed broadcast): learned passively from their traffic.
    await Promise.all(
      ["es5", "es6"].map((h, i) =>
        sendUdpStream(lab.host(h).remote, {
          streamId: 900 + i,
          dstIp: "198.18.100.10",
          dstPort: 5999,
          pps: 200,
          count: 100,
        }),
      ),
    );
    const allocation = await vr.waitAllocated(6);
    const status = await vr.status("ra");
    const learned = Object.fromEntries(status.endSystems.map((e) => [e.address, e.learnedBy]));
    expect(learned).toMatchObject({
      "198.18.1.11": "icmp-info",
      "198.18.1.14": "icmp-info",
      "198.18.2.11": "passive",
      "198.18.2.12": "passive",
    });
    const counts: Record<string, number> = {};
    for (const m of Object.values(allocation)) counts[m] = (counts[m] ?? 0) + 1;
    expect(counts).toEqual({ "198.18.1.2": 3, "198.18.1.3": 3 });

    // Measured phase: one stream per end system, attribution on the far segment by source MAC.
    const server = lab.host("server").remote;
    const receiver = await UdpReceiver.start(server, { port: 5000 });
    const capture = await Capture.start(server, { interface: "eth0", filter: "udp dst port 5000" });
    const senders = await Promise.all(
      ES.map((h, i) =>
        sendUdpStream(lab.host(h).remote, {
          streamId: i + 1,
          dstIp: "198.18.100.10",
          dstPort: 5000,
          pps: 1000,
          count: 2000,
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    const report = await receiver.stop();
    await capture.stop();
    const wire = await analyzeCapture(capture.reader());
    let sentTotal = 0;
    let receivedTotal = 0;
    for (const [i, h] of ES.entries()) {
      const sender = senders[i]!;
      const result = analyzeStream({
        sender,
        receiver: report.streams.find((s) => s.streamId === i + 1),
        wire: wire.streams.find((s) => s.streamId === i + 1),
      });
      const owner = Object.entries(MEMBER_ADDR).find(([, a]) => a === allocation[ES_ADDR[h]!])?.[0] ?? "?";
      expect(result.attribution, `${h} served by ${owner}`).toEqual({ [FAR_MAC[owner]!]: sender.sent });
      expect(result.lost).toBe(0);
      expect(result.duplicated).toEqual({ receiver: 0, wire: 0 });
      sentTotal += sender.sent;
      receivedTotal += result.received;
    }
    expect(receivedTotal).toBe(sentTotal);
    // The members' own per-condition counters agree (nft set elements).
    const show = (await vr.agents.get("rb")!.call("show")) as {
      sets: { set: string; elements: { condition: string; packets: number }[] }[];
    };
    const fwd = show.sets.find((s) => s.set === "own")?.elements ?? [];
    expect(fwd.map((e) => e.condition).sort()).toEqual(
      Object.entries(allocation)
        .filter(([, m]) => m === "198.18.1.3")
        .map(([c]) => c)
        .sort(),
    );
  }, 120_000);
});
