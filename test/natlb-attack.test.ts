// Issue 15, the live attack on the Fig. 3 NAT-LB lab (lib/attack/natlb-attack.ts): server
// 5b floods the control port of both balancers, the control server and server 5a with
// crafted NAT-LB control datagrams of 22 kinds (every type forged, a VIP nobody has forged,
// every type sealed with the lab's key by an insider for a VIP nobody has or, the ack, for
// no request; truncated, over-long, wrong version or length, replays of genuine pushes
// captured on the wire, junk, empty) from rotating source addresses, while TCP streams cross both
// balancers' VIPs and UDP streams cross both balancers. Smaller than the benchmark
// (bench/natlb-attack.ts: 100,000 datagrams over 30 s), the same checks.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NATLB_ATTACK_KINDS, printNatlbAttack, runNatlbAttack } from "../lib/attack/natlb-attack.ts";
import { type Lab, upLab } from "../lib/lab/lab.ts";
import { type NatlbRig, startNatlb, stopNatlb } from "../lib/roles/natlb/harness/lab-harness.ts";
import { formatChannelStatus, readChannelStatus } from "../lib/roles/natlb/harness/show.ts";
import { loadNatlbSection } from "../lib/roles/natlb/section.ts";
import { loadTopology } from "../lib/topology/load.ts";

const FRAMES = 20_000;
const DURATION_MS = 10_000;

describe("NAT-LB under a live attack from a server on network 4", () => {
  let lab: Lab | undefined;
  let rig: NatlbRig | undefined;
  beforeAll(async () => {
    const loaded = loadTopology("labs/natlb-fig3.yaml");
    lab = await upLab(loaded);
    rig = await startNatlb(lab, loadNatlbSection(loaded));
  }, 120_000);
  afterAll(async () => {
    await stopNatlb(rig);
    await lab?.down();
  }, 60_000);

  it(`${FRAMES} crafted datagrams in ${DURATION_MS / 1000} s: nothing accepted, every one refused under a reason, tables and streams intact`, async () => {
    const r = await runNatlbAttack(rig as NatlbRig, { frames: FRAMES, durationMs: DURATION_MS });
    printNatlbAttack(r);
    expect(r.frames).toBe(FRAMES);
    expect(r.sendFailures).toBe(0);
    expect(r.captured, "genuine messages captured for the replay kind").toBeGreaterThan(0);
    for (const k of NATLB_ATTACK_KINDS) expect(r.framesPerKind[k], k).toBeGreaterThan(0);
    for (const a of r.agentsUp) expect(a.pidAfter, a.agent).toBe(a.pidBefore);
    for (const h of r.hosts) {
      const refused = Object.values(h.refused).reduce((a, b) => a + b, 0);
      expect(h.rcvbufErrors, `${h.host}: lost in the socket buffer`).toBe(0);
      expect(refused, `${h.host}: refused ${JSON.stringify(h.refused)}`).toBe(h.frames);
      expect(h.refused["bad-hmac"], h.host).toBeGreaterThan(0);
      expect(h.refused.length, h.host).toBeGreaterThan(0);
      expect(h.refused.version, h.host).toBeGreaterThan(0);
      // Replays are refused as replays (a receiver that heard newer from that sender) or as
      // unexpected (a balancer never takes a push, least of all its own).
      expect((h.refused.replay ?? 0) + (h.refused.unexpected ?? 0), h.host).toBeGreaterThan(0);
      // The insider's sealed messages: every type naming an unknown VIP, an ack to nothing.
      const perKind = Math.floor(h.frames / NATLB_ATTACK_KINDS.length);
      expect(h.refused["unknown-vip"], h.host).toBeGreaterThanOrEqual(6 * perKind);
      expect(h.refused["unsolicited-ack"], h.host).toBeGreaterThanOrEqual(perKind);
      // Balancers get no genuine message without a move: nothing of the attack was taken.
      if (h.host.startsWith("lb")) expect(h.accepted, h.host).toBe(0);
      expect(h.rssAfter - h.rssBefore, h.host).toBeLessThan(32 * 2 ** 20);
    }
    expect(r.modesAfter).toEqual(r.modesBefore);
    expect(r.ownersAfter).toEqual(r.ownersBefore);
    expect(r.connectionsAfter).toEqual(r.connectionsBefore);
    expect(Object.values(r.connectionsBefore).flat().length).toBe(3);
    expect(r.udp.sent).toBeGreaterThan(0);
    expect(r.udp.lost).toBe(0);
    expect(r.udp.duplicated).toBe(0);
    expect(r.tcp.recordsWritten).toBeGreaterThan(0);
    expect(r.tcp.recordsReceived).toBe(r.tcp.recordsWritten);
    expect(r.tcp.discontinuities).toBe(0);
    expect(r.tcp.resets).toBe(0);
    // What `tandem natlb show` prints: every host's refusals per reason.
    const shown = await readChannelStatus(lab as Lab, (rig as NatlbRig).config);
    console.log(formatChannelStatus(shown));
    for (const h of r.hosts) {
      const s = shown.filter((c) => c.host === h.host);
      expect(s.length, h.host).toBeGreaterThan(0);
      expect(
        s.reduce((a, c) => a + c.rejects["bad-hmac"], 0),
        h.host,
      ).toBeGreaterThanOrEqual(h.refused["bad-hmac"] ?? 0);
    }
  }, 180_000);
});
