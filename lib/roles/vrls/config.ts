/**
 * The `vrls:` section of a lab topology file: the virtual routers (seed Fig. 9A,
 * "virtual router information": VRID, virtual address, members and priorities,
 * operation mode, timers) and what each member needs to run. Parsed with
 * SourceDocument.parse so a bad value is reported with file, path and line.
 */
import { z } from "zod";
import { cidrContains, parseCidr } from "../../topology/address.ts";
import { ConfigError, type ConfigIssue } from "../../topology/errors.ts";
import type { LoadedTopology } from "../../topology/load.ts";
import { Ipv4, Ipv4Cidr } from "../../topology/schema.ts";
import { ReviewSpec } from "./review-config.ts";
import type { RouterCoreOptions } from "./router-core.ts";

const HostName = z.string().regex(/^[a-z][a-z0-9_-]{0,11}$/, "expected a host name");

const Member = z
  .object({
    host: HostName,
    /** 1..254; 255 only for the owner of the virtual address (RFC 5798 5.2.4). */
    priority: z.number().int().min(1).max(255),
    /** Who runs this member: the reference agent, or keepalived (standard VRRP interop, no extension). */
    implementation: z.enum(["reference", "keepalived"]).default("reference"),
  })
  .strict();

const Conditions = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("address") }).strict(),
  z.object({ kind: z.literal("prefix"), prefixes: z.array(Ipv4Cidr).min(1) }).strict(),
  z
    .object({
      kind: z.literal("bucket"),
      over: z.enum(["src", "src+dst"]).default("src"),
      count: z.number().int().min(1).max(4096),
      seed: z.number().int().min(0).max(0xffffffff).default(0),
    })
    .strict(),
]);

export const VirtualRouterSpec = z
  .object({
    vrid: z.number().int().min(1).max(255),
    /** The members' LAN interface (same name on every member). */
    interface: z.string().regex(/^[a-z][a-z0-9]{0,7}$/, "expected an interface name like eth0"),
    virtualAddress: Ipv4Cidr,
    /** Advertisement interval; VRRPv3 carries centiseconds, so a multiple of 10 ms, 10..40950. */
    advertIntervalMs: z
      .number()
      .int()
      .min(10)
      .max(40950)
      .refine((v) => v % 10 === 0, "must be a multiple of 10 ms (VRRPv3 counts centiseconds)")
      .default(1000),
    preempt: z.boolean().default(true),
    /** Seed Fig. 9A "operation mode" for preventing duplication, plus the exactly-once mode. */
    mode: z.enum(["timer", "sequence-number", "exactly-once"]).default("exactly-once"),
    /** Timer mode: the new owner's delay before forwarding. */
    timerDelayMs: z.number().int().min(0).max(60_000).default(20),
    /** HMAC-SHA256 key of the extension messages (text). */
    key: z.string().min(8, "use a key of at least 8 characters"),
    members: z.array(Member).min(1),
    /** The end systems' subnets; `via` is the router in front of a remote subnet (Fig. 7, router C). */
    subnets: z.array(z.object({ cidr: Ipv4Cidr, via: Ipv4.optional() }).strict()).min(1),
    conditions: Conditions.default({ kind: "address" }),
    retryMs: z.number().int().min(1).max(10_000).default(20),
    maxRetries: z.number().int().min(1).max(1000).default(25),
    responseTimeoutMs: z.number().int().min(10).optional(),
    discoveryMs: z.number().int().min(0).max(60_000).default(300),
    infoRequestIntervalMs: z.number().int().min(0).default(10_000),
    /** Forget end systems not seen for this long (0: never). */
    endSystemMaxAgeMs: z.number().int().min(0).default(0),
    /**
     * Substitution server (seed Fig. 14): the host that registers as the special member and
     * does the master's allocation and review work; the master takes over when it is silent
     * for `timeoutMs` (default: the response timeout).
     */
    coordinator: z
      .object({
        host: HostName,
        timeoutMs: z.number().int().min(10).optional(),
        keepaliveMs: z.number().int().min(5).default(50),
        /**
         * The master router confirms nothing while the server allocates (Fig. 15 P24), so a
         * hand-off with it runs on this time: how long it may take to apply an allocation.
         */
        handoffGraceMs: z.number().int().min(1).max(10_000).default(100),
      })
      .strict()
      .optional(),
    /** A member that failed gets conditions again only after answering this long. */
    rejoinHoldDownMs: z.number().int().min(0).max(3_600_000).default(0),
    /** Allocation review thresholds and flow monitor (issue 6, review-config.ts); absent: no reviews. */
    review: ReviewSpec.optional(),
  })
  .strict();

export const VrlsSection = z.object({ routers: z.record(HostName, VirtualRouterSpec) }).strict();

export type VirtualRouterSpecT = z.infer<typeof VirtualRouterSpec>;

export interface ResolvedMember {
  host: string;
  address: string;
  priority: number;
  implementation: "reference" | "keepalived";
}

