import { type NatlbAttackReport, printNatlbAttack, runNatlbAttack } from "../lib/attack/natlb-attack.ts";
import { upLab } from "../lib/lab/lab.ts";
import { startNatlb, stopNatlb } from "../lib/roles/natlb/harness/lab-harness.ts";
import { loadNatlbSection } from "../lib/roles/natlb/section.ts";
import { loadTopology } from "../lib/topology/load.ts";

/**
 * `tandem bench natlb-attack`: the live attack of issue 15 at full size on the Fig. 3
 * NAT-LB lab: 100,000 crafted control datagrams over 30 s from server 5b to both balancers,
 * the control server and server 5a, while TCP and UDP streams cross both balancers
 * (lib/attack/natlb-attack.ts). NATLB_ATTACK_FRAMES / NATLB_ATTACK_MS change the size.
 */
export async function runNatlbAttackBench(
  frames = Number(process.env.NATLB_ATTACK_FRAMES ?? 100_000),
  durationMs = Number(process.env.NATLB_ATTACK_MS ?? 30_000),
): Promise<NatlbAttackReport> {
  if (!Number.isInteger(frames) || frames < 1 || !(durationMs > 0))
    throw new Error(
      `NATLB_ATTACK_FRAMES must be a positive integer and NATLB_ATTACK_MS a positive number, got ${frames} and ${durationMs}`,
    );
  const loaded = loadTopology("labs/natlb-fig3.yaml");
  const lab = await upLab(loaded);
  try {
    const rig = await startNatlb(lab, loadNatlbSection(loaded));
    try {
      return await runNatlbAttack(rig, { frames, durationMs });
    } finally {
      await stopNatlb(rig);
    }
  } finally {
    await lab.down();
  }
}

export { printNatlbAttack };
