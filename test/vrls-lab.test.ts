// The VRLS reference router on the seed's Fig. 7 lab (real namespaces, kernel, packets), with
// two and with three members: election, discovery (ICMP + passive), equal split, attribution
// on the far segment by source MAC, sums, and the live sharing table as `vrls show` reads it.
import { describe, expect, it } from "vitest";
import { withLab } from "../lib/lab/index.ts";
import { bucketOf } from "../lib/roles/vrls/conditions.ts";
import {
  startInfoResponders,
  startVirtualRouter,
  virtualRouterConfig,
} from "../lib/roles/vrls/harness/lab-harness.ts";
import { readVrls } from "../lib/roles/vrls/harness/show.ts";
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
const MEMBERS: Record<string, { address: string; farMac: string }> = {
  ra: { address: "198.18.1.2", farMac: "02:00:00:00:64:02" },
  rb: { address: "198.18.1.3", farMac: "02:00:00:00:64:03" },
  rd: { address: "198.18.1.5", farMac: "02:00:00:00:64:05" },
};

for (const [file, members] of [
  ["labs/vrls-fig7.yaml", ["ra", "rb"]],
  ["labs/vrls-fig7x3.yaml", ["ra", "rb", "rd"]],
] as const) {
  describe(`VRLS reference router on ${file}`, () => {
    it(`${members.length} members: one master, discovery (ICMP + passive), equal split, each end system forwarded by exactly its member`, async () => {
      const loaded = loadTopology(file);
      await withLab(loaded, async (lab) => {
        const responders = await startInfoResponders(lab, ["es1", "es2", "es3", "es4"]);
        const vr = await startVirtualRouter(
          lab,
          virtualRouterConfig(loaded, "vr1", { advertIntervalMs: 100 }),
        );
        try {
          await vr.waitForMaster(15_000, "ra").catch(async (e) => {
            throw new Error(`${e.message}\n${await vr.diagnostics()}`);
          });
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
          expect(counts).toEqual(
            Object.fromEntries(members.map((m) => [MEMBERS[m]!.address, 6 / members.length])),
          );

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
            const owner = members.find((m) => MEMBERS[m]!.address === allocation[ES_ADDR[h]!]) ?? "?";
            expect(result.attribution, `${h} served by ${owner}`).toEqual({
              [MEMBERS[owner]?.farMac ?? "?"]: sender.sent,
            });
            expect(result.lost).toBe(0);
            expect(result.duplicated).toEqual({ receiver: 0, wire: 0 });
            sentTotal += sender.sent;
            receivedTotal += result.received;
          }
          expect(receivedTotal).toBe(sentTotal);

          // `tandem vrls show`: every member's live table and per-condition counters, read over SSH.
          await new Promise((r) => setTimeout(r, 700));
          const views = await readVrls(lab.prefix);
          expect(views.map((v) => v.host).sort()).toEqual([...members].sort());
          for (const v of views) {
            expect(v.statusError).toBeUndefined();
            const st = v.status as { role: string; member: { owners: Record<string, string> } };
            expect(st.role).toBe(v.host === "ra" ? "master" : "backup");
            expect(st.member.owners).toEqual(allocation);
            const mine = Object.entries(allocation)
              .filter(([, m]) => m === MEMBERS[v.host]!.address)
              .map(([c]) => c);
            expect(Object.keys(v.counters.own ?? {}).sort()).toEqual(mine.sort());
            // Each member forwarded its own end systems' 2000 packets (plus the discovery traffic).
            for (const c of mine) expect(v.counters.own?.[c] ?? 0).toBeGreaterThanOrEqual(2000);
          }
        } finally {
          await vr.stop();
          await Promise.all(responders.map((r) => r.stop().catch(() => undefined)));
        }
      });
    }, 180_000);
  });
}

describe("VRLS hash-bucket conditions on labs/vrls-fig7.yaml", () => {
  it("8 buckets of jhash(source) split 4/4; each end system is forwarded by the owner of its bucket", async () => {
    const loaded = loadTopology("labs/vrls-fig7.yaml");
    await withLab(loaded, async (lab) => {
      const vr = await startVirtualRouter(
        lab,
        virtualRouterConfig(loaded, "vr1", {
          advertIntervalMs: 100,
          conditions: { kind: "bucket", over: "src", count: 8, seed: 7 },
        }),
      );
      try {
        await vr.waitForMaster(15_000, "ra");
        const allocation = await vr.waitAllocated(8);
        const counts: Record<string, number> = {};
        for (const m of Object.values(allocation)) counts[m] = (counts[m] ?? 0) + 1;
        expect(counts).toEqual({ "198.18.1.2": 4, "198.18.1.3": 4 });
        const server = lab.host("server").remote;
        const capture = await Capture.start(server, { interface: "eth0", filter: "udp dst port 5001" });
        const senders = await Promise.all(
          ES.map((h, i) =>
            sendUdpStream(lab.host(h).remote, {
              streamId: 50 + i,
              dstIp: "198.18.100.10",
              dstPort: 5001,
              pps: 1000,
              count: 1000,
            }),
          ),
        );
        await new Promise((r) => setTimeout(r, 300));
        await capture.stop();
        const wire = await analyzeCapture(capture.reader());
        for (const [i, h] of ES.entries()) {
          const bucket = bucketOf("src", ES_ADDR[h]!, "198.18.100.10", 8, 7);
          const owner = allocation[`src#${bucket}/8@7`];
          const mac = Object.values(MEMBERS).find((m) => m.address === owner)?.farMac ?? "?";
          const result = analyzeStream({
            sender: senders[i]!,
            wire: wire.streams.find((s) => s.streamId === 50 + i),
          });
          expect(result.attribution, `${h} (bucket ${bucket}) served by ${owner}`).toEqual({ [mac]: 1000 });
        }
      } finally {
        await vr.stop();
      }
    });
  }, 180_000);
});