export interface VirtualRouterConfig {
  name: string;
  spec: VirtualRouterSpecT;
  members: ResolvedMember[];
  virtualAddress: string;
  prefixLength: number;
  /** The substitution server's address on the LAN interface (seed Fig. 14), when configured. */
  coordinatorAddress?: string;
  /**
   * false only for the negative control `fault=zombie-dataplane`: the members' kernel rules
   * outlive a killed agent (default true: the data plane dies with its agent).
   */
  fateSharing?: boolean;
  /** Seeded faults of the router agents (lib/roles/seeded-faults.ts); absent: none. */
  faults?: string[];
  /**
   * RFC 9568 Accept_Mode of a plain VRRP router (the reference adapter's VRRP mode).
   * Absent or true: the master accepts packets addressed to the virtual address (what VRLS
   * members always do); false: it drops them unless it is the address owner (priority 255).
   */
  acceptMode?: boolean;
}

/** Validates the `vrls:` section against the topology (hosts, interfaces, addresses). */
export function loadVrlsConfig(loaded: LoadedTopology): VirtualRouterConfig[] {
  const { source, topology } = loaded;
  if (topology.vrls === undefined) {
    throw new ConfigError(source.file, [source.issue(["vrls"], "the lab has no `vrls:` section")]);
  }
  const section = source.parse(VrlsSection, topology.vrls, ["vrls"]);
  const issues: ConfigIssue[] = [];
  const out: VirtualRouterConfig[] = [];
  const vrids = new Map<number, string>();
  for (const [name, spec] of Object.entries(section.routers)) {
    const at = ["vrls", "routers", name];
    const other = vrids.get(spec.vrid);
    if (other) issues.push(source.issue([...at, "vrid"], `VRID already used by virtual router "${other}"`));
    vrids.set(spec.vrid, name);
    const [vip, len] = spec.virtualAddress.split("/") as [string, string];
    const members: ResolvedMember[] = [];
    const seen = new Set<string>();
    spec.members.forEach((m, i) => {
      const host = topology.hosts[m.host];
      if (seen.has(m.host)) issues.push(source.issue([...at, "members", i, "host"], "host listed twice"));
      seen.add(m.host);
      if (!host) {
        issues.push(source.issue([...at, "members", i, "host"], `no host named "${m.host}"`));
        return;
      }
      const iface = host.interfaces[spec.interface];
      const cidr = iface?.addresses.find((a) => !a.includes(":")); // the primary IPv4 address
      if (!cidr) {
        issues.push(
          source.issue(
            [...at, "members", i, "host"],
            `host "${m.host}" has no address on interface "${spec.interface}"`,
          ),
        );
        return;
      }
      const address = cidr.split("/")[0] as string;
      if (m.priority === 255 && address !== vip) {
        issues.push(
          source.issue(
            [...at, "members", i, "priority"],
            "priority 255 is for the owner of the virtual address only",
          ),
        );
      }
      if (!cidrContains(parseCidr(cidr), vip)) {
        issues.push(
          source.issue(
            [...at, "virtualAddress"],
            `virtual address is not on ${m.host}.${spec.interface}'s subnet ${cidr}`,
          ),
        );
      }
      members.push({ host: m.host, address, priority: m.priority, implementation: m.implementation });
    });
    let coordinatorAddress: string | undefined;
    if (spec.coordinator) {
      const host = topology.hosts[spec.coordinator.host];
      coordinatorAddress = host?.interfaces[spec.interface]?.addresses
        .find((a) => !a.includes(":"))
        ?.split("/")[0];
      if (!coordinatorAddress)
        issues.push(
          source.issue(
            [...at, "coordinator", "host"],
            `no host "${spec.coordinator.host}" with an address on interface "${spec.interface}"`,
          ),
        );
    }
    out.push({
      name,
      spec,
      members,
      virtualAddress: vip,
      prefixLength: Number(len),
      ...(coordinatorAddress ? { coordinatorAddress } : {}),
    });
  }
  if (issues.length > 0) throw new ConfigError(source.file, issues);
  return out;
}

/** The core options for one member of a virtual router. */
export function coreOptionsFor(vr: VirtualRouterConfig, host: string): RouterCoreOptions {
  const me = vr.members.find((m) => m.host === host);
  if (!me) throw new Error(`host "${host}" is not a member of virtual router "${vr.name}"`);
  const s = vr.spec;
  const advertIntervalCs = s.advertIntervalMs / 10;
  return {
    vrid: s.vrid,
    self: me.address,
    priority: me.priority,
    advertIntervalCs,
    preempt: s.preempt,
    virtualAddresses: [vr.virtualAddress],
    // keepalived members take part in VRRP only; they never get conditions.
    members: vr.members
      .filter((m) => m.implementation === "reference")
      .map((m) => ({ id: m.address, priority: m.priority })),
    mode: s.mode,
    timerDelayMs: s.timerDelayMs,
    retryMs: s.retryMs,
    maxRetries: s.maxRetries,
    responseTimeoutMs: s.responseTimeoutMs ?? 4 * s.advertIntervalMs + 50,
    discoveryMs: s.discoveryMs,
    rejoinHoldDownMs: s.rejoinHoldDownMs,
    ...(vr.coordinatorAddress
      ? {
          coordinator: vr.coordinatorAddress,
          coordinatorTimeoutMs:
            s.coordinator?.timeoutMs ?? s.responseTimeoutMs ?? 4 * s.advertIntervalMs + 50,
          coordinatorGraceMs: s.coordinator?.handoffGraceMs ?? 100,
        }
      : {}),
    infoRequestIntervalMs: s.infoRequestIntervalMs,
    subnets: s.subnets.map((x) => ({ cidr: x.cidr, via: x.via ?? null })),
    conditions: s.conditions,
    ...(vr.faults?.length ? { faults: vr.faults } : {}),
  };
}
