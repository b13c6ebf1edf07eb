// Client agent (clients 1a-1c of seed 002, FIG. 3): many long-lived TCP connections to a
// VIP, counting resets, stalls and corrupted bytes (see http-load.ts).
import { serveAgent } from "../remote/agent-runtime.ts";
import { ClientLoad, type ClientLoadOptions, connectionBurst } from "./http-load.ts";

const loads = new Map<string, ClientLoad>();

serveAgent({
  name: "natlb-clients",
  methods: {
    /** Opens the connections; resolves once all are established or failed. */
    async start(p: { id: string } & ClientLoadOptions) {
      if (loads.has(p.id)) throw new Error(`load ${p.id} already running`);
      const load = new ClientLoad(p);
      loads.set(p.id, load);
      await load.start();
      return load.report();
    },
    report: (p: { id: string }) => {
      const load = loads.get(p.id);
      if (!load) throw new Error(`no load ${p.id}`);
      return load.report();
    },
    /** Short connections as fast as possible (connections per second). */
    burst: (p: Parameters<typeof connectionBurst>[0]) => connectionBurst(p),
    stop: (p: { id: string }) => {
      const load = loads.get(p.id);
      if (!load) throw new Error(`no load ${p.id}`);
      loads.delete(p.id);
      return load.stop();
    },
  },
  onShutdown: () => {
    for (const l of loads.values()) l.stop();
  },
});
