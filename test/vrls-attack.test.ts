// Issue 15, the live attack on the Fig. 7 VRLS lab (lib/attack/vrls-attack.ts): end system
// es4 floods the LAN with crafted VRRP/VRLS frames of 15 kinds (forged, TTL 254, truncated,
// over-long, over-counted, wrong version/type/VRID/checksum, random, empty, replayed) from
// rotating source addresses, including the members' own, while UDP and TCP streams from
// five end systems cross the virtual router. Smaller than the benchmark (bench/vrls-attack.ts:
// 100,000 frames over 30 s), the same checks.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printVrlsAttack, runVrlsAttack } from "../lib/attack/vrls-attack.ts";
import { type Lab, upLab } from "../lib/lab/index.ts";
import {
  type RunningVirtualRouter,
  startVirtualRouter,
  virtualRouterConfig,
} from "../lib/roles/vrls/harness/lab-harness.ts";
import { loadTopology } from "../lib/topology/load.ts";
import { sendUdpStream } from "../lib/traffic/udp.ts";

const FRAMES = 30_000;
const DURATION_MS = 10_000;
/** Gratuitous ARP claiming the VIP from es4's MAC, 2.5 s apart. */
const GARP_SPOOFS = 4;

describe("VRLS under a live attack from an end system", () => {
  const loaded = loadTopology("labs/vrls-fig7.yaml");
  let lab: Lab;
  let vr: RunningVirtualRouter;
  beforeAll(async () => {
    lab = await upLab(loaded);
    vr = await startVirtualRouter(lab, virtualRouterConfig(loaded, "vr1", { advertIntervalMs: 100 }));
    await vr.waitForMaster(15_000, "ra");
    // Every end system known to the master before the attack (passive discovery).
    await Promise.all(
      ["es1", "es2", "es3", "es4", "es5", "es6"].map((h, i) =>
        sendUdpStream(lab.host(h).remote, {
          streamId: 900 + i,
          dstIp: "198.18.100.10",
          dstPort: 5999,
          pps: 100,
          count: 20,
        }),
      ),
    );
    await vr.waitAllocated(6);
  }, 120_000);
  afterAll(async () => {
    await vr?.stop();
    await lab?.down();
  }, 60_000);

  it(`${FRAMES} crafted frames in ${DURATION_MS / 1000} s: no role change, nothing accepted, every frame counted, streams intact`, async () => {
    const r = await runVrlsAttack(lab, vr, {
      frames: FRAMES,
      durationMs: DURATION_MS,
      garpSpoofs: GARP_SPOOFS,
    });
    printVrlsAttack(r);
    expect(r.frames).toBe(FRAMES);
    expect(r.sendFailures).toBe(0);
    expect(r.captured, "genuine messages captured for the replay kind").toBeGreaterThan(0);
    // No role change: no second master, no advertisement, GARP or allocation from a backup.
    expect(r.roleEvents).toEqual([]);
    for (const m of r.members) {
      expect(m.roleAfter, m.host).toBe(m.roleBefore);
      expect(m.ownersUnchanged, m.host).toBe(true);
      expect(m.rxDrops, `${m.host}: lost in the receive buffer`).toBe(0);
      if (m.roleBefore === "backup") {
        expect(m.sent.advertisements, m.host).toBe(0);
        expect(m.sent.garp, m.host).toBe(0);
        expect(m.garpReasserts, m.host).toBe(0);
        expect(m.sent.allocations, m.host).toBe(0);
      }
      // Every frame the attacker sent was shed by the member's kernel guard or rejected by
      // its agent, each counted under a reason.
      const shed = Object.values(m.shed).reduce((a, b) => a + b, 0);
      const rejected = Object.values(m.rejected).reduce((a, b) => a + b, 0);
      expect(
        shed + rejected,
        `${m.host}: shed ${JSON.stringify(m.shed)} rejected ${JSON.stringify(m.rejected)}`,
      ).toBe(FRAMES);
      // Memory bounded: the agent grew by less than 32 MiB.
      expect(m.rssAfter - m.rssBefore, m.host).toBeLessThan(32 * 2 ** 20);
    }
    const master = r.members.find((m) => m.roleBefore === "master")!;
    expect(master.sent.advertisements).toBeGreaterThan(0);
    expect(master.sent.allocations, "the master reallocated under the attack").toBe(0);
    // Gratuitous ARP claiming the VIP from another MAC: the master counts each as an
    // address conflict and re-asserts the VIP with its own gratuitous ARP (at once and
    // again after the end systems' 1 s ARP locktime), seen on the wire after every spoof.
    expect(r.garp.spoofs).toBe(GARP_SPOOFS);
    expect(master.arpConflicts, "address conflicts counted by the master").toBe(GARP_SPOOFS);
    expect(master.garpReasserts).toBeGreaterThanOrEqual(GARP_SPOOFS);
    expect(master.sent.garp).toBe(master.garpReasserts);
    expect(r.garp.reassertionsOnWire).toBeGreaterThanOrEqual(GARP_SPOOFS);
    for (const d of r.garp.reassertDelaysMs) {
      expect(d, `re-assertion after each spoof: ${JSON.stringify(r.garp.reassertDelaysMs)}`).not.toBeNull();
      expect(d as number).toBeLessThan(500);
    }
    expect(r.allocationAfter).toEqual(r.allocationBefore);
    expect(r.udp.sent).toBeGreaterThan(0);
    // 0 lost, except the datagrams the spoofed ARP misdirected to es4 (counted there, per
    // source): es1-es3 send to the virtual MAC they resolved before the attack (no ARP on
    // their path); es5/es6 cross router rc, whose ARP entry for the VIP the spoof moves.
    console.log(`udp lost ${r.udp.lost}, misdirected to es4 ${r.garp.misdirected.udp}`);
    expect(r.garp.capture?.complete).toBe(true);
    for (const [host, u] of Object.entries(r.udpByHost))
      expect(u.lost, `${host}: lost vs misdirected ${JSON.stringify(r.garp.misdirectedBySource)}`).toBe(
        u.misdirected,
      );
    expect(r.udp.lost).toBe(r.garp.misdirected.udp);
    expect(r.udp.duplicated).toBe(0);
    expect(r.tcp.recordsReceived).toBe(r.tcp.recordsWritten);
    expect(r.tcp.discontinuities).toBe(0);
    expect(r.tcp.resets).toBe(0);
  }, 120_000);
});
