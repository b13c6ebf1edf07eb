// Test agent for the remote layer: exercises calls, errors, notifications, crashes and hangs.
import { agentArgs, log, notify, serveAgent } from "./agent-runtime.ts";
import { pause } from "./wait.ts";

const args = agentArgs<{ greeting?: string } | undefined>();

serveAgent({
  name: "echo",
  methods: {
    echo: (params: unknown) => params,
    args: () => args ?? null,
    add: (params: { a: number; b: number }) => {
      if (typeof params?.a !== "number" || typeof params?.b !== "number") {
        throw new Error(`add needs numbers a and b, got ${JSON.stringify(params)}`);
      }
      return params.a + params.b;
    },
    crash: (params: { code?: number } | undefined) => {
      log("echo agent: crashing on request");
      // Exit after this tick so the call itself never gets an answer.
      setImmediate(() => process.exit(params?.code ?? 3));
      return new Promise(() => {});
    },
    sleep: async (params: { ms: number }) => {
      await pause(params.ms); // time is the subject: a slow method for the tests
      return { slept: params.ms };
    },
    /** Blocks the event loop (so `shutdown` goes unanswered): for testing force-kill. */
    block: (params: { ms: number }) => {
      // Time is the subject: the event loop is kept busy for exactly this long.
      const until = Date.now() + params.ms;
      while (Date.now() < until) {
        // busy
      }
      return { blocked: params.ms };
    },
    /** A result JSON.stringify rejects: the runtime must answer with an error, not crash. */
    bigint: () => ({ value: 10n }),
    notifyMe: (params: { count: number; method?: string }) => {
      for (let i = 0; i < params.count; i++) notify(params.method ?? "tick", { seq: i });
      return { sent: params.count };
    },
    logLines: (params: { lines: string[] }) => {
      for (const line of params.lines) console.log(line); // must land in the log, not the protocol
      return { logged: params.lines.length };
    },
  },
  onShutdown: () => log("echo agent: shutdown"),
});
