/**
 * The RFC 5798 / RFC 9568 (VRRPv3) state machine as a pure, clock-injected reducer, for
 * either family (the VRLS router agent on IPv4, the vrrp6-router agent on IPv6; only the
 * election's address comparison depends on the family, compareAddresses):
 * `step(state, event) -> { state, actions }`. Nothing here touches a socket or a
 * timer; the router agent feeds it events (startup, shutdown, received
 * advertisements, clock ticks) and carries out the actions (send an
 * advertisement, broadcast gratuitous ARP (IPv6: unsolicited Neighbor Advertisements),
 * start/stop answering ARP (IPv6: NS) for the VIP).
 *
 * Section references are RFC 5798 6.4.1 (Initialize), 6.4.2 (Backup), 6.4.3 (Master).
 * This is type 1 (the seed's Fig. 3 advertisement); the load-sharing extension
 * (types 2-8, seed Figs. 10A-10F) runs beside it in lib/roles/vrls/router-core.ts.
 */
import { familyOf, ipToInt, ipv6ToBigInt } from "../../topology/address.ts";
import { masterDownIntervalMs, OWNER_PRIORITY, RESIGN_PRIORITY, skewTimeMs } from "./timers.ts";

export type VrrpStateName = "initialize" | "backup" | "master";

export interface VrrpParams {
  vrid: number;
  /** 1..254 for a backup-capable router, 255 for the address owner (RFC 5798 5.2.4). */
  priority: number;
  /** Advertisement_Interval in centiseconds (RFC 5798 6.1). */
  advertIntervalCs: number;
  /** Preempt_Mode (RFC 5798 6.1): a higher-priority backup takes over from a lower-priority master. */
  preempt: boolean;
  /**
   * This router's primary address on the LAN (tie-break, RFC 9568 6.4.3): IPv4, or over
   * IPv6 the link-local address it sends its advertisements from.
   */
  primaryAddress: string;
  /** IPvX_Address(es) of the virtual router. */
  virtualAddresses: readonly string[];
  /** Seeded faults (lib/roles/seeded-faults.ts): off unless named. */
  faults?: readonly string[];
}

export interface VrrpState {
  readonly name: VrrpStateName;
  readonly params: VrrpParams;
  /** Master_Adver_Interval in centiseconds, learned from the master's advertisements. */
  readonly masterAdverIntCs: number;
  /** Absolute clock times (ms) at which the timers fire, or null when stopped. */
  readonly adverDeadline: number | null;
  readonly masterDownDeadline: number | null;
  /** Primary address of the router believed to be master (ourselves when master). */
  readonly masterAddress: string | null;
}

export type VrrpEvent =
  | { type: "startup"; now: number }
  | { type: "shutdown"; now: number }
  /** The clock advanced; fires every timer whose deadline is <= now. */
  | { type: "tick"; now: number }
  /** A type 1 advertisement for our VRID that passed the RFC 5798 7.1 receive checks. */
  | { type: "advertisement"; now: number; from: string; priority: number; maxAdverIntCs: number };

export type VrrpAction =
  | { type: "sendAdvertisement"; priority: number; advertIntervalCs: number }
  | { type: "sendGratuitousArp"; addresses: readonly string[] }
  /** Entering master: answer ARP for the VIPs and accept the virtual MAC; leaving: stop. */
  | { type: "transition"; from: VrrpStateName; to: VrrpStateName; now: number };

export interface VrrpStep {
  state: VrrpState;
  actions: VrrpAction[];
}

export function initialVrrpState(params: VrrpParams): VrrpState {
  validateParams(params);
  return {
    name: "initialize",
    params,
    masterAdverIntCs: params.advertIntervalCs,
    adverDeadline: null,
    masterDownDeadline: null,
    masterAddress: null,
  };
}

function validateParams(p: VrrpParams): void {
  if (!Number.isInteger(p.vrid) || p.vrid < 1 || p.vrid > 255)
    throw new RangeError(`VRID must be 1..255, got ${p.vrid}`);
  if (!Number.isInteger(p.priority) || p.priority < 1 || p.priority > 255) {
    throw new RangeError(`priority must be 1..255, got ${p.priority}`);
  }
  if (!Number.isInteger(p.advertIntervalCs) || p.advertIntervalCs < 1 || p.advertIntervalCs > 0xfff) {
    throw new RangeError(`advertisement interval must be 1..4095 centiseconds, got ${p.advertIntervalCs}`);
  }
}

