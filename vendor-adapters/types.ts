import type { Lab } from "../lib/lab/index.ts";
import type { CommandHost } from "../lib/remote/index.ts";

/**
 * The one interface every device family implements. A suite never talks to a device
 * directly: it asks the adapter to deploy a configuration, start, stop, read state and
 * counters, inject faults and collect logs and configuration (the evidence).
 */

/** What a device can do; a case that needs a missing capability is "not applicable". */
export type Capability =
  | "vrrp-v3"
  | "vrrp-v2"
  | "vrrp-preempt-off"
  | "vrrp-graceful-stop"
  | "vrrp-state-readback"
  | "vrls"
  | "vrls-timer"
  | "vrls-sequence-number"
  | "vrls-exactly-once"
  | "vrls-substitution"
  | "natlb"
  | "natlb-full-nat"
  | "natlb-copy-keeping"
  | "fault-crash"
  | "fault-link"
  | "logs"
  | "config-readback";

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
}

/** The address family of a VRRP instance (RFC 9568: one family per virtual router). */
export function vrrpFamily(v: Pick<VrrpInstanceConfig, "family" | "virtualAddresses">): 4 | 6 {
  return v.family ?? (v.virtualAddresses[0]?.includes(":") ? 6 : 4);
}

/** What a suite deploys; each suite fills its own part. */
export interface DeviceConfig {
  vrrp?: VrrpInstanceConfig[];
  /** Role-specific configuration (VRLS / NAT-LB sections of the lab file). */
  vrls?: unknown;
  natlb?: unknown;
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
  | { kind: "link-up"; interface: string };

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
export interface NatlbMoveResult {
  id: string;
  outcome: string;
  steps: string[];
  entriesMoved: number;
  totalMs: number;
  hold?: { held: number; released: number; dropped: number; inOrder: boolean; holdMs: number };
  raw: unknown;
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
  move(vip: string, to: string): Promise<NatlbMoveResult>;
  startLoad(id: string, vip: string, connections: number, downloads: number): Promise<number>;
  loadReport(id: string, stop?: boolean): Promise<NatlbLoadResult>;
  /** The access correspondence table of `balancer` for `vip` (seed Fig. 5: 901-908). */
  entries(balancer: string, vip: string): Promise<Record<string, unknown>[]>;
  /** The copy a server keeps of `balancer`'s entries for `vip` (Fig. 13, copy keeping function 53). */
  copies(server: string, balancer: string, vip: string): Promise<Record<string, unknown>[]>;
  /** Takes a balancer down hard (process killed, interfaces down). */
  failBalancer(name: string): Promise<void>;
  /** Lets the control function notice failed balancers and move their VIPs; returns the moves. */
  handleFailures(): Promise<NatlbMoveResult[]>;
  diagnostics(): Promise<string>;
}

/** Per-member end system as a VRLS master reports it (seed Fig. 9B). */
export interface VrlsEndSystem {
  address: string;
  learnedBy: string;
}

/**
 * The control surface of a VRLS virtual router (seed 000), for the vrls suite: the
 * management operations a vendor's device would offer through its own API.
 */
export interface VrlsControl {
  /** Starts every member; `mode` overrides the operation mode (seed Fig. 9A). */
  start(options: {
    mode?: "timer" | "sequence-number" | "exactly-once";
    infoResponders?: string[];
  }): Promise<void>;
  stop(): Promise<void>;
  /** The member host that is master now (undefined: none or several). */
  master(): Promise<string | undefined>;
  waitForMaster(timeoutMs?: number): Promise<string>;
  /** Waits until `conditions` conditions are allocated and nothing is in flight; returns condition -> member address. */
  waitAllocated(conditions: number, timeoutMs?: number): Promise<Record<string, string>>;
  endSystems(): Promise<VrlsEndSystem[]>;
  members(): Promise<{ id: string; condition: string }[]>;
  /** Master moves conditions to members (condition -> member address) and waits until done. */
  reallocate(moves: Record<string, string>): Promise<void>;
  /** Makes one member fail (see {@link MemberFailure}). */
  failMember(host: string, how: MemberFailure): Promise<void>;
  /** Brings a failed member's links back (after power-off); it rejoins at the next start(). */
  restoreMember(host: string): Promise<void>;
  /** Per-member diagnostic state for the evidence. */
  diagnostics(): Promise<string>;
  /** The operation mode in force (after any adapter option). */
  readonly mode: string;
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
