// NAT-LB on the seed's Fig. 3 lab (two balancers, three web servers, 5c with the control
// function, clients behind an Internet router), every host reached over SSH, the roles as
// agents, the control function's four steps as authenticated UDP control messages.
// 1000 real TCP connections through the balancers during a VIP move.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lab, upLab } from "../lib/lab/lab.ts";
import type { ClientLoadReport } from "../lib/roles/natlb/client-load.ts";
import type { NatlbConfig } from "../lib/roles/natlb/config.ts";
import {
  holdReportOf,
  loadReport,
  move,
  type NatlbRig,
  startLoad,
  startNatlb,
  status,
  stopNatlb,
  tcpCounters,
} from "../lib/roles/natlb/lab-harness.ts";
import { loadNatlbSection } from "../lib/roles/natlb/section.ts";
import { compareCaptures, type Segment, segmentOf } from "../lib/roles/natlb/wire-check.ts";
import { Capture } from "../lib/traffic/capture.ts";
import { loadTopology } from "../lib/topology/load.ts";

const FIG3 = new URL("../labs/natlb-fig3.yaml", import.meta.url).pathname;
const VIP1 = "198.51.100.11"; // 31a-IP-1 -> server 5a
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function segments(capture: Capture, towardsServer: (src: string, dst: string) => boolean | undefined): Promise<Segment[]> {
  const out: Segment[] = [];
  for await (const rec of capture.reader()) {
    const s = segmentOf(rec, towardsServer);
    if (s) out.push(s);
  }
  return out;
}

async function sumTcp(lab: Lab, hosts: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const h of hosts) for (const [k, v] of Object.entries(await tcpCounters(lab, h))) out[k] = (out[k] ?? 0) + v;
  return out;
}

function delta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
}

describe.each(["dnat", "fullnat"] as const)("Fig. 3 lab, embodiment %s", (embodiment) => {
  let lab: Lab | undefined;
  let rig: NatlbRig | undefined;
  const endpoints = ["c1a", "c1b", "c1c", "s5a"];

  beforeAll(async () => {
    const loaded = loadTopology(FIG3);
    const config: NatlbConfig = { ...loadNatlbSection(loaded), embodiment };
    lab = await upLab(loaded);
    rig = await startNatlb(lab, config);
  }, 120_000);

  afterAll(async () => {
    await stopNatlb(rig);
    await lab?.down();
  }, 60_000);

  it("a planned move of a VIP under 1000 connections: nothing reset, stalled, lost or duplicated", async () => {
    const r = rig as NatlbRig;
    const started = await startLoad(r, "planned", VIP1, { connections: 960, downloads: 40 });
    expect(started.reduce((a, s) => a + s.established, 0)).toBe(1000);
    await sleep(1500);
    // Baseline: the same load for the same time without a move.
    const tcpIdle0 = await sumTcp(r.lab, endpoints);
    await sleep(3000);
    const tcpIdle = delta(tcpIdle0, await sumTcp(r.lab, endpoints));
    console.log(`${embodiment} baseline (no move, 3 s): tcp ${JSON.stringify(tcpIdle)}`);
    const outer = await Capture.start(r.lab.host("inet").remote, { interface: "eth1", filter: "tcp", snapLength: 96 });
    const inner = await Capture.start(r.lab.host("s5a").remote, { interface: "eth0", filter: "tcp port 8080", snapLength: 96 });
    const capFrom = Date.now();
    await sleep(1000);
    const tcpBefore = await sumTcp(r.lab, endpoints);
    const before = await status(r);
    expect(before.vips.find((v) => v.vip === VIP1)?.owner).toBe("lba");
    const m = await move(r, VIP1, "lbb", "planned");
    if (m.outcome !== "completed") {
      console.log(JSON.stringify(m));
      for (const [n, a] of r.balancers) console.log(n, a.logText(), JSON.stringify(await a.call("channel")));
    }
    expect(m.outcome).toBe("completed");
    expect(m.steps.map((s) => s.step)).toEqual(["transition", "precopy", "route", "entries", "end"]);
    expect(m.entriesMoved).toBeGreaterThanOrEqual(1000);
    const hold = await holdReportOf(r, "lbb", m.id);
    expect(hold).toBeDefined();
    expect(hold?.held).toBeGreaterThan(0);
    expect(hold?.released).toBe(hold?.held);
    expect((hold?.overflowDropped ?? 0) + (hold?.timeoutDropped ?? 0) + (hold?.discarded ?? 0)).toBe(0);
    expect(hold?.inOrder).toBe(true);
    await sleep(2500);
    const load: ClientLoadReport = await loadReport(r, "planned");
    const tcp = delta(tcpBefore, await sumTcp(r.lab, endpoints));
    const capTo = Date.now();
    const [outerStats, innerStats] = await Promise.all([outer.stop(), inner.stop()]);
    const server = "198.18.10.11";
    const wire = compareCaptures(
      await segments(outer, (src, dst) => (dst === VIP1 ? true : src === VIP1 ? false : undefined)),
      await segments(inner, (src, dst) => (dst === server ? true : src === server ? false : undefined)),
      { from: capFrom + 500, to: capTo - 1500 },
    );
    await Promise.all([outer.remove(), inner.remove()]);
    console.log(`${embodiment} wire check: ${JSON.stringify(wire)}; capture drops ${outerStats.droppedByKernel}/${innerStats.droppedByKernel}`);
    console.log(
      `${embodiment} planned move: ${m.totalMs} ms (${m.steps.map((s) => `${s.step} ${s.ms}`).join(", ")}); held ${hold?.held} packets, longest ${hold?.holdMs} ms; clients: ${JSON.stringify(load)}; tcp ${JSON.stringify(tcp)}`,
    );
    expect(load.resets).toBe(0);
    expect(load.corrupt).toBe(0);
    expect(load.stalls).toBe(0);
    expect(load.failedConnects).toBe(0);
    expect(load.open).toBe(1000);
    // On the wire: every segment that entered the balancers on one side left on the other, once.
    expect(outerStats.droppedByKernel).toBe(0);
    expect(innerStats.droppedByKernel).toBe(0);
    expect(wire.c2s.sent).toBeGreaterThan(100_000);
    expect(wire.s2c.sent).toBeGreaterThan(100_000);
    expect(wire.c2s.lost + wire.c2s.duplicated + wire.s2c.lost + wire.s2c.duplicated).toBe(0);
    const after = await status(r);
    expect(after.vips.find((v) => v.vip === VIP1)?.owner).toBe("lbb");
    await loadReport(r, "planned", true);
  }, 120_000);
});