/** The earliest pending timer deadline, for the driver's single wake-up timer. */
export function nextDeadline(state: VrrpState): number | null {
  const d = [state.adverDeadline, state.masterDownDeadline].filter((x): x is number => x !== null);
  return d.length === 0 ? null : Math.min(...d);
}

/** Master_Down_Interval for this router given what it learned from the master. */
export function masterDownMs(state: VrrpState): number {
  if (fault(state, "vrrp-skew-omitted")) return 3 * state.masterAdverIntCs * 10;
  return masterDownIntervalMs(state.params.priority, state.masterAdverIntCs);
}

/** A seeded fault is switched on (lib/roles/seeded-faults.ts). */
function fault(state: VrrpState, name: string): boolean {
  return state.params.faults?.includes(name) === true;
}

/** The advertisement timer's period (ms). */
function adverPeriodMs(state: VrrpState): number {
  return state.params.advertIntervalCs * (fault(state, "vrrp-adv-slow") ? 15 : 10);
}

export function step(state: VrrpState, event: VrrpEvent): VrrpStep {
  switch (state.name) {
    case "initialize":
      return onInitialize(state, event);
    case "backup":
      return onBackup(state, event);
    case "master":
      return onMaster(state, event);
  }
}

function advert(state: VrrpState, priority = state.params.priority): VrrpAction {
  return { type: "sendAdvertisement", priority, advertIntervalCs: state.params.advertIntervalCs };
}

function becomeMaster(state: VrrpState, now: number): VrrpStep {
  const next: VrrpState = {
    ...state,
    name: "master",
    adverDeadline: now + adverPeriodMs(state),
    masterDownDeadline: null,
    masterAddress: state.params.primaryAddress,
  };
  return {
    state: next,
    actions: [
      ...(fault(state, "vrrp-takeover-silent") ? [] : [advert(state)]),
      { type: "sendGratuitousArp", addresses: state.params.virtualAddresses },
      { type: "transition", from: state.name, to: "master", now },
    ],
  };
}

// RFC 5798 6.4.1
function onInitialize(state: VrrpState, event: VrrpEvent): VrrpStep {
  if (event.type !== "startup") return { state, actions: [] };
  if (state.params.priority === OWNER_PRIORITY || fault(state, "vrrp-start-as-master"))
    return becomeMaster(state, event.now);
  const learned = { ...state, masterAdverIntCs: state.params.advertIntervalCs };
  return {
    state: {
      ...learned,
      name: "backup",
      masterDownDeadline: event.now + masterDownMs(learned),
      adverDeadline: null,
      masterAddress: null,
    },
    actions: [{ type: "transition", from: "initialize", to: "backup", now: event.now }],
  };
}

// RFC 5798 6.4.2
function onBackup(state: VrrpState, event: VrrpEvent): VrrpStep {
  switch (event.type) {
    case "startup":
      return { state, actions: [] };
    case "shutdown":
      return {
        state: {
          ...state,
          name: "initialize",
          masterDownDeadline: null,
          adverDeadline: null,
          masterAddress: null,
        },
        actions: [{ type: "transition", from: "backup", to: "initialize", now: event.now }],
      };
    case "tick":
      if (state.masterDownDeadline !== null && event.now >= state.masterDownDeadline) {
        return becomeMaster(state, event.now);
      }
      return { state, actions: [] };
    case "advertisement": {
      if (event.priority === RESIGN_PRIORITY && fault(state, "vrrp-backup-ignores-pri0"))
        return { state, actions: [] };
      if (event.priority === RESIGN_PRIORITY) {
        // The master is leaving: take over after Skew_Time only.
        return {
          state: {
            ...state,
            masterDownDeadline: event.now + skewTimeMs(state.params.priority, state.masterAdverIntCs),
          },
          actions: [],
        };
      }
      const preempt =
        state.params.preempt !==
        fault(state, state.params.preempt ? "vrrp-preempt-ignored" : "vrrp-preempt-forced");
      if (!preempt || event.priority >= state.params.priority) {
        const learned = {
          ...state,
          masterAdverIntCs: fault(state, "vrrp-learned-interval-ignored")
            ? state.params.advertIntervalCs
            : event.maxAdverIntCs,
          masterAddress: event.from,
        };
        return { state: { ...learned, masterDownDeadline: event.now + masterDownMs(learned) }, actions: [] };
      }
      // Preempt: a lower-priority master is ignored, so our Master_Down_Timer will fire.
      return { state, actions: [] };
    }
  }
}

