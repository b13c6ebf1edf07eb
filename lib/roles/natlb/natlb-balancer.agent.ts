// Balancer agent (load balancers 3a/3b of seed 002): the kernel translates, this agent
// runs the control side (Balancer), answers the control function's messages over UDP
// (control-channel.ts), pushes table copies to the servers (Fig. 13) and reports load.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { inProcessNft } from "../../dataplane/nft.ts";
import { agentArgs, log, serveAgent } from "../../remote/agent-runtime.ts";
import { localHost } from "../../remote/command.ts";
import { entriesPerDatagram } from "../../wire/natlb.ts";
import { Balancer } from "./balancer.ts";
import { type NatlbConfig, NatlbSection, nodeIds } from "./config.ts";
import { type ConnEntry, entryRow } from "./conn-table.ts";
import type { CtWatcher } from "./conntrack.ts";
import { ControlChannel } from "./control-channel.ts";
import type { HoldReport } from "./hold.ts";
import { NfqueueHold } from "./nfqueue-hold.ts";
import { PartAssembler, sendEntryParts, wireEntries } from "./transfer.ts";
import { toWireEntry } from "./wire-entry.ts";

interface Args {
  config: unknown;
  name: string;
  /** Seeded faults (lib/roles/seeded-faults.ts); absent: none. */
  faults?: string[];
  /** Where the control channel's counters go every 500 ms (`tandem natlb show`). */
  statusFile?: string;
}

const args = agentArgs<Args>();
const config: NatlbConfig = NatlbSection.parse(args.config);
const ids = nodeIds(config);
const myId = ids.balancer.get(args.name);
if (myId === undefined) throw new Error(`no balancer named "${args.name}"`);
const host = localHost();
const hold = new NfqueueHold(config, host);
// One persistent libnftables context for the agent's life (its owner table dies with it).
const faults: ReadonlySet<string> = new Set(args.faults ?? []);
const balancer = new Balancer(args.name, config, host, hold, { nft: inProcessNft(), faults });
const holdReports: (HoldReport & { moveId: number; at: number })[] = [];
const assembler = new PartAssembler();
let channel: ControlChannel | undefined;
let generation = Date.now() % 0x7fffffff;
let timers: NodeJS.Timeout[] = [];
let pushes = 0;
let fullPushes = 0;
let deferredPushes = 0;

function balancerAddress(id: number): { address: string; port: number } {
  const name = ids.nameOf.get(id);
  const b = name ? config.balancers[name] : undefined;
  if (!b) throw new Error(`unknown balancer id ${id}`);
  return { address: b.address, port: config.control.port };
}

async function startChannel(): Promise<ControlChannel> {
  const ch = await ControlChannel.open({
    id: myId as number,
    keyHex: config.control.key,
    port: config.control.port,
    // Issue 15: a sealed message naming a VIP the lab does not have is refused (unknown-vip).
    vips: config.vips.map((v) => v.address),
  });
  // Issue 15: what a balancer takes from whom. The controller's four steps (1-4, 3 as a
  // transfer request); table entry parts (3) from the other balancers and the keepers;
  // acks (6) to our own parts. Nothing from itself, no copy pushes (5) or load reports (7).
  const balancerIds = new Set(ids.balancer.values());
  const keeperIds = new Set(ids.keeper.values());
  ch.accepts = (type, sender) => {
    if (sender === myId) return false;
    if (sender === ids.controller) return type >= 1 && type <= 4;
    if (balancerIds.has(sender) || keeperIds.has(sender)) return type === 3 || type === 6;
    return false;
  };
  if (args.statusFile) ch.writeStatus(args.statusFile, "balancer", args.name);
  ch.setHandler(async (msg) => {
    switch (msg.type) {
      case 1: // transition notification (step 1)
        if (msg.to !== myId) return 0;
        if (msg.enter) await balancer.beginTransition(msg.vip);
        else await balancer.abortTransition(msg.vip);
        return 0;
      case 2: // route switch (step 2)
        if (msg.to === myId) await balancer.claim(msg.vip);
        else if (msg.from === myId) await balancer.release(msg.vip);
        return 0;
      case 3: {
        if (msg.sender === ids.controller) {
          // A transfer request from the control function (an empty type 3 from the
          // controller itself): send our entries of the VIP to `to`.
          const dest = balancerAddress(msg.to);
          return balancer.sendEntries(
            msg.vip,
            (entries) =>
              sendEntryParts(
                ch,
                { vip: msg.vip, from: myId as number, to: msg.to, dest, moveId: msg.moveId },
                entries,
              ),
            `${msg.moveId}/${msg.vip}/${msg.to}`,
            msg.parts === 2 ? "precopy" : "final",
          );
        }
        const all = assembler.add(
          msg.sender,
          msg.moveId,
          msg.vip,
          msg.part,
          msg.parts,
          wireEntries(msg.entries),
        );
        if (!all) return msg.entries.length;
        const r = await balancer.importEntries(all);
        log(`imported ${r.imported} entries of ${msg.vip} (${r.alreadyPresent} replaced)`);
        return all.length;
      }
      case 4: {
        // end of switch (step 4)
        if (msg.to === myId) {
          const r = await balancer.endSwitch(msg.vip, "new");
          holdReports.push({ ...r, moveId: msg.moveId, at: Date.now() });
          return r.released;
        }
        if (msg.from === myId && !faults.has("natlb-end-switch-ignored"))
          await balancer.endSwitch(msg.vip, "old");
        return 0;
      }
      default:
        return 0;
    }
  });
  return ch;
}

