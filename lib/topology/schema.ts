import { isIPv6 } from "node:net";
import { z } from "zod";
import { isLabIpv6 } from "./address.ts";

/**
 * The lab topology file (YAML). One file describes hosts, the L2 segments that join
 * them, point-to-point links, and (for a physical lab) the inventory of real hosts.
 * System sections (`vrls`, `natlb`) are validated by their roles with the same
 * error reporting (file, path, line, value).
 */

const ipv4 = String.raw`(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}`;
export const Ipv4 = z.string().regex(new RegExp(`^${ipv4}$`), "expected an IPv4 address like 198.18.0.1");
export const Ipv4Cidr = z
  .string()
  .regex(
    new RegExp(`^${ipv4}/(3[0-2]|[12]?\\d)$`),
    "expected an IPv4 address with prefix length like 198.18.0.1/24",
  );
/**
 * IPv6 (issue 16): any RFC 4291 text form, but only inside the lab's IPv6 space
 * (2001:db8::/32 documentation and fe80::/10 link-local), so lab traffic can never be routable.
 */
export const Ipv6 = z
  .string()
  .refine((s) => isIPv6(s), "expected an IPv6 address like 2001:db8::1")
  .refine((s) => !isIPv6(s) || isLabIpv6(s), "IPv6 lab addresses must be in 2001:db8::/32 or fe80::/10");
function ipv6CidrProblem(s: string): string | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m || !isIPv6(m[1] as string) || Number(m[2]) > 128)
    return "expected an IPv6 address with prefix length like 2001:db8::1/64";
  if (!isLabIpv6(m[1] as string)) return "IPv6 lab addresses must be in 2001:db8::/32 or fe80::/10";
  return undefined;
}
export const Ipv6Cidr = z.string().superRefine((s, ctx) => {
  const problem = ipv6CidrProblem(s);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
/** An interface address of either family: IPv6 when it contains ':', IPv4 otherwise. */
export const IpCidr = z.string().superRefine((s, ctx) => {
  const problem = s.includes(":")
    ? ipv6CidrProblem(s)
    : Ipv4Cidr.safeParse(s).success
      ? undefined
      : "expected an IPv4 or IPv6 address with prefix length like 198.18.0.1/24 or 2001:db8::1/64";
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
export const IpAddress = z.string().superRefine((s, ctx) => {
  const problem = s.includes(":")
    ? Ipv6.safeParse(s).error?.issues[0]?.message
    : Ipv4.safeParse(s).success
      ? undefined
      : "expected an IPv4 or IPv6 address like 198.18.0.1 or 2001:db8::1";
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
export const Mac = z
  .string()
  .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, "expected a MAC address like 02:00:00:00:00:01 (lowercase)");
const Name = z
  .string()
  .regex(
    /^[a-z][a-z0-9_-]{0,11}$/,
    "expected a name of 1-12 lowercase letters, digits, '-' or '_' starting with a letter",
  );
const IfName = z
  .string()
  .regex(/^[a-z][a-z0-9]{0,7}$/, "expected an interface name of 1-8 lowercase letters and digits, like eth0");

export const InterfaceSpec = z
  .object({
    /** The segment (L2 broadcast domain) this interface plugs into. Omit for link ends. */
    segment: Name.optional(),
    /** IPv4 and IPv6 (2001:db8::/32, fe80::/10) addresses with prefix length. */
    addresses: z.array(IpCidr).default([]),
    mac: Mac.optional(),
    mtu: z.number().int().min(576).max(9000).optional(),
  })
  .strict();

export const RouteSpec = z
  .object({
    /** "default" (IPv4), "default6" (IPv6) or a prefix of either family. */
    to: z.union([z.literal("default"), z.literal("default6"), IpCidr]),
    via: IpAddress.optional(),
    dev: IfName.optional(),
  })
  .strict()
  .refine((r) => r.via !== undefined || r.dev !== undefined, { message: "a route needs `via` or `dev`" });

export const ServiceSpec = z
  .object({
    /** Agent bundle name (dist/agents/<agent>.mjs) started over SSH after bring-up. */
    agent: z.string().min(1),
    args: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export const HostRole = z.enum([
  "end-system",
  "router",
  "vrls-router",
  "substitution-server",
  "balancer",
  "server",
  "control-server",
  "client",
  "traffic",
  "generic",
]);

export const HostSpec = z
  .object({
    role: HostRole.default("generic"),
    description: z.string().optional(),
    interfaces: z.record(IfName, InterfaceSpec).default({}),
    routes: z.array(RouteSpec).default([]),
    sysctls: z
      .record(z.string().regex(/^[a-z0-9_.-]+(\.[a-z0-9_*-]+)+$/), z.union([z.string(), z.number()]))
      .default({}),
    /** Forward between interfaces (net.ipv4.ip_forward=1, and IPv6 forwarding when IPv6 is on). */
    forwarding: z.boolean().default(false),
    /**
     * Enable IPv6 in this host's namespace. Default: on when the host has an IPv6 address
     * or route, off otherwise (router solicitations, DAD and MLD stay out of IPv4 captures).
     */
    ipv6: z.boolean().optional(),
    services: z.record(Name, ServiceSpec).default({}),
  })
  .strict();

export const SegmentSpec = z
  .object({
    description: z.string().optional(),
    /**
     * A hub floods every frame to every port (a bridge that never learns:
     * ageing_time 0), as the seeds' hubs do. A plain segment is a learning switch.
     */
    hub: z.boolean().default(false),
    subnet: IpCidr.optional(),
    /** The segment's IPv6 prefix when it has one beside an IPv4 `subnet`. */
    subnet6: Ipv6Cidr.optional(),
  })
  .strict();

const Endpoint = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,11}\.[a-z][a-z0-9]{0,7}$/, "expected HOST.IFACE like r1.eth1");
export const LinkSpec = z.object({ a: Endpoint, b: Endpoint }).strict();

/** A physical host named by SSH coordinates instead of being created (physical backend). */
export const InventoryEntry = z
  .object({
    address: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().min(1).default("root"),
    /** Path to the private key file (relative to the topology file or absolute). */
    key: z.string().min(1),
    /** Host key fingerprint (SHA256:..., as `ssh-keygen -lf` prints it) to pin; unset means trust on first use. */
    hostKey: z
      .string()
      .regex(
        /^SHA256:[A-Za-z0-9+/]{43}$/,
        "expected a host key fingerprint like SHA256:<43 base64 characters>",
      )
      .optional(),
  })
  .strict();

export const TopologySpec = z
  .object({
    lab: Name,
    description: z.string().optional(),
    /** The lab-wide address plan: every interface address must fall inside one of these. */
    addressPlan: z.record(z.string(), IpCidr).default({}),
    segments: z.record(Name, SegmentSpec).default({}),
    hosts: z.record(Name, HostSpec),
    links: z.array(LinkSpec).default([]),
    inventory: z.record(Name, InventoryEntry).optional(),
    /** System sections, validated by the roles that use them. */
    vrls: z.unknown().optional(),
    natlb: z.unknown().optional(),
  })
  .strict();

export type Topology = z.infer<typeof TopologySpec>;
export type HostSpecT = z.infer<typeof HostSpec>;
export type InterfaceSpecT = z.infer<typeof InterfaceSpec>;
export type SegmentSpecT = z.infer<typeof SegmentSpec>;
export type InventoryEntryT = z.infer<typeof InventoryEntry>;
