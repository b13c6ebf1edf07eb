/**
 * The load-sharing extension messages as the router core sees them (seed Figs.
 * 10A-10F, types 2-8), after lib/wire has checked length, checksum, HMAC and
 * replay. The agent maps them to and from lib/wire's codecs; the core never sees
 * bytes, so it can be tested without sockets.
 */

export type HandoffMode = "timer" | "sequence-number" | "exactly-once";

/** One router in charge of one condition in an allocation (Fig. 10A body). */
export interface AllocationEntry {
  condition: string;
  owner: string;
  /** The router that had it in the previous allocation and is alive, or null: nothing to hand off. */
  previousOwner: string | null;
}

/** Per-flow marker of where the old owner stopped (Fig. 10C, generalised). */
export interface FlowMarker {
  /** Flow key: "proto src:sport>dst:dport" (ports 0 for protocols without ports). */
  flow: string;
  /** exactly-once: identity (64-bit hash, hex) of the last packet the old owner forwarded. */
  identity?: string;
  /** sequence-number: next TCP sequence number after the last forwarded segment, and its ACK number. */
  nextSeq?: number;
  lastAck?: number;
  /** Packets of this flow the old owner forwarded while observing (diagnostics). */
  count: number;
}

export type VrlsMessage =
  /** Type 2 (Fig. 3 with Type=2): a backup answers each advertisement. */
  | { type: "response"; priority: number; epoch: number; version: number }
  /** Type 3 (Fig. 10A): the whole allocation, so every member can diff it; versions are idempotent. */
  | { type: "allocation"; epoch: number; version: number; mode: HandoffMode; entries: AllocationEntry[] }
  /**
   * Type 4 (Fig. 10B): allocation confirmation. `observing` lists the conditions the
   * sender gives up and now observes; `holding` those it takes over and now holds
   * (or, in timer mode, will forward after the delay). `done`: every hand-off of this
   * member in this version is finished (the master waits for all before the next).
   */
  | {
      type: "confirmation";
      epoch: number;
      version: number;
      observing: string[];
      holding: string[];
      done: boolean;
      /**
       * Type 4 extension (Tandem, docs/vrls.md): per condition held, identities of packets the
       * new owner holds so far (its first and its latest). The old owner stops a condition only
       * once it has taken in one of them itself. Filled in by the agent from its data plane.
       */
      held?: Record<string, string[]>;
    }
  /** Type 5 (Fig. 10C): sequence number information / exactly-once markers, old owner -> new owner. */
  | { type: "markers"; epoch: number; version: number; conditions: string[]; markers: FlowMarker[] }
  /** Type 6 (Fig. 10D): review request, backup -> master. */
  | { type: "reviewRequest"; epoch: number }
  /** Type 7 (Fig. 10E): flow rate information request, master -> member. */
  | { type: "rateRequest"; epoch: number }
  /** Type 8 (Fig. 10F): flow rate information response. */
  | {
      type: "rateResponse";
      epoch: number;
      rates: { condition: string; bps: number }[];
      overflowsPerUnit: number;
    }
  /**
   * Type 9: registration request of a substitution server (seed Fig. 14: "registered ... as
   * a server for substitution"), to the master; repeated as the server's keepalive.
   */
  | { type: "registration"; epoch: number; role: "router" | "coordinator" }
  /** Type 10: the master's answer to a registration. */
  | {
      type: "registrationAck";
      epoch: number;
      accepted: boolean;
      role: "router" | "coordinator";
      member: string;
    };

/** Where a message goes: the VRRP multicast group, or one member's registered address. */
export type Destination = "all" | { member: string };

/** The ordering of allocations: by master incarnation, then version within it. */
export function compareVersion(
  a: { epoch: number; version: number },
  b: { epoch: number; version: number },
): number {
  return a.epoch - b.epoch || a.version - b.version;
}
