import { z } from "zod";
import { Ipv4 } from "../../topology/schema.ts";
import type { Embodiment } from "./conn-table.ts";

/**
 * The `natlb:` section of a lab topology file (labs/natlb-fig3.yaml, labs/natlb-fig13.yaml).
 * Parsed with SourceDocument.parse(NatlbSection, data, ["natlb"]) so errors name file,
 * path, line and value like the rest of the topology.
 */
const HostName = z.string().regex(/^[a-z][a-z0-9_-]{0,11}$/, "expected a host name of the topology");
const IfName = z.string().regex(/^[a-z][a-z0-9]{0,7}$/, "expected an interface name like eth0");

export const ServerRef = z
  .object({
    host: HostName,
    address: Ipv4,
    port: z.number().int().min(1).max(65535),
  })
  .strict();

export const VipSpec = z
  .object({
    /** The seed's name for it, e.g. "31a-IP-1" (only for display). */
    label: z.string().optional(),
    /** 903: the external address clients connect to; the unit of a move. */
    address: Ipv4,
    port: z.number().int().min(1).max(65535).default(80),
    protocol: z.enum(["tcp"]).default("tcp"),
    /**
     * The internal address that belongs to this VIP and moves with it (the seed's 32a-IP
     * bound to 31a-IP-n): the servers' gateway in embodiment 1, the source the servers see
     * in embodiment 2 (913).
     */
    internal: Ipv4,
    servers: z.array(ServerRef).min(1),
    /** The balancer that owns the VIP when the lab comes up. */
    owner: HostName,
  })
  .strict();

export const BalancerSpec = z
  .object({
    /** Interface towards the clients (31a/31b). */
    external: IfName,
    /** Interface towards the servers (32a/32b). */
    internal: IfName,
    /** The balancer's own address on the internal network: where control messages reach it. */
    address: Ipv4,
  })
  .strict();

export const TransitionBounds = z
  .object({
    /** Most packets held per VIP in transition mode; beyond it arrivals are dropped and counted. */
    maxPackets: z.number().int().min(1).default(20000),
    maxBytes: z
      .number()
      .int()
      .min(1500)
      .default(32 * 1024 * 1024),
    /** A packet held longer than this is dropped and counted (a move must not park traffic forever). */
    maxHoldMs: z.number().int().min(10).default(3000),
  })
  .strict();

export const NatlbSection = z
  .object({
    /** 1: destination NAT only (Figs. 4A/4B); 2: full NAT (Figs. 11A/11B, 12). */
    embodiment: z.enum(["dnat", "fullnat"]),
    /** The host with the control function 52 (the seed's control server 5c) and its address. */
    controller: z.object({ host: HostName, address: Ipv4 }).strict(),
    balancers: z.record(HostName, BalancerSpec),
    vips: z.array(VipSpec).min(1),
    /** NFQUEUE number used for transition-mode holding on every balancer. */
    queueNum: z.number().int().min(0).max(65535).default(200),
    transition: TransitionBounds.default({ maxPackets: 20000, maxBytes: 32 * 1024 * 1024, maxHoldMs: 3000 }),
    keeper: z
      .object({
        pushIntervalMs: z.number().int().min(20).default(200),
        /**
         * Where a failover takes a failed balancer's entries from: the pushed copies (third
         * embodiment), or the server's own TCP connection table (Modification 1, DNAT only).
         */
        source: z.enum(["copies", "socket-table"]).default("copies"),
      })
      .strict()
      .default({ pushIntervalMs: 200, source: "copies" }),
    control: z
      .object({
        /** UDP port of the NAT-LB control messages. */
        port: z.number().int().min(1).max(65535).default(7400),
        /** HMAC-SHA256 key (hex) authenticating control messages. */
        key: z.string().regex(/^([0-9a-f]{2}){16,64}$/, "expected 32-128 hex digits"),
      })
      .strict(),
    /** Seconds without an answer after which the controller declares a balancer failed. */
    failureTimeoutMs: z.number().int().min(50).default(600),
  })
  .strict()
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.vips.forEach((v, i) => {
      if (!s.balancers[v.owner]) {
        ctx.addIssue({
          code: "custom",
          path: ["vips", i, "owner"],
          message: `no balancer named "${v.owner}" (known: ${Object.keys(s.balancers).join(", ")})`,
        });
      }
      if (seen.has(v.address))
        ctx.addIssue({ code: "custom", path: ["vips", i, "address"], message: "VIP listed twice" });
      seen.add(v.address);
      if (seen.has(v.internal))
        ctx.addIssue({
          code: "custom",
          path: ["vips", i, "internal"],
          message: "address already used by another VIP",
        });
      seen.add(v.internal);
    });
    if (s.keeper.source === "socket-table" && s.embodiment !== "dnat") {
      ctx.addIssue({
        code: "custom",
        path: ["keeper", "source"],
        message:
          "Modification 1 (socket-table) applies to embodiment 1 (dnat) only: in full NAT the server's peers are not the clients",
      });
    }
    if (s.embodiment === "dnat") {
      // Embodiment 1: a server routes back through the balancer that owns its VIP, so it
      // can belong to one VIP only ("each server belongs to the specific external IP address").
      const owner = new Map<string, number>();
      s.vips.forEach((v, i) => {
        v.servers.forEach((srv, k) => {
          const prev = owner.get(srv.address);
          if (prev !== undefined && prev !== i) {
            ctx.addIssue({
              code: "custom",
              path: ["vips", i, "servers", k, "address"],
              message: `in embodiment 1 (dnat) a server belongs to one VIP; already behind vips[${prev}]`,
            });
          }
          owner.set(srv.address, i);
        });
      });
    }
  });

export type NatlbConfig = z.infer<typeof NatlbSection>;
export type VipConfig = z.infer<typeof VipSpec>;
export type BalancerConfig = z.infer<typeof BalancerSpec>;

export function embodimentOf(c: NatlbConfig): Embodiment {
  return c.embodiment;
}

export function vipByAddress(c: NatlbConfig, address: string): VipConfig {
  const v = c.vips.find((x) => x.address === address);
  if (!v) throw new Error(`unknown VIP ${address} (known: ${c.vips.map((x) => x.address).join(", ")})`);
  return v;
}

/**
 * Sender ids of the control messages: the controller 1, balancers 10 + their index in
 * the section, keepers (servers) 100 + their index among the distinct servers.
 */
export interface NodeIds {
  controller: number;
  balancer: Map<string, number>;
  keeper: Map<string, number>;
  nameOf: Map<number, string>;
  /** Server host -> its address (a server's keeper listens there). */
  serverAddress: Map<string, string>;
}

export function nodeIds(c: NatlbConfig): NodeIds {
  const balancer = new Map(Object.keys(c.balancers).map((b, i) => [b, 10 + i]));
  const serverAddress = new Map<string, string>();
  for (const v of c.vips)
    for (const s of v.servers) if (!serverAddress.has(s.host)) serverAddress.set(s.host, s.address);
  const keeper = new Map([...serverAddress.keys()].map((h, i) => [h, 100 + i]));
  const nameOf = new Map<number, string>([[1, "controller"]]);
  for (const [n, id] of balancer) nameOf.set(id, n);
  for (const [n, id] of keeper) nameOf.set(id, n);
  return { controller: 1, balancer, keeper, nameOf, serverAddress };
}
