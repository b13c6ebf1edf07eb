import { z } from "zod";
import type { Lab } from "../lib/lab/index.ts";
import type { CommandHost } from "../lib/remote/index.ts";
import type { Vrrpv3MibSnapshot } from "../lib/snmp/vrrpv3-mib.ts";

/**
 * The one interface every device family implements. A suite never talks to a device
 * directly: it asks the adapter to deploy a configuration, start, stop, read state and
 * counters, inject faults and collect logs and configuration (the evidence).
 */

/**
 * What a device can do: data, checked at run time against this one list (an adapter, an
 * ssh-cli template or a test that names anything else is an error naming it). A case that
 * needs a capability the device lacks is "not applicable", never a failure.
 */
export const CAPABILITIES = [
  "vrrp-v3",
  "vrrp-v2",
  "vrrp-preempt-off",
  "vrrp-graceful-stop",
  "vrrp-state-readback",
  /** VRRPv3 over IPv6 (RFC 9568): instances whose virtual addresses are IPv6 (link-local first). */
  "vrrp-ipv6",
  /** RFC 9568 Accept_Mode can be set (both settings) per instance (VrrpInstanceConfig.acceptMode). */
  "vrrp-accept-mode",
  "vrls",
  "vrls-timer",
  "vrls-sequence-number",
  "vrls-exactly-once",
  /** Allocation review (seed Fig. 15, Figs. 10D-10F): thresholds, hold-down, hash-bucket conditions. */
  "vrls-review",
  /** A substitution server (seed Fig. 14) the adapter can start, stop, crash and read. */
  "vrls-substitution",
  "natlb",
  "natlb-full-nat",
  "natlb-copy-keeping",
  /**
   * Seed 002 modification 2 on failover: the takeover balancer gets the failed balancer's
   * entries (the servers' copies) before the route moves, so it needs no transition mode
   * (NatlbFailoverOptions.entriesFirst).
   */
  "natlb-failover-entries-first",
  "fault-crash",
  "fault-link",
  "logs",
  "config-readback",
] as const;
export const CapabilitySchema = z.enum(CAPABILITIES);
export type Capability = z.infer<typeof CapabilitySchema>;

/** Checks a list of capability names; `where` names the file/line or adapter they come from. */
export function parseCapabilities(values: readonly unknown[], where: string): Set<Capability> {
  const out = new Set<Capability>();
  for (const v of values) {
    const r = CapabilitySchema.safeParse(v);
    if (!r.success)
      throw new Error(
        `${where}: unknown capability ${JSON.stringify(v)} (known: ${CAPABILITIES.join(", ")})`,
      );
    out.add(r.data);
  }
  return out;
}

/**
 * A lab host as an adapter needs it: the one command API (lib/remote/command.ts), which
 * LabHost, RemoteHost and local/namespace hosts implement. The name stays for adapters.
 */
export type AdapterHost = CommandHost;

/** One VRRP virtual router on one interface of the device. */
export interface VrrpInstanceConfig {
  interface: string;
  vrid: number;
  priority: number;
  advertIntervalMs: number;
  preempt: boolean;
  version: 2 | 3;
  /**
   * Virtual addresses with prefix length, e.g. 198.18.2.1/24, or for an IPv6 instance
   * (issue 16) fe80::7/64 then 2001:db8:2::1/64: the first is the link-local virtual address.
   */
  virtualAddresses: string[];
  /** Address family of the instance; default: IPv6 when the first virtual address is. */
  family?: 4 | 6;
  /**
   * RFC 9568 Accept_Mode: whether a master that is not the address owner accepts packets
   * addressed to the virtual addresses. Absent: the device's own default. Only devices
   * with capability vrrp-accept-mode are given it.
   */
  acceptMode?: boolean;
}

/** The address family of a VRRP instance (RFC 9568: one family per virtual router). */
export function vrrpFamily(v: Pick<VrrpInstanceConfig, "family" | "virtualAddresses">): 4 | 6 {
  return v.family ?? (v.virtualAddresses[0]?.includes(":") ? 6 : 4);
}

/** The VRLS operation mode (seed Fig. 9A): how a condition is handed from one member to another. */
export type VrlsMode = "timer" | "sequence-number" | "exactly-once";