/**
 * Copy keeping (third embodiment): every entry goes, per server, to that server's keeper.
 * A full push every FULL_EVERY_MS (and whenever the event watcher lost events); in
 * between, deltas: the flows conntrack events showed appearing, changing or ending since
 * the last push (the balancer's event subscription), so a balancer does not dump its whole
 * table five times a second. The watcher starts before each full dump, so nothing falls in
 * between.
 */
const FULL_EVERY_MS = 2000;
let lastFull = 0;
let pushWatcher: CtWatcher | undefined;

function sendPush(
  ch: ControlChannel,
  kind: "full" | "delta",
  entries: ConnEntry[],
  removed: ConnEntry[],
): void {
  generation = (generation + 1) % 0x7fffffff;
  const per = entriesPerDatagram();
  for (const address of ids.serverAddress.values()) {
    const mine = [
      ...entries.filter((e) => e.serverAddr === address).map((e) => toWireEntry(e)),
      ...removed.filter((e) => e.serverAddr === address).map((e) => toWireEntry(e, true)),
    ];
    if (kind === "delta" && mine.length === 0) continue;
    const parts = Math.max(1, Math.ceil(mine.length / per));
    for (let part = 0; part < parts; part++) {
      ch.send(
        {
          type: 5,
          balancer: myId as number,
          kind,
          generation,
          part,
          parts,
          entries: mine.slice(part * per, (part + 1) * per),
        },
        { address, port: config.control.port },
      );
    }
  }
}

/** Pushes wait while a move runs through this balancer, for at most this long. */
const PUSH_DEFER_MAX_MS = 1000;
let lastPush = 0;

async function pushCopies(ch: ControlChannel): Promise<void> {
  if (faults.has("natlb-no-copies")) return;
  const now = Date.now();
  // A push takes the agent's loop for milliseconds (a full one: the dump and ~40 datagrams
  // per server; a delta after a pre-copy import: ~1000 new flows). During a move it would
  // hold up the move's messages and, on the new owner, the held packets: it waits, but
  // never long (a move left half-done by a crashed controller must not stop the copies).
  if (balancer.moving && now - lastPush < PUSH_DEFER_MAX_MS) {
    deferredPushes++;
    return;
  }
  lastPush = now;
  if (!pushWatcher?.running || now - lastFull >= FULL_EVERY_MS) {
    pushWatcher?.stop();
    pushWatcher = balancer.events.watch();
    const { entries } = balancer.table.list();
    lastFull = now;
    sendPush(ch, "full", entries, []);
    fullPushes++;
  } else {
    const { changed, removed } = pushWatcher.take();
    sendPush(ch, "delta", changed, removed);
  }
  pushes++;
}

async function reportLoad(ch: ControlChannel): Promise<void> {
  const [counters, owned] = await Promise.all([balancer.counters(), balancer.ownedVips()]);
  ch.sendLoadReport(
    {
      balancer: myId as number,
      invalidRejected: BigInt(counters.invalidRejected),
      vips: counters.vips.map((v) => ({
        vip: v.vip,
        owned: owned.includes(v.vip),
        transition: balancer.modes.get(v.vip) === "transition",
        packets: BigInt(v.packets),
        bytes: BigInt(v.bytes),
      })),
    },
    { address: config.controller.address, port: config.control.port },
  );
}

