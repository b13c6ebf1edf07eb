import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { agentArgs, log, serveAgent } from "../../remote/agent-runtime.ts";
import { localHost } from "../../remote/command.ts";
import { parseOwnerMaps } from "../vrls/owner-table.ts";
import { type ManagedConfig, type SharingRow, startMgmtPage } from "./page.ts";

/**
 * The management web page of a VRLS reference member (seed Fig. 9A settings, the sharing
 * table of Fig. 9C as the data plane really holds it): status and sharing table are read
 * from the kernel (nftables table `ip vrls<VRID>`: its verdict maps, each element forwarded,
 * queued or dropped, with its counter: lib/roles/vrls/owner-table.ts); the configuration form stores the member's settings in
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
  const listing = await host.exec(["nft", "-j", "list", "maps", "ip"]);
  // no data plane (yet): an empty table
  if (listing.code !== 0) return [];
  return parseOwnerMaps(listing.stdout, `vrls${args.vrid}`).map((e) => ({
    condition: e.element,
    disposition: DISPOSITION[e.kernelClass] ?? e.kernelClass,
    packets: e.packets,
    bytes: e.bytes,
  }));
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
