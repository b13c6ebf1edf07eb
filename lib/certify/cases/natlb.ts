import { defineCases } from "./define.ts";

/**
 * The natlb suite's cases (seed 002). A case the suite does not drive yet would be skipped
 * as "not yet available" with the reason (never passed); every case is driven now.
 */

export const natlbCases = defineCases("natlb", {
  "natlb.dnat": {
    movesTraffic: true,
    title: "destination NAT to a server of the VIP and back",
    requirements: ["NATLB-NAT-001"],
    needs: ["natlb"],
  },
  "natlb.fullnat": {
    movesTraffic: true,
    title: "full NAT through the balancer's internal address",
    requirements: ["NATLB-NAT-002"],
    needs: ["natlb", "natlb-full-nat"],
  },
  "natlb.conn-table": {
    movesTraffic: true,
    title: "access correspondence entries live as long as their connections",
    requirements: ["NATLB-TABLE-001"],
    needs: ["natlb"],
  },
  "natlb.unknown-vip": {
    title: "an address in neither mode is refused with an error",
    requirements: ["NATLB-MODE-001"],
    needs: ["natlb"],
  },
  "natlb.move": {
    movesTraffic: true,
    title: "a VIP moves in four steps without a reset or a lost packet",
    requirements: ["NATLB-MOVE-001", "NATLB-MOVE-002", "NATLB-MOVE-003", "NATLB-MOVE-004"],
    needs: ["natlb"],
  },
  "natlb.rebalance": {
    movesTraffic: true,
    title: "the control server moves VIPs toward the best assignment",
    requirements: ["NATLB-CTRL-001"],
    needs: ["natlb"],
  },
  "natlb.copy-keeping": {
    movesTraffic: true,
    title: "servers keep copies of their connections' entries",
    requirements: ["NATLB-FAIL-001"],
    needs: ["natlb", "natlb-copy-keeping"],
  },
  "natlb.failover": {
    movesTraffic: true,
    title: "a failed balancer's connections survive on another",
    requirements: ["NATLB-FAIL-002"],
    needs: ["natlb", "natlb-copy-keeping", "fault-crash"],
  },
  "natlb.failover-no-transition": {
    movesTraffic: true,
    title: "entries installed first make transition mode unnecessary",
    requirements: ["NATLB-FAIL-003"],
    needs: ["natlb", "natlb-copy-keeping", "natlb-failover-entries-first", "fault-crash"],
  },
});
