import { z } from "zod";

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
    addresses: z.array(Ipv4Cidr).default([]),
    mac: Mac.optional(),
    mtu: z.number().int().min(576).max(9000).optional(),
  })
  .strict();

export const RouteSpec = z
  .object({
    to: z.union([z.literal("default"), Ipv4Cidr]),
    via: Ipv4.optional(),
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
    /** Forward IPv4 between interfaces (sets net.ipv4.ip_forward=1). */
    forwarding: z.boolean().default(false),
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
    subnet: Ipv4Cidr.optional(),
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
    addressPlan: z.record(z.string(), Ipv4Cidr).default({}),
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