/** How the master reviews an allocation (seed Fig. 15, Figs. 10D-10F; capability vrls-review). */
export interface VrlsReviewSettings {
  /** Imbalance between members that triggers a review: (max - min) / mean, %. */
  imbalancePct: number;
  /** Queue overflows per time unit at a member that make it ask for a review (type 6). */
  overflowsPerUnit: number;
  /** No review within this long after the previous one (hold-down). */
  holdDownMs: number;
  /** How long the master collects flow rate responses (type 8). */
  collectMs: number;
  /** Flows below this rate are not moved. */
  minRateBps: number;
  sampleMs: number;
  windowMs: number;
  timeUnitMs: number;
}

/** What a condition is: an end system's address, or a hash bucket over the packet's addresses. */
export type VrlsConditions =
  | { kind: "address" }
  | { kind: "bucket"; over: "src" | "src+dst"; count: number; seed: number };

/**
 * Settings of a VRLS virtual router that the cases change; everything else (VRID, virtual
 * address, members and priorities, key) is the device's configuration from the lab file.
 */
export interface VrlsSettings {
  mode?: VrlsMode;
  /** A device that is one member (e.g. behind a web UI): its priority. */
  priority?: number;
  /** Timer mode: the new owner's delay before forwarding. */
  timerDelayMs?: number;
  advertIntervalMs?: number;
  /** How long a new master discovers end systems before its first allocation. */
  discoveryMs?: number;
  conditions?: VrlsConditions;
  /** Present: reviews on with these thresholds (needs vrls-review). */
  review?: VrlsReviewSettings;
}

/** What a suite deploys; each suite fills its own part. */
export interface DeviceConfig {
  vrrp?: VrrpInstanceConfig[];
  /** Settings of the VRLS virtual router (the lab file's `vrls:` section gives the rest). */
  vrls?: VrlsSettings;
  /** The NAT-LB embodiment (seed 002). */
  natlb?: { embodiment: "dnat" | "fullnat" };
}

export type VrrpStateName = "initialize" | "backup" | "master" | "unknown";

export interface DeviceState {
  running: boolean;
  vrrp: { vrid: number; state: VrrpStateName }[];
  counters: Record<string, number>;
}

/**
 * How a member fails. crash: its control process dies without a word (the box stays up;
 * what it forwards must die with it). power-off: the whole member vanishes (every link
 * down, every process of it killed).
 */
export type MemberFailure = "crash" | "power-off";

export type Fault =
  | { kind: "crash" }
  | { kind: "power-off" }
  | { kind: "link-down"; interface: string }
  | { kind: "link-up"; interface: string }
  /** Undoes power-off and link-down (links up); a crashed process comes back at the next start. */
  | { kind: "restore" };

export interface DeviceIdentity {
  vendor: string;
  product: string;
  version: string;
}

/** Where the device is: its hosts in the lab and a private working directory on them. */
export interface DeviceTarget {
  /** Device hosts by lab host name (one for a VRRP router, several for a VRLS group). */
  hosts: Readonly<Record<string, AdapterHost>>;
  /** The host the single-device operations act on. */
  primary: string;
  /** A directory private to this run on the device hosts (config, pid and log files). */
  workDir: string;
  /** Adapter options (from `tandem certify --dut-option k=v`, or the suite). */
  options: Readonly<Record<string, string>>;
  /** The lab (for system adapters whose device spans several hosts: VRLS, NAT-LB). */
  lab?: Lab;
}

/** A VIP move as the balancers' control function reports it (seed 002, four steps). */
export interface NatlbMoveOptions {
  inTransition?: () => Promise<void>;
}

export interface NatlbMoveResult {
  id: string;
  outcome: string;
  steps: string[];
  /** When the move began and each step ended, ms since the epoch, if the device reports them (charts mark them). */
  startedAt?: number;
  stepTimes?: { step: string; atMs: number }[];
  entriesMoved: number;
  totalMs: number;
  hold?: { held: number; released: number; dropped: number; inOrder: boolean; holdMs: number };
  /** Whether the device called `options.inTransition` (inside the hold window). */
  inTransitionCalled?: boolean;
  /** Failover: whether the device called `NatlbFailoverOptions.afterRoute` during this move. */
  afterRouteCalled?: boolean;
  raw: unknown;
}

/** How the control function carries out a failover ({@link NatlbControl.handleFailures}). */
export interface NatlbFailoverOptions {
  /**
   * Seed 002 modification 2 (capability natlb-failover-entries-first): the takeover
   * balancer gets the failed balancer's entries from the servers' copies before the route
   * (addresses, gratuitous ARP) moves to it, and the VIP is never put in transition mode.
   * A device that always fails over this way ignores it.
   */
  entriesFirst?: boolean;
  /**
   * Called once, during the failover move of the first VIP, right after its route moved to
   * the takeover balancer (it holds the addresses and has announced them) and before the
   * move goes on; the device goes on only when it resolves. The suite looks at the
   * takeover balancer in that moment (its table, its mode, probes sent to it).
   */
  afterRoute?: () => Promise<void>;
}

