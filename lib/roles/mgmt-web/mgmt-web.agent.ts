import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { listSet } from "../../dataplane/nft.ts";
import { agentArgs, log, serveAgent } from "../../remote/agent-runtime.ts";
import { localHost } from "../../remote/command.ts";
import { type ManagedConfig, type SharingRow, startMgmtPage } from "./page.ts";

/**
 * The management web page of a VRLS reference member (seed Fig. 9A settings, the sharing
 * table of Fig. 9C as the data plane really holds it): status and sharing table are read
 * from the kernel (nftables table `ip vrls<VRID>`: sets own / inqueue / others with their
 * per-element counters); the configuration form stores the member's settings in
 * `configPath` and shows them back. No router reads that file (yet): submitting the form
 * changes what the page shows, not how the member forwards (see docs/certification.md,
 * web-ui).
 */
interface Args {
  port: number;
  token: string;
  vrid: number;
  configPath: string;
  initial: ManagedConfig;
}

const args = agentArgs<Args>();
const host = localHost({ timeoutMs: 30_000 });
let config: ManagedConfig = (() => {
  try {
    return JSON.parse(readFileSync(args.configPath, "utf8")) as ManagedConfig;
  } catch {
    return args.initial;
  }
})();
let version = 0;

const DISPOSITION: Record<string, string> = { own: "forward", inqueue: "hold", others: "discard" };

async function sharingTable(): Promise<SharingRow[]> {
  const rows: SharingRow[] = [];
  for (const set of ["own", "inqueue", "others"]) {
    try {
      const l = await listSet(host, { family: "ip", table: `vrls${args.vrid}`, set });
      for (const e of l.elements)
        rows.push({
          condition: e.value,
          disposition: DISPOSITION[set] ?? set,
          packets: e.counter?.packets ?? 0,
          bytes: e.counter?.bytes ?? 0,
        });
    } catch {
      // no data plane (yet): an empty table
    }
  }
  return rows;
}

async function status(): Promise<Record<string, string | number | boolean>> {
  const table = await host.exec(["nft", "list", "table", "ip", `vrls${args.vrid}`]);
  const rows = await sharingTable();
  return {
    host: hostname(),
    vrid: args.vrid,
    "data plane": table.code === 0 ? "up" : "down",
    "conditions forwarded": rows.filter((r) => r.disposition === "forward").length,
    "conditions held": rows.filter((r) => r.disposition === "hold").length,
    "configuration version": version,
    "operation mode": config.mode,
    priority: config.priority,
  };
}

const server = await startMgmtPage(
  {
    title: `VRLS member - VRID ${args.vrid}`,
    status,
    sharingTable,
    getConfig: () => config,
    async setConfig(next) {
      config = next;
      version++;
      writeFileSync(args.configPath, `${JSON.stringify(config, null, 2)}\n`);
      log(`configuration ${version} saved: ${JSON.stringify(config)}`);
      return undefined;
    },
  },
  { port: args.port, token: args.token },
);
log(`management page on 127.0.0.1:${args.port}`);

serveAgent({
  name: "mgmt-web",
  methods: {
    config: () => ({ config, version }),
    port: () => args.port,
  },
  onShutdown: () => new Promise<void>((r) => server.close(() => r())),
});
