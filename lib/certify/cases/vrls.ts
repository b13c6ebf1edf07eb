import { defineCases } from "./define.ts";

/**
 * The vrls suite's cases (seed 000). They drive a VRLS virtual router (the reference's or
 * a vendor's) through its adapter only; a device without a case's capability gets "not
 * applicable" for it. Cases the suite cannot drive yet are
 * skipped as "not yet available" with the reason (never passed).
 */

export const vrlsCases = defineCases("vrls", {
  "vrls.election": {
    title: "members elect one master by standard VRRP",
    requirements: ["VRLS-VRRP-001"],
    needs: ["vrls"],
  },
  "vrls.backup-response": {
    title: "a backup answers each advertisement (type 2)",
    requirements: ["VRLS-RESP-001"],
    needs: ["vrls"],
  },
  "vrls.backup-failure": {
    movesTraffic: true,
    title: "a dead backup is detected and its conditions reallocated",
    requirements: ["VRLS-RESP-002"],
    needs: ["vrls", "fault-crash"],
  },
  "vrls.discovery-icmp": {
    title: "a new master learns the end systems with ICMP 15/16",
    requirements: ["VRLS-DISC-001"],
    needs: ["vrls"],
  },
  "vrls.discovery-passive": {
    title: "silent end systems are learned from their traffic",
    requirements: ["VRLS-DISC-002"],
    needs: ["vrls"],
  },
  "vrls.initial-allocation": {
    title:
      "the end systems spread evenly over the members (Fig. 7: six end systems, two routers, three each)",
    requirements: ["VRLS-ALLOC-001"],
    needs: ["vrls"],
  },
  "vrls.allocation-exchange": {
    title: "allocation (type 3) is confirmed (type 4)",
    requirements: ["VRLS-ALLOC-002"],
    needs: ["vrls"],
  },
  "vrls.sharing-steady": {
    movesTraffic: true,
    title: "each packet is forwarded once, by its router in charge",
    requirements: ["VRLS-ALLOC-003"],
    needs: ["vrls"],
  },
  "vrls.handoff-timer": {
    movesTraffic: true,
    title: "timer-mode hand-off: the new owner waits the configured delay (on its wire), no duplicates",
    requirements: ["VRLS-HANDOFF-TMR-001"],
    needs: ["vrls", "vrls-timer"],
  },
  "vrls.handoff-seqnum": {
    movesTraffic: true,
    title: "sequence-number hand-off: TCP neither lost nor duplicated",
    requirements: ["VRLS-HANDOFF-SEQ-001"],
    needs: ["vrls", "vrls-sequence-number"],
  },
  "vrls.handoff-exactly-once": {
    movesTraffic: true,
    title: "exactly-once hand-off: UDP neither lost nor duplicated",
    requirements: ["VRLS-HANDOFF-EO-001", "VRLS-HANDOFF-EO-002"],
    needs: ["vrls", "vrls-exactly-once"],
  },
  "vrls.review-backup": {
    movesTraffic: true,
    title: "a loaded backup requests a review (types 6, 7, 8)",
    requirements: ["VRLS-REVIEW-001", "VRLS-REVIEW-002"],
    needs: ["vrls", "vrls-review"],
  },
  "vrls.reallocation-by-rate": {
    movesTraffic: true,
    title: "reallocation by flow rate, biggest first",
    requirements: ["VRLS-REVIEW-003"],
    needs: ["vrls", "vrls-review"],
  },
  "vrls.review-holddown": {
    movesTraffic: true,
    title: "no review within the hold-down period",
    requirements: ["VRLS-REVIEW-004"],
    needs: ["vrls", "vrls-review"],
  },
  "vrls.review-master": {
    movesTraffic: true,
    title: "a loaded master starts a review itself",
    requirements: ["VRLS-REVIEW-005"],
    needs: ["vrls", "vrls-review"],
  },
  "vrls.review-exactly-once": {
    movesTraffic: true,
    title: "review reallocations under load: nothing forwarded twice (exactly-once)",
    requirements: ["VRLS-HANDOFF-EO-001"],
    needs: ["vrls", "vrls-review", "vrls-exactly-once"],
  },
  "vrls.master-failure": {
    movesTraffic: true,
    title: "a new master rebuilds the allocation after a master failure",
    requirements: ["VRLS-FAIL-001"],
    needs: ["vrls", "fault-crash"],
  },
  "vrls.substitution": {
    movesTraffic: true,
    title:
      "a substitution server discovers and allocates; the master records without responding, the server transfers the backup's responses (Fig. 14, 15 P20-P26)",
    requirements: ["VRLS-SUB-001"],
    needs: ["vrls", "vrls-substitution"],
  },
  "vrls.substitution-review": {
    movesTraffic: true,
    title:
      "reviews go through the substitution server, which asks the end systems again before reallocating (Fig. 16 P30-P33)",
    requirements: ["VRLS-SUB-002"],
    needs: ["vrls", "vrls-substitution", "vrls-review"],
  },
  "vrls.substitution-failure": {
    movesTraffic: true,
    title: "the master takes over from a failed substitution server",
    requirements: ["VRLS-SUB-003"],
    needs: ["vrls", "vrls-substitution"],
  },
});
