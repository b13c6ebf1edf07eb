// Controller agent: the control function 52 of seed 002 on the control server 5c
// (controller.ts), driven over JSON-RPC by the lab and talking to the balancers and the
// servers' keepers with the NAT-LB control messages over UDP.
import { agentArgs, log, serveAgent } from "../../remote/agent-runtime.ts";
import { pause } from "../../remote/wait.ts";
import { encodeNatlb } from "../../wire/natlb.ts";
import { type NatlbConfig, NatlbSection, nodeIds } from "./config.ts";
import { ControlChannel } from "./control-channel.ts";
import { Controller } from "./controller.ts";
import type { MoveKind, MoveStep } from "./move.ts";

interface Args {
  config: unknown;
  /** The move journal (kept across controller restarts). */
  journal: string;
  /** Where the control channel's counters go every 500 ms (`tandem natlb show`). */
  statusFile?: string;
  /** Seeded faults (lib/roles/seeded-faults.ts); absent: none. */
  faults?: string[];
}

const args = agentArgs<Args>();
const config: NatlbConfig = NatlbSection.parse(args.config);
let controller: Controller | undefined;

/** A move stopped after a step until resumed (holdAfter / whenHeld / resume). */
interface Gate {
  step: MoveStep;
  reached: boolean;
  resume?: () => void;
  waiters: ((reached: boolean) => void)[];
}
let gate: Gate | undefined;

function liftGate(): void {
  const g = gate;
  gate = undefined;
  if (!g) return;
  if (controller) controller.onStep = undefined;
  g.resume?.();
  for (const w of g.waiters.splice(0)) w(false);
}

function ctl(): Controller {
  if (!controller) throw new Error("controller not started");
  return controller;
}

