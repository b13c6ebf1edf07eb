// Connection-table keeper agent on every server (copy keeping function 53, copy 54 of
// seed 002's third embodiment, Fig. 13): keeps the balancers' pushed entries and, on the
// control function's request, sends a failed balancer's entries of a VIP to the survivor.

import { readFileSync } from "node:fs";
import { agentArgs, log, serveAgent } from "../../remote/agent-runtime.ts";
import { type NatlbConfig, NatlbSection, nodeIds } from "./config.ts";
import { ControlChannel } from "./control-channel.ts";
import { CopyStore, entriesFromSocketTable } from "./keeper.ts";
import { sendEntryParts, wireEntries } from "./transfer.ts";

interface Args {
  config: unknown;
  /** This server's host name in the natlb section. */
  host: string;
  faults?: string[];
  /** Where the control channel's counters go every 500 ms (`tandem natlb show`). */
  statusFile?: string;
}

const args = agentArgs<Args>();
/** Seeded faults (lib/roles/seeded-faults.ts); absent: none. */
const faults: ReadonlySet<string> = new Set(args.faults ?? []);
const config: NatlbConfig = NatlbSection.parse(args.config);
const ids = nodeIds(config);
const myId = ids.keeper.get(args.host);
const myAddress = ids.serverAddress.get(args.host);
if (myId === undefined || myAddress === undefined)
  throw new Error(`host "${args.host}" is no server of any VIP`);
const store = new CopyStore(config.embodiment);
let channel: ControlChannel | undefined;
let pushesApplied = 0;
let pushesStale = 0;
let sentToSurvivor = 0;

serveAgent({
  name: "natlb-keeper",
  methods: {
    async start() {
      if (channel) return { id: myId };
      const ch = await ControlChannel.open({
        id: myId as number,
        keyHex: config.control.key,
        port: config.control.port,
        // Issue 15: a sealed message naming a VIP the lab does not have is refused (unknown-vip).
        vips: config.vips.map((v) => v.address),
      });
      // Issue 15: copy pushes (5) from the balancers, restore requests (3) from the
      // controller, acks (6) from the balancers to the parts we send.
      const balancerIds = new Set(ids.balancer.values());
      ch.accepts = (type, sender) =>
        sender === ids.controller ? type === 3 : balancerIds.has(sender) && (type === 5 || type === 6);
      if (args.statusFile) ch.writeStatus(args.statusFile, "keeper", args.host);
      ch.setHandler(async (msg) => {
        if (msg.type === 5) {
          const name = ids.nameOf.get(msg.balancer) ?? `#${msg.balancer}`;
          const live = wireEntries(msg.entries.filter((e) => !e.removed));
          const gone = wireEntries(msg.entries.filter((e) => e.removed));
          if (store.apply(name, msg.generation, msg.kind, live, gone, Date.now(), msg.part, msg.parts))
            pushesApplied++;
          else pushesStale++;
          return 0;
        }
        if (msg.type === 3 && msg.sender === ids.controller && !faults.has("natlb-copies-not-restored")) {
          // Third step of failover: "the server transmits the entry read out from the copy 54".
          const failed = ids.nameOf.get(msg.from) ?? "";
          const vip = config.vips.find((v) => v.address === msg.vip);
          if (!vip) throw new Error(`unknown VIP ${msg.vip}`);
          const ctx = { vip: vip.address, vipPort: vip.port, serverAddr: myAddress as string };
          let entries = store.restore(failed, ctx);
          if (config.keeper.source === "socket-table") {
            // Modification 1: the server's own TCP/IP connection table (Fig. 14), as this
            // namespace's kernel lists it.
            const serverPort = vip.servers.find((x) => x.address === myAddress)?.port ?? 80;
            const r = entriesFromSocketTable(readFileSync("/proc/net/tcp", "utf8"), { ...ctx, serverPort });
            entries = r.entries;
            if (r.malformed > 0) log(`/proc/net/tcp: ${r.malformed} lines not understood`);
          }
          const survivor = ids.nameOf.get(msg.to);
          const b = survivor ? config.balancers[survivor] : undefined;
          if (!b) throw new Error(`unknown balancer id ${msg.to}`);
          const n = await sendEntryParts(
            ch,
            {
              vip: vip.address,
              from: msg.from,
              to: msg.to,
              dest: { address: b.address, port: config.control.port },
              moveId: msg.moveId,
            },
            entries,
          );
          sentToSurvivor += n;
          log(`sent ${n} copied entries of ${vip.address} (of ${failed}) to ${survivor}`);
          return n;
        }
        return 0;
      });
      channel = ch;
      return { id: myId };
    },
    stats: () => ({
      copies: store.info(),
      rows: store.size(),
      pushesApplied,
      pushesStale,
      sentToSurvivor,
      channel: channel?.counters,
      rejects: channel?.rejects,
      rssBytes: process.memoryUsage().rss,
    }),
    copyRows: (p: { balancer: string; vip: string }) => store.copyRows(p.balancer, p.vip),
  },
  onShutdown: () => channel?.close(),
});