/** One row of a balancer's transfer processing mode table (seed 002 Figs. 7A/7B, 8A-8C). */
export interface NatlbModeRow {
  vip: string;
  /** The VIP's process mode on the balancer; absent: in neither mode (not in the table). */
  mode?: "normal" | "transition";
  /** How many times the VIP entered transition mode on this balancer since it started. */
  transitionsEntered: number;
}

export interface NatlbLoadResult {
  established: number;
  resets: number;
  stalls: number;
  corrupt: number;
  failedConnects: number;
  open: number;
  raw: unknown;
}

/** The control surface of NAT-LB balancers (seed 002) for the natlb suite. */
export interface NatlbControl {
  start(options: { embodiment: "dnat" | "fullnat" }): Promise<void>;
  stop(): Promise<void>;
  owner(vip: string): Promise<string | undefined>;
  /**
   * A planned move of `vip` to balancer `to` (the seed's four steps). With
   * `options.inTransition`, the device calls it once while the new owner is in transition
   * mode and holds the VIP's addresses (after step 2, before step 3) and goes on only when
   * it resolves: the suite's probes reach the new owner provably inside the hold window.
   * The result's `inTransitionCalled` says whether it was called.
   */
  move(vip: string, to: string, options?: NatlbMoveOptions): Promise<NatlbMoveResult>;
  startLoad(id: string, vip: string, connections: number, downloads: number): Promise<number>;
  loadReport(id: string, stop?: boolean): Promise<NatlbLoadResult>;
  /** The access correspondence table of `balancer` for `vip` (seed Fig. 5: 901-908). */
  entries(balancer: string, vip: string): Promise<Record<string, unknown>[]>;
  /** The copy a server keeps of `balancer`'s entries for `vip` (Fig. 13, copy keeping function 53). */
  copies(server: string, balancer: string, vip: string): Promise<Record<string, unknown>[]>;
  /** Takes a balancer down hard (process killed, interfaces down). */
  failBalancer(name: string): Promise<void>;
  /**
   * The control function measures the traffic per VIP, computes the best assignment and
   * moves VIPs toward it (seed 002 Fig. 3, control function 52); returns the moves and the
   * per-VIP loads it measured.
   */
  rebalance(): Promise<{ moves: NatlbMoveResult[]; vipLoads: Record<string, number>; raw: unknown }>;
  /**
   * The per-VIP load the control function measures now, bytes/s (what {@link rebalance}
   * would act on), without moving anything: 0 until it has a rate for the VIP.
   */
  vipLoads(): Promise<Record<string, number>>;
  /**
   * Lets the control function notice failed balancers and move their VIPs; returns the
   * moves (with `hold`: what the takeover balancer held, when it reports it).
   */
  handleFailures(options?: NatlbFailoverOptions): Promise<NatlbMoveResult[]>;
  /** The mode table of `balancer`, one row per VIP of the device (in neither mode: no `mode`). */
  modeTable(balancer: string): Promise<NatlbModeRow[]>;
  diagnostics(): Promise<string>;
}

/** Per-member end system as a VRLS master reports it (seed Fig. 9B). */
export interface VrlsEndSystem {
  address: string;
  learnedBy: string;
}

/** The virtual router as configured on the device (what the cases judge the wire against). */
export interface VrlsDescription {
  name: string;
  vrid: number;
  /** The members' LAN interface. */
  interface: string;
  virtualAddress: string;
  /** Authentication key of the VRLS messages (to decode captures). */
  key: string;
  advertIntervalMs: number;
  /** How long the master waits for a backup's response before it declares it faulty. */
  responseTimeoutMs: number;
  members: { host: string; address: string; priority: number }[];
  /** The substitution server's host, when the device has one configured. */
  substitutionServer?: string;
}

/** One member's state as its management interface reports it. */
export interface VrlsMemberState {
  role: string;
  /** The sharing table: condition -> member address in charge. */
  owners: Record<string, string>;
  /** The allocation epoch this member applied. */
  epoch: number;
  counters: Record<string, number>;
  /** The master's allocation engine (null on a backup, or while a substitution server allocates). */
  master: { epoch: number; allocation: Record<string, string>; inFlight: unknown } | null;
  /** Review state (thresholds, last review, hold-down), device-specific. */
  review: unknown;
}

