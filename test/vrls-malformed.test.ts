// Hostile extension messages on the Fig. 7 LAN, sent from an end system through the scapy
// bridge: forged (wrong HMAC key), malformed (structure broken, correctly sealed), replayed,
// and with TTL != 255. Every one is counted by reason and dropped (TTL 254 by the member's
// kernel guard, the rest by its agent); the allocation stands.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { startVirtualRouter, virtualRouterConfig } from "../lib/roles/vrls/lab-harness.ts";
import { ScapyBridge } from "../lib/scapy-bridge/bridge.ts";
import { loadTopology } from "../lib/topology/load.ts";
import { sendUdpStream } from "../lib/traffic/udp.ts";
import { ETHERTYPE, encodeEthernet } from "../lib/wire/ethernet.ts";
import { encodeIpv4, IP_PROTOCOL } from "../lib/wire/ipv4.ts";
import { encodeVrls, resealVrls, type VrlsMessage } from "../lib/wire/vrls.ts";

const ES = ["es1", "es2", "es3", "es4", "es5", "es6"];

describe("VRLS extension messages that must be dropped", () => {
  const loaded = loadTopology("labs/vrls-fig7.yaml");
  let lab: Lab;
  beforeAll(async () => {
    lab = await upLab(loaded);
  }, 120_000);
  afterAll(async () => {
    await lab?.down();
  }, 60_000);

  it("forged, malformed, replayed and TTL-254 messages are counted and dropped; the allocation does not change", async () => {
    const cfg = virtualRouterConfig(loaded, "vr1", { advertIntervalMs: 100 });
    const vr = await startVirtualRouter(lab, cfg);
    const attacker = await ScapyBridge.startRemote(lab.host("es2").remote);
    try {
      await vr.waitForMaster(15_000, "ra");
      await Promise.all(
        ES.map((h, i) =>
          sendUdpStream(lab.host(h).remote, {
            streamId: 700 + i,
            dstIp: "198.18.100.10",
            dstPort: 5999,
            pps: 100,
            count: 20,
          }),
        ),
      );
      const before = await vr.waitAllocated(6);
      const rbBefore = await vr.status("rb");
      const mac = JSON.parse((await lab.host("es2").exec("ip -j link show eth0")).stdout)[0]
        .address as string;
      const key = new TextEncoder().encode(cfg.spec.key);
      const wrongKey = new TextEncoder().encode("not-the-lab-key");
      // The master's own allocation serial and epoch, so a forged one would be "newer".
      const epoch = (await vr.status("ra")).master?.epoch ?? 1;
      const allocation = (sequence: number): VrlsMessage => ({
        vrid: 51,
        priority: 200,
        maxAdverIntCs: 10,
        addresses: ["198.18.1.1"],
        sender: "198.18.1.2",
        senderIncarnation: 0xfffffff0,
        sequence,
        masterEpoch: epoch + 1000,
        inReplyTo: 0,
        type: 3,
        allocationSerial: 9999,
        mode: "exactly-once",
        timerDelayMs: 0,
        // Everything to rb, as if the master had said so.
        assignments: [
          {
            router: "198.18.1.3",
            conditions: ES.map((_, i) => ({
              kind: "prefix",
              address: i < 4 ? `198.18.1.1${i + 1}` : `198.18.2.1${i - 3}`,
              prefixLength: 32,
            })),
          },
        ],
      });
      const frame = (vrrp: Uint8Array, ttl = 255) =>
        encodeEthernet({
          dst: "01:00:5e:00:00:12",
          src: mac,
          etherType: ETHERTYPE.ipv4,
          payload: encodeIpv4({
            src: "198.18.1.2",
            dst: "224.0.0.18",
            protocol: IP_PROTOCOL.vrrp,
            ttl,
            tos: 0xc0,
            payload: vrrp,
          }),
        });
      const codec = { src: "198.18.1.2", dst: "224.0.0.18" };
      // 1. Forged: signed with the wrong key.
      await attacker.send("eth0", frame(encodeVrls(allocation(1), { ...codec, key: wrongKey })), {
        count: 5,
      });
      // 2. Malformed but sealed with the right key: the assignment count claims more than there is.
      const good = encodeVrls(allocation(2), { ...codec, key });
      const broken = good.slice();
      const countOffset = 8 + 4 + 24 + 8; // VRRP header, 1 address, extension header, serial+mode+delay
      broken[countOffset] = 0x7f;
      await attacker.send("eth0", frame(resealVrls(broken, { ...codec, key })), { count: 5 });
      // 3. TTL 254 (RFC 5798 7.1: must be 255), otherwise genuine.
      await attacker.send("eth0", frame(encodeVrls(allocation(3), { ...codec, key }), 254), { count: 5 });
      await new Promise((r) => setTimeout(r, 500));
      const rb = await vr.status("rb");
      const rx = rb.rx as Record<string, number>;
      // Nothing moved.
      expect((await vr.status("ra")).master?.allocation).toEqual(before);
      expect((await vr.status("rb")).member.owners).toEqual(rbBefore.member.owners);
      expect(rx["rx.rejected.unauthenticated"] ?? 0).toBe(5);
      expect(rx["rx.rejected.malformed"] ?? 0).toBe(5);
      // TTL 254 never reaches the agent: its kernel guard (issue 15) sheds and counts it.
      expect(rx["rx.rejected.ttl-not-255"] ?? 0).toBe(0);
      expect((rb.rxGuard as Record<string, number>).bad_ttl).toBe(5);
      // 4. Replay: a genuine allocation captured on the LAN during a real reallocation, sent again.
      const sniff = await attacker.sniffStart({
        iface: "eth0",
        filter: "ip proto 112 and dst host 224.0.0.18 and ether[14+20] = 0x33",
        timeoutMs: 3000,
        count: 1,
      });
      await vr.agents.get("ra")!.call("reallocate", {
        moves: { "198.18.1.11": before["198.18.1.11"] === "198.18.1.2" ? "198.18.1.3" : "198.18.1.2" },
      });
      await vr.agents.get("ra")!.call("waitIdle", { timeoutMs: 5000 });
      const captured = await attacker.sniffWait(sniff.handle);
      expect(captured.length).toBe(1);
      const settled = (await vr.status("ra")).master?.allocation;
      const rbSettled = await vr.status("rb");
      await attacker.send("eth0", Buffer.from(captured[0]!.hex, "hex"), { count: 3 });
      await new Promise((r) => setTimeout(r, 300));
      const rx2 = (await vr.status("rb")).rx as Record<string, number>;
      expect(rx2["rx.rejected.replay"] ?? 0).toBe(3);
      expect((await vr.status("ra")).master?.allocation).toEqual(settled);
      expect((await vr.status("rb")).member.version).toBe(rbSettled.member.version);
      expect(Object.values(settled ?? {}).filter((m) => m === "198.18.1.3")).toHaveLength(
        Object.values(before).filter((m) => m === "198.18.1.3").length +
          (before["198.18.1.11"] === "198.18.1.2" ? 1 : -1),
      );
    } finally {
      await attacker.close();
      await vr.stop();
    }
  }, 120_000);
});
