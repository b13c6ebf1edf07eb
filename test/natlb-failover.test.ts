// NAT-LB failover on the seed's Fig. 13 lab (third embodiment): balancer 3a dies (its
// interfaces go down and its process is killed) with 1000 TCP connections on its VIPs;
// the control function notices the missing load reports, moves the VIPs to 3b and has
// the servers' keepers (copy 54) send 3a's entries to 3b.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lab, upLab } from "../lib/lab/lab.ts";
import type { NatlbConfig } from "../lib/roles/natlb/config.ts";
import {
  type ControllerStatus,
  loadReport,
  type NatlbRig,
  startLoad,
  startNatlb,
  status,
  stopNatlb,
  sumReports,
} from "../lib/roles/natlb/lab-harness.ts";
import type { MoveReport } from "../lib/roles/natlb/move.ts";
import { loadNatlbSection } from "../lib/roles/natlb/section.ts";
import { loadTopology } from "../lib/topology/load.ts";

const FIG13 = new URL("../labs/natlb-fig13.yaml", import.meta.url).pathname;
const VIPS_OF_A = ["198.51.100.11", "198.51.100.12"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each([
  { embodiment: "fullnat", order: "four steps", source: "copies" },
  { embodiment: "dnat", order: "Modification 2", source: "copies" },
  { embodiment: "dnat", order: "four steps", source: "socket-table" },
] as const)("Fig. 13 failover, embodiment $embodiment, $order, entries from $source", ({ embodiment, order, source }) => {
  let lab: Lab | undefined;
  let rig: NatlbRig | undefined;

  beforeAll(async () => {
    const loaded = loadTopology(FIG13);
    const section = loadNatlbSection(loaded);
    const config: NatlbConfig = { ...section, embodiment, keeper: { ...section.keeper, source } };
    lab = await upLab(loaded);
    // Modification 1: no copies are pushed at all; the servers' own connection tables serve.
    rig = await startNatlb(lab, config, { push: source === "copies" });
    await rig.controller.call("startAuto", { everyMs: 50, entriesFirst: order === "Modification 2" });
  }, 120_000);

  afterAll(async () => {
    await stopNatlb(rig);
    await lab?.down();
  }, 60_000);

  it("balancer A killed under 1000 connections: its VIPs move to B with entries from the servers' copies", async () => {
    const r = rig as NatlbRig;
    await Promise.all([
      startLoad(r, "fo-11", VIPS_OF_A[0] as string, { connections: 480, downloads: 20 }),
      startLoad(r, "fo-12", VIPS_OF_A[1] as string, { connections: 480, downloads: 20 }),
    ]);
    await sleep(2000);
    // The copy keeping function has every connection by now (pushes every 200 ms).
    const copies = await Promise.all(
      ["s5a", "s5b"].map((h) => r.keepers.get(h)?.call<{ copies: { balancer: string; rows: number }[] }>("stats")),
    );
    const copied = copies.flatMap((c) => c?.copies ?? []).filter((c) => c.balancer === "lba").reduce((a, c) => a + c.rows, 0);
    if (source === "copies") expect(copied).toBeGreaterThanOrEqual(1000);
    else expect(copied).toBe(0);

    // Kill balancer A: interfaces down, agent process killed (kill -9: no clean-up).
    const ping = await r.balancers.get("lba")?.call<{ pid: number }>("ping");
    const killedAt = Date.now();
    await r.lab.host("lba").exec(["sh", "-c", `ip link set eth0 down; ip link set eth1 down; kill -9 ${ping?.pid}`]);

    let st: ControllerStatus | undefined;
    for (let i = 0; i < 200; i++) {
      st = await status(r);
      if (VIPS_OF_A.every((v) => st?.vips.find((x) => x.vip === v)?.owner === "lbb") && st.moves.length >= 2) break;
      await sleep(50);
    }
    const movedAt = Date.now();
    const moves = (st?.moves ?? []) as MoveReport[];
    await sleep(4000);
    const reports = await Promise.all([loadReport(r, "fo-11", true), loadReport(r, "fo-12", true)]);
    const load = sumReports(reports);
    const survived = load.open;
    console.log(
      `failover (${embodiment}, ${order}, ${source}): detected and moved in ${movedAt - killedAt} ms; moves ${JSON.stringify(
        moves.map((m) => ({ vip: m.vip, kind: m.kind, outcome: m.outcome, ms: m.totalMs, entries: m.entriesMoved, src: m.entriesSource })),
      )}; copied ${copied}; survived ${survived}/1000 (${(survived / 10).toFixed(1)}%); longest interruption ${load.maxLatencyMs} ms; ${JSON.stringify(load.errorCodes)}`,
    );
    expect(st?.balancers.find((b) => b.name === "lba")?.alive).toBe(false);
    for (const v of VIPS_OF_A) expect(st?.vips.find((x) => x.vip === v)?.owner).toBe("lbb");
    expect(moves.filter((m) => m.kind.startsWith("failover")).length).toBe(2);
    for (const m of moves) {
      expect(m.outcome).toBe("completed");
      expect(m.entriesSource).toBe("copies");
    }
    expect(moves.reduce((a, m) => a + m.entriesMoved, 0)).toBeGreaterThanOrEqual(1000);
    // Goal: every connection whose entry was copied survives.
    expect(load.resets).toBe(0);
    expect(survived).toBe(1000);
  }, 120_000);
});