/** The substitution server of a VRLS virtual router (seed Fig. 14; capability vrls-substitution). */
export interface VrlsSubstitutionControl {
  /** Starts the server on its host with the virtual router's current settings. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The server dies without a word: its link goes down and its process is killed. */
  crash(): Promise<void>;
  status(): Promise<{
    registered: boolean;
    master: { epoch: number; allocation: Record<string, string>; inFlight: unknown } | null;
    counters?: Record<string, number>;
  }>;
  logs(): Promise<string>;
}

/**
 * The control surface of a VRLS virtual router (seed 000), for the vrls suite: the
 * management operations a vendor's device would offer through its own API.
 */
export interface VrlsControl {
  /** The virtual router as configured (lab file plus deployed settings). */
  describe(): VrlsDescription;
  /**
   * Starts every member with the deployed settings, `settings` overriding them for this
   * start; `infoResponders`: end systems that answer ICMP information requests (lab side).
   */
  start(options: VrlsSettings & { infoResponders?: string[] }): Promise<void>;
  stop(): Promise<void>;
  /** The member host that is master now (undefined: none or several). */
  master(): Promise<string | undefined>;
  /** Waits for a single master (`expected`, when given). */
  waitForMaster(timeoutMs?: number, expected?: string): Promise<string>;
  /** Waits until `conditions` conditions are allocated and nothing is in flight; returns condition -> member address. */
  waitAllocated(conditions: number, timeoutMs?: number): Promise<Record<string, string>>;
  endSystems(): Promise<VrlsEndSystem[]>;
  members(): Promise<{ id: string; condition: string }[]>;
  /** One member's state: sharing table, counters, review state. */
  status(host: string): Promise<VrlsMemberState>;
  /** Master moves conditions to members (condition -> member address) and waits until done. */
  reallocate(moves: Record<string, string>): Promise<void>;
  /** Makes one member fail (see {@link MemberFailure}). */
  failMember(host: string, how: MemberFailure): Promise<void>;
  /** Brings a failed member's links back (after power-off); it rejoins at the next start(). */
  restoreMember(host: string): Promise<void>;
  /** Per-member diagnostic state for the evidence. */
  diagnostics(): Promise<string>;
  /** Per-member logs since the last start. */
  logs(): Promise<string>;
  /** The operation mode in force (after any adapter option). */
  readonly mode: string;
  /** Present with capability vrls-substitution. */
  readonly substitution?: VrlsSubstitutionControl;
}

export interface VendorAdapter {
  readonly name: string;
  readonly capabilities: ReadonlySet<Capability>;
  identity(): Promise<DeviceIdentity>;
  /** Writes the device configuration (does not start it). */
  deploy(config: DeviceConfig): Promise<void>;
  start(): Promise<void>;
  /** graceful: the device's own shutdown (VRRP: priority 0); crash: killed without a word. */
  stop(how?: "graceful" | "crash"): Promise<void>;
  readState(): Promise<DeviceState>;
  /**
   * Optional: the device's VRRPv3 MIB (RFC 6527) read over SNMP (lib/snmp/vrrpv3-mib.ts):
   * status, priority, master and primary address and statistics counters per virtual
   * router, the standard read-back any SNMP-managed router offers (issue 16 item 6).
   */
  readVrrpMib?(): Promise<Vrrpv3MibSnapshot>;
  injectFault(fault: Fault): Promise<void>;
  collectLogs(): Promise<string>;
  collectConfig(): Promise<string>;
  /** Releases everything the adapter started (idempotent). */
  dispose(): Promise<void>;
  /** Present when the device is a VRLS virtual router. */
  readonly vrls?: VrlsControl;
  /** Present when the device is a set of NAT-LB balancers with their control function. */
  readonly natlb?: NatlbControl;
}

export interface AdapterRegistration {
  name: string;
  description: string;
  /** Suites this adapter can be certified with. */
  suites: readonly ("vrrp" | "vrls" | "natlb")[];
  /** Why an adapter without suites cannot be certified (what it is instead); `tandem certify` prints it. */
  notCertifiable?: string;
  create(target: DeviceTarget): VendorAdapter;
  /**
   * Documented, verified explanations of this device's deviations, by case ID. Shown next
   * to a failed case in the report; a case still fails on its own evidence.
   */
  knownDeviations?: Readonly<Record<string, string>>;
}