serveAgent({
  name: "natlb-controller",
  methods: {
    async start(p: { waitForReports?: boolean; recover?: boolean; auto?: boolean } = {}) {
      if (!controller) {
        const ch = await ControlChannel.open({
          id: 1,
          keyHex: config.control.key,
          port: config.control.port,
          // Issue 15: a sealed message naming a VIP the lab does not have is refused (unknown-vip).
          vips: config.vips.map((v) => v.address),
        });
        // Issue 15: load reports (7) and acks (6) from the balancers, acks from the keepers.
        // Copy pushes (5) from the balancers too: the controller shares its host and port
        // with that server's keeper (both bound with SO_REUSEADDR) and may be the socket
        // the kernel hands them to; they were always taken and ignored here.
        const ids = nodeIds(config);
        const balancerIds = new Set(ids.balancer.values());
        const keeperIds = new Set(ids.keeper.values());
        // And its own copy request (3) to the keeper of its own host, with the ack (6) it
        // gives itself: that keeper shares the port, the kernel hands the request to this
        // socket, and the channel answers it (0 entries), as it always has. Refusing them
        // left every failover waiting 2 x 30 s (natlb.failover). Open defect: the keeper on
        // the controller's host takes no part in copy keeping (docs/natlb.md).
        ch.accepts = (type, sender) =>
          sender === ids.controller
            ? type === 3 || type === 6
            : balancerIds.has(sender)
              ? type === 5 || type === 6 || type === 7
              : keeperIds.has(sender) && type === 6;
        if (args.statusFile) ch.writeStatus(args.statusFile, "controller", config.controller.host);
        controller = new Controller(config, ch, args.journal);
        controller.faults = new Set(args.faults ?? []);
      }
      if (p.waitForReports ?? true) await controller.waitForReports();
      const recovered = (p.recover ?? true) ? await controller.recover() : [];
      if (p.auto) controller.startAuto();
      return { recovered, status: controller.status() };
    },
    status: () => ctl().status(),
    move: (p: { vip: string; to: string; kind?: MoveKind; from?: string }) =>
      ctl().move(p.vip, p.to, p.kind ?? "planned", p.from),
    rebalance: () => ctl().rebalance(),
    checkFailures: (p: { entriesFirst?: boolean } = {}) => ctl().checkFailures(p.entriesFirst),
    balance: () => {
      const b = ctl().balance();
      return { loads: Object.fromEntries(b.loads), imbalance: b.imbalance };
    },
    startAuto: (
      p: {
        everyMs?: number;
        entriesFirst?: boolean;
        rebalance?: { everyMs: number; threshold?: number; holdDownMs?: number };
      } = {},
    ) => {
      ctl().entriesFirstFailover = p.entriesFirst ?? false;
      ctl().startAuto(p.everyMs ?? 100, p.rebalance);
      return { auto: true };
    },
    stopAuto: () => ctl().stopAuto(),
    /** Test hook: the process dies (exit 3) right after `step` of the next move, as in a crash. */
    crashAfter: (p: { step: MoveStep }) => {
      ctl().crashAfter(p.step, () => {
        log(`crashing after step ${p.step} (test hook)`);
        process.exit(3);
      });
      return { armed: p.step };
    },
    /**
     * Test hook: the next move waits `ms` after `step` (once). A move takes milliseconds, too
     * short for a given load to be sure to send the new owner anything to hold; a pause
     * after the route switch makes the transition hold certain (and long) for a test.
     */
    pauseAfter: (p: { step: MoveStep; ms: number }) => {
      let armed = true;
      ctl().onStep = async (_id, s) => {
        if (!armed || s !== p.step) return;
        armed = false;
        await pause(p.ms); // time is the subject: the test hook holds the move this long
      };
      return { armed: p.step, ms: p.ms };
    },
    /**
     * The next move stops after `step` (once) until `resume`: the caller acts while the move
     * is there (the suite's probes reach the new owner while it holds the VIP in transition
     * mode). `whenHeld` resolves true once the move stopped there, false if the gate was
     * lifted (resume) before the move reached it.
     */
    holdAfter: (p: { step: MoveStep; maxMs?: number }) => {
      liftGate();
      const g: Gate = { step: p.step, reached: false, waiters: [] };
      gate = g;
      ctl().onStep = async (_id, s) => {
        if (gate !== g || s !== g.step || g.reached) return;
        g.reached = true;
        const resumed = new Promise<void>((r) => {
          g.resume = r;
        });
        for (const w of g.waiters.splice(0)) w(true);
        // A caller that never resumes (it died) must not leave the VIP in transition for good.
        const bound = setTimeout(() => {
          if (gate === g) liftGate();
        }, p.maxMs ?? 10_000);
        await resumed;
        clearTimeout(bound);
      };
      return { armed: p.step };
    },
    whenHeld: () => {
      const g = gate;
      if (!g) return false;
      if (g.reached) return true;
      return new Promise<boolean>((r) => g.waiters.push(r));
    },
    resume: () => {
      const was = gate?.reached ?? false;
      liftGate();
      return { resumed: was };
    },
    /**
     * Test hook: sends bad control messages to a balancer. "unauthenticated": a valid
     * message sealed with a wrong key; "truncated": a valid message cut short; "replayed":
     * a valid, harmless message (leave transition mode for a VIP) sent twice.
     */
    sendBad: (p: {
      to: string;
      kind: "unauthenticated" | "truncated" | "replayed";
      vip: string;
      count?: number;
    }) => {
      const c = ctl();
      const b = config.balancers[p.to];
      const toId = c.ids.balancer.get(p.to);
      if (!b || toId === undefined) throw new Error(`no balancer named "${p.to}"`);
      const dest = { address: b.address, port: config.control.port };
      const body = { type: 1 as const, vip: p.vip, from: 0, to: toId, enter: false };
      for (let i = 0; i < (p.count ?? 1); i++) {
        if (p.kind === "unauthenticated") {
          const wrong = Buffer.alloc(32, 0x5a);
          c.channel.sendRaw(
            encodeNatlb({ ...body, sender: 1, sequence: c.channel.nextSequence(), moveId: 0 }, wrong),
            dest,
          );
        } else if (p.kind === "truncated") {
          const good = c.channel.encode(body);
          c.channel.sendRaw(good.subarray(0, Math.max(1, good.length - 7 - i)), dest);
        } else {
          const good = c.channel.encode(body);
          c.channel.sendRaw(good, dest);
          c.channel.sendRaw(good, dest);
        }
      }
      return { sent: p.count ?? 1 };
    },
    channel: () => ({
      counters: controller?.channel.counters,
      rejects: controller?.channel.rejects,
      lastRejects: controller?.channel.lastRejects,
      rssBytes: process.memoryUsage().rss,
    }),
  },
  onShutdown: () => {
    liftGate();
    controller?.stopAuto();
    controller?.channel.close();
  },
});