/**
 * How long the agent's event loop was blocked (a control message or a held packet that
 * arrives meanwhile waits) and how long each periodic job ran: a move's hold time is a
 * few hops through this loop.
 */
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const jobTimes = new Map<string, { runs: number; totalMs: number; maxMs: number }>();

function loop(name: string, every: number, fn: () => Promise<void>): NodeJS.Timeout {
  let busy = false;
  return setInterval(() => {
    if (busy) return;
    busy = true;
    const t0 = performance.now();
    fn()
      .catch((e) => log(`loop failed: ${(e as Error).message}`))
      .finally(() => {
        busy = false;
        const ms = performance.now() - t0;
        const j = jobTimes.get(name) ?? { runs: 0, totalMs: 0, maxMs: 0 };
        j.runs++;
        j.totalMs += ms;
        j.maxMs = Math.max(j.maxMs, ms);
        jobTimes.set(name, j);
      });
  }, every);
}

const round = (ms: number) => Math.round(ms * 100) / 100;

serveAgent({
  name: "natlb-balancer",
  methods: {
    async start(p: { claimInitial?: boolean; push?: boolean; report?: boolean } = {}) {
      await balancer.setup({ claimInitial: p.claimInitial ?? true });
      if (balancer.staleAddressesRemoved > 0)
        log(`removed ${balancer.staleAddressesRemoved} VIP address(es) of other balancers left on this host`);
      if (balancer.staleEntriesRemoved > 0)
        log(
          `removed ${balancer.staleEntriesRemoved} conntrack entries of the VIPs left by an earlier balancer on this host`,
        );
      channel ??= await startChannel();
      const ch = channel;
      if (p.push ?? true) timers.push(loop("pushCopies", config.keeper.pushIntervalMs, () => pushCopies(ch)));
      if (p.report ?? true) timers.push(loop("reportLoad", 200, () => reportLoad(ch)));
      return {
        id: myId,
        owned: await balancer.ownedVips(),
        staleEntriesRemoved: balancer.staleEntriesRemoved,
      };
    },
    state: () => balancer.state(),
    /** The tables in the seed's columns (Figs. 5/12 rows, Figs. 7/8 modes). */
    tables: async () => {
      const st = await balancer.state();
      return { modes: st.modes, entries: st.entries.map(entryRow) };
    },
    /** Per VIP of the configuration: its mode (absent: neither) and how often it entered transition mode. */
    modeTable: () =>
      config.vips.map((v) => ({
        vip: v.address,
        ...(balancer.modes.get(v.address) ? { mode: balancer.modes.get(v.address) } : {}),
        transitionsEntered: balancer.modes.transitionsEntered(v.address),
      })),
    counters: () => balancer.counters(),
    holdReports: () => holdReports,
    holdStats: () => hold.stats(),
    /**
     * The kernel access counters (conntrack requests, events and any lost) and the agent's
     * event-loop delay (ms: p50/p99/max since `reset`) and periodic jobs (ms per run).
     */
    kernel: (p: { reset?: boolean } = {}) => {
      const out = {
        conntrack: balancer.table.counters(),
        events: balancer.events.counters(),
        loopDelayMs: {
          p50: round(loopDelay.percentile(50) / 1e6),
          p99: round(loopDelay.percentile(99) / 1e6),
          max: round(loopDelay.max / 1e6),
        },
        jobs: Object.fromEntries(
          [...jobTimes].map(([k, j]) => [
            k,
            { runs: j.runs, meanMs: round(j.totalMs / Math.max(1, j.runs)), maxMs: round(j.maxMs) },
          ]),
        ),
      };
      if (p.reset) {
        loopDelay.reset();
        jobTimes.clear();
      }
      return out;
    },
    channel: () => ({
      counters: channel?.counters,
      rejects: channel?.rejects,
      rssBytes: process.memoryUsage().rss,
      lastRejects: channel?.lastRejects,
      pushes,
      fullPushes,
      deferredPushes,
    }),
    /** Direct calls (the naive comparison and tests drive the balancer without the controller). */
    claim: (p: { vip: string }) => balancer.claim(p.vip),
    release: (p: { vip: string }) => balancer.release(p.vip),
    exportEntries: async (p: { vip: string }) =>
      faults.has("natlb-table-no-tcp-info")
        ? (await balancer.exportEntries(p.vip)).map(({ tcpState: _, ...e }) => e)
        : balancer.exportEntries(p.vip),
  },
  onShutdown: async () => {
    for (const t of timers) clearInterval(t);
    timers = [];
    pushWatcher?.stop();
    channel?.close();
    await balancer.teardown();
  },
});