// RFC 5798 6.4.3
function onMaster(state: VrrpState, event: VrrpEvent): VrrpStep {
  switch (event.type) {
    case "startup":
      return { state, actions: [] };
    case "shutdown":
      return {
        state: {
          ...state,
          name: "initialize",
          adverDeadline: null,
          masterDownDeadline: null,
          masterAddress: null,
        },
        actions: [
          ...(fault(state, "vrrp-no-resign") ? [] : [advert(state, RESIGN_PRIORITY)]),
          { type: "transition", from: "master", to: "initialize", now: event.now },
        ],
      };
    case "tick":
      if (state.adverDeadline !== null && event.now >= state.adverDeadline) {
        return {
          state: { ...state, adverDeadline: event.now + adverPeriodMs(state) },
          actions: [advert(state)],
        };
      }
      return { state, actions: [] };
    case "advertisement": {
      if (event.priority === RESIGN_PRIORITY && fault(state, "vrrp-master-ignores-pri0"))
        return { state, actions: [] };
      if (event.priority === RESIGN_PRIORITY) {
        return {
          state: { ...state, adverDeadline: event.now + adverPeriodMs(state) },
          actions: [advert(state)],
        };
      }
      if (masterYields(state, event.priority, event.from)) {
        const learned = { ...state, masterAdverIntCs: event.maxAdverIntCs };
        return {
          state: {
            ...learned,
            name: "backup",
            adverDeadline: null,
            masterDownDeadline: event.now + masterDownMs(learned),
            masterAddress: event.from,
          },
          actions: [{ type: "transition", from: "master", to: "backup", now: event.now }],
        };
      }
      return { state, actions: [] };
    }
  }
}

/** Whether a master yields to this advertisement (RFC 5798 6.4.3, or a seeded fault's inversion of it). */
function masterYields(state: VrrpState, priority: number, from: string): boolean {
  const mine = state.params.priority;
  if (priority > mine && fault(state, "vrrp-ignore-higher")) return false;
  if (priority < mine && fault(state, "vrrp-yield-to-lower")) return true;
  if (priority === mine && fault(state, "vrrp-tie-break-inverted"))
    return compareAddresses(from, state.params.primaryAddress) < 0;
  return outranks(priority, from, mine, state.params.primaryAddress);
}

/**
 * RFC 9568 6.4.3: greater priority wins; equal priority goes to the greater primary
 * address, compared as an unsigned number of its family (IPv6: all 128 bits, so
 * fe80::ffff:ffff:ffff:a > fe80::2).
 */
export function outranks(
  priority: number,
  address: string,
  otherPriority: number,
  otherAddress: string,
): boolean {
  if (priority !== otherPriority) return priority > otherPriority;
  return compareAddresses(address, otherAddress) > 0;
}

/**
 * -1, 0 or 1 as `a` is less than, equal to or greater than `b`, both IPv4 or both IPv6
 * (text; any IPv6 spelling). Addresses of different families are an error: a virtual router
 * is of one family (RFC 9568), so comparing across them is a bug upstream.
 */
export function compareAddresses(a: string, b: string): -1 | 0 | 1 {
  const fa = familyOf(a);
  const fb = familyOf(b);
  if (fa !== fb) throw new Error(`cannot compare ${a} (IPv${fa}) with ${b} (IPv${fb})`);
  const [x, y] = fa === 6 ? [ipv6ToBigInt(a), ipv6ToBigInt(b)] : [ipToInt(a), ipToInt(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}
