// Web server agent for the server hosts 5a-5c (seed 002, FIG. 3): serves keep-alive
// requests and long downloads so TCP connections live across VIP moves.
import { serveAgent } from "../remote/agent-runtime.ts";
import { startWebServer, type WebServerStats } from "./http-server.ts";

let running: { stats: () => WebServerStats; close: () => Promise<void> } | undefined;

serveAgent({
  name: "natlb-web",
  methods: {
    async start(p: { port: number; name: string; host?: string }) {
      if (running) return { already: true };
      running = await startWebServer(p);
      return { listening: p.port };
    },
    stats: () => running?.stats() ?? null,
    async stop() {
      await running?.close();
      running = undefined;
      return { stopped: true };
    },
  },
  onShutdown: async () => {
    await running?.close();
  },
});
