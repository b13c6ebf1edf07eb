/**
 * Seeded faults (issue 13): named switches in the reference roles, each off by default,
 * each breaking exactly one specified behaviour, so a certification run can show that the
 * suites fail a device that is wrong. Selected with `--dut-option fault=NAME[,NAME...]`;
 * the reference adapter checks the names here and passes them to the role agents in their
 * arguments, where one `faults.has(NAME)` sits at the point of the broken behaviour.
 * suites/faults.yaml names, per fault, the requirements that must fail under it.
 */

export interface SeededFault {
  /** Which reference role carries the switch: the VRLS router agent (also the plain VRRPv3 router) or NAT-LB. */
  role: "vrls-router" | "natlb";
  /** What it breaks, in the words of the specification. */
  breaks: string;
}

export const SEEDED_FAULTS = {
  // ---- VRRP (RFC 5798) in the router agent (lib/roles/vrls/vrrp-state.ts, vrls-router.agent.ts)
  "vrrp-adv-ttl-254": { role: "vrls-router", breaks: "advertisements leave with IP TTL 254, not 255" },
  "vrrp-adv-bad-checksum": { role: "vrls-router", breaks: "advertisements carry a wrong VRRP checksum" },
  "vrrp-adv-version-2": { role: "vrls-router", breaks: "advertisements carry version 2 in the header" },
  "vrrp-adv-wrong-priority": {
    role: "vrls-router",
    breaks: "advertisements carry the configured priority + 1",
  },
  "vrrp-adv-wrong-interval": {
    role: "vrls-router",
    breaks: "Max Adver Int carries twice the configured interval (the timer itself is right)",
  },
  "vrrp-adv-physical-mac": {
    role: "vrls-router",
    breaks: "advertisements are sent from the interface's own MAC, not the virtual MAC",
  },
  "vrrp-adv-slow": {
    role: "vrls-router",
    breaks: "the master advertises every 1.5 x Advertisement_Interval",
  },
  "vrrp-skew-omitted": {
    role: "vrls-router",
    breaks: "Master_Down_Interval = 3 x interval, Skew_Time left out",
  },
  "vrrp-learned-interval-ignored": {
    role: "vrls-router",
    breaks: "a backup keeps its configured interval instead of the master's Max Adver Int",
  },
  "vrrp-start-as-master": { role: "vrls-router", breaks: "a router below priority 255 starts as master" },
  "vrrp-takeover-silent": {
    role: "vrls-router",
    breaks: "on Master_Down_Timer expiry the new master sends its first advertisement one interval late",
  },
  "vrrp-ignore-higher": {
    role: "vrls-router",
    breaks: "a master ignores advertisements of a higher priority",
  },
  "vrrp-tie-break-inverted": {
    role: "vrls-router",
    breaks: "at equal priority the lower primary address wins",
  },
  "vrrp-yield-to-lower": { role: "vrls-router", breaks: "a master yields to a lower priority" },
  "vrrp-preempt-ignored": { role: "vrls-router", breaks: "Preempt_Mode true behaves as false" },
  "vrrp-preempt-forced": { role: "vrls-router", breaks: "Preempt_Mode false behaves as true" },
  "vrrp-no-resign": { role: "vrls-router", breaks: "a master shut down sends no priority-0 advertisement" },
  "vrrp-backup-ignores-pri0": {
    role: "vrls-router",
    breaks: "a backup ignores priority 0 (waits the full Master_Down_Interval)",
  },
  "vrrp-master-ignores-pri0": {
    role: "vrls-router",
    breaks: "a master does not answer priority 0 with an advertisement",
  },
  "vrrp-rx-accept-ttl": { role: "vrls-router", breaks: "advertisements with TTL != 255 are accepted" },
  "vrrp-rx-accept-version": {
    role: "vrls-router",
    breaks: "advertisements of another version are accepted (read as v3, own interval)",
  },
  "vrrp-rx-accept-short": {
    role: "vrls-router",
    breaks: "advertisements shorter than header + address list are accepted",
  },
  "vrrp-rx-accept-bad-checksum": {
    role: "vrls-router",
    breaks: "advertisements with a wrong checksum are accepted",
  },
  "vrrp-rx-accept-other-vrid": { role: "vrls-router", breaks: "advertisements of another VRID are accepted" },
  "vrrp-no-garp": { role: "vrls-router", breaks: "no gratuitous ARP on becoming master" },
  "vrrp-no-arp-reply": {
    role: "vrls-router",
    breaks: "the master does not answer ARP for the virtual address",
  },
  "vrrp-arp-while-backup": {
    role: "vrls-router",
    breaks: "a backup answers ARP for the virtual address (the VIP stays configured)",
  },
  "vrrp-no-forward": {
    role: "vrls-router",
    breaks: "the master does not forward frames sent to the virtual MAC",
  },
  "vrrp-forward-while-backup": {
    role: "vrls-router",
    breaks: "a backup forwards frames sent to the virtual MAC",
  },
  "vrrp-accept-mode-ignored": {
    role: "vrls-router",
    breaks:
      "Accept_Mode False behaves as True: a master that is not the owner accepts packets addressed to the virtual address",
  },
  "vrrp-accept-mode-forced": {
    role: "vrls-router",
    breaks: "Accept_Mode True behaves as False: the master drops packets addressed to the virtual address",
  },
  // ---- VRLS extension (lib/roles/vrls)
  "vrls-adv-ttl-254": {
    role: "vrls-router",
    breaks: "type 1 advertisements leave with TTL 254: the other members discard them (no election)",
  },
  "vrls-no-responses": { role: "vrls-router", breaks: "a backup sends no response (type 2)" },
  "vrls-backup-failure-ignored": {
    role: "vrls-router",
    breaks: "the master never marks a silent backup faulty (its conditions stay with it)",
  },
  "vrls-no-discovery": { role: "vrls-router", breaks: "a new master sends no ICMP information request" },
  "vrls-no-passive-learning": {
    role: "vrls-router",
    breaks: "end systems that do not answer ICMP are never learned from their packets",
  },
  "vrls-alloc-off-by-one": {
    role: "vrls-router",
    breaks: "the equal-count allocation gives one condition of the last member to the first",
  },
  "vrls-no-confirmation": {
    role: "vrls-router",
    breaks: "a member sends no allocation confirmation (type 4)",
  },
  "vrls-keeps-forwarding": {
    role: "vrls-router",
    breaks: "the old owner keeps forwarding a condition after the hand-off (empty markers)",
  },
  "vrls-timer-delay-ignored": { role: "vrls-router", breaks: "timer mode: the new owner waits no delay" },
  "vrls-seq-off-by-one": {
    role: "vrls-router",
    breaks: "sequence-number mode: the markers' next sequence number is one segment (1448) early",
  },
  "vrls-no-markers": { role: "vrls-router", breaks: "the old owner's markers (type 5) list no flow" },
  "vrls-wrong-flow-markers": { role: "vrls-router", breaks: "the markers name the wrong flows" },
  "vrls-no-hold": {
    role: "vrls-router",
    breaks: "exactly-once: the new owner forwards at once instead of holding until the markers",
  },
  "vrls-no-review-request": {
    role: "vrls-router",
    breaks: "a member past the thresholds sends no review request (type 6)",
  },
  "vrls-no-rate-response": {
    role: "vrls-router",
    breaks: "a backup does not answer the flow rate request (type 8)",
  },
  "vrls-realloc-smallest-first": {
    role: "vrls-router",
    breaks: "reallocation by rate places the conditions smallest first",
  },
  "vrls-no-master-review": {
    role: "vrls-router",
    breaks: "a master whose own flow passes the thresholds starts no review",
  },
  "vrls-review-in-holddown": {
    role: "vrls-router",
    breaks: "reviews start again inside the hold-down (0 ms)",
  },
  "vrls-sub-master-confirms": {
    role: "vrls-router",
    breaks:
      "the master router confirms the substitution server's allocations (P24: it records them silently)",
  },
  "vrls-sub-review-bypassed": {
    role: "vrls-router",
    breaks:
      "reviews ignore a registered substitution server (review requests go to the master, which reviews itself)",
  },
  "vrls-substitution-failure-ignored": {
    role: "vrls-router",
    breaks: "the master does not take the work back when the substitution server falls silent",
  },
  "zombie-dataplane": {
    role: "vrls-router",
    breaks: "the data plane is not removed when the agent crashes (kernel rules outlive it)",
  },
  // ---- NAT-LB (lib/roles/natlb: balancer and keeper agents)
  "natlb-dnat-snat": {
    role: "natlb",
    breaks: "destination NAT also rewrites the source (the server no longer sees the client)",
  },
  "natlb-fullnat-no-snat": {
    role: "natlb",
    breaks: "full NAT without the source rewrite to the internal address and port",
  },
  "natlb-table-no-tcp-info": {
    role: "natlb",
    breaks: "connection entries lack the TCP flow-control information (state)",
  },
  "natlb-unknown-vip-silent": {
    role: "natlb",
    breaks: "a packet for an address in neither mode is dropped without an error back",
  },
  "natlb-no-transition": {
    role: "natlb",
    breaks: "no transition mode on the receiving balancer: packets are not held (refused)",
  },
  "natlb-no-garp": { role: "natlb", breaks: "no gratuitous ARP when a balancer takes a VIP" },
  "natlb-entries-not-moved": { role: "natlb", breaks: "step 3 sends no entries to the new owner" },
  "natlb-old-keeps-entries": {
    role: "natlb",
    breaks: "the old owner does not delete the VIP's entries after the end of switch",
  },
  "natlb-end-switch-ignored": {
    role: "natlb",
    breaks: "the old owner ignores the end-of-switch (keeps the VIP's mode and entries)",
  },
  "natlb-held-dropped": { role: "natlb", breaks: "held packets are dropped at step 4, not released" },
  "natlb-no-copies": {
    role: "natlb",
    breaks: "the balancers push no copies of their entries to the servers",
  },
  "natlb-no-rebalance": {
    role: "natlb",
    breaks:
      "the control server computes the best assignment from the measured loads but moves no VIP toward it",
  },
  "natlb-failover-route-first": {
    role: "natlb",
    breaks:
      "asked for a failover with the entries first (modification 2), the controller moves the route first and installs the servers' copies after, in transition mode",
  },
  "natlb-copies-not-restored": {
    role: "natlb",
    breaks: "on failover the servers send none of the copies they keep",
  },
} as const satisfies Record<string, SeededFault>;

export type SeededFaultName = keyof typeof SEEDED_FAULTS;

export function isSeededFault(name: string): name is SeededFaultName {
  return Object.hasOwn(SEEDED_FAULTS, name);
}

/**
 * The value of `--dut-option fault=...`: a comma-separated list of fault names (empty or
 * absent: none). Throws naming the option, the bad value and the known names.
 */
export function parseFaultOption(value: string | undefined): SeededFaultName[] {
  if (value === undefined || value.trim() === "") return [];
  const names = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !isSeededFault(n));
  if (unknown.length > 0)
    throw new Error(
      `--dut-option fault=${value}: unknown fault ${unknown.map((u) => `"${u}"`).join(", ")} ` +
        `(known: ${Object.keys(SEEDED_FAULTS).join(", ")})`,
    );
  return [...new Set(names)] as SeededFaultName[];
}

/** The faults of one role, for its agents' arguments. */
export function faultsFor(role: SeededFault["role"], names: readonly SeededFaultName[]): SeededFaultName[] {
  return names.filter((n) => SEEDED_FAULTS[n].role === role);
}
