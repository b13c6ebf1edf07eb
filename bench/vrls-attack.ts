import { printVrlsAttack, runVrlsAttack, type VrlsAttackReport } from "../lib/attack/vrls-attack.ts";
import { upLab } from "../lib/lab/index.ts";
import { startVirtualRouter, virtualRouterConfig } from "../lib/roles/vrls/harness/lab-harness.ts";
import { loadTopology } from "../lib/topology/load.ts";
import { sendUdpStream } from "../lib/traffic/udp.ts";

/**
 * `tandem bench vrls-attack`: the live attack of issue 15 at full size on the Fig. 7 lab:
 * 100,000 crafted frames over 30 s from es4 while UDP and TCP streams from five end systems
 * cross the virtual router (lib/attack/vrls-attack.ts). Prints the frames per kind, each
 * member's shed/rejected counters, RSS, what it sent, and the streams' loss/duplicates.
 * VRLS_ATTACK_FRAMES / VRLS_ATTACK_MS change the size (e.g. as fast as the attacker can);
 * VRLS_ATTACK_GARP (default 10) gratuitous ARP frames claim the VIP from es4's MAC.
 */
export async function runVrlsAttackBench(
  frames = Number(process.env.VRLS_ATTACK_FRAMES ?? 100_000),
  durationMs = Number(process.env.VRLS_ATTACK_MS ?? 30_000),
): Promise<VrlsAttackReport> {
  if (!Number.isInteger(frames) || frames < 1 || !(durationMs > 0))
    throw new Error(
      `VRLS_ATTACK_FRAMES must be a positive integer and VRLS_ATTACK_MS a positive number, got ${frames} and ${durationMs}`,
    );
  const loaded = loadTopology("labs/vrls-fig7.yaml");
  const lab = await upLab(loaded);
  try {
    const vr = await startVirtualRouter(lab, virtualRouterConfig(loaded, "vr1", { advertIntervalMs: 100 }));
    try {
      await vr.waitForMaster(15_000, "ra");
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
      const garpSpoofs = Number(process.env.VRLS_ATTACK_GARP ?? 10);
      return await runVrlsAttack(lab, vr, { frames, durationMs, garpSpoofs });
    } finally {
      await vr.stop();
    }
  } finally {
    await lab.down();
  }
}

export { printVrlsAttack };
