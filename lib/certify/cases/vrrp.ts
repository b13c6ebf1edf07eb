import { defineCases } from "./define.ts";

/** The vrrp suite's cases; each names the catalogue requirements it verifies. */
export const vrrpCases = defineCases("vrrp", {
  "vrrp.adv-format": {
    title: "a lone router becomes master and sends RFC 5798 advertisements",
    requirements: ["VRRP-ADV-001", "VRRP-ADV-002", "VRRP-ADV-003", "VRRP-ADV-004", "VRRP-ADV-005"],
    needs: ["vrrp-v3"],
  },
  "vrrp.adv-vmac": {
    title: "advertisements come from the virtual MAC",
    requirements: ["VRRP-ADV-006"],
    needs: ["vrrp-v3"],
  },
  "vrrp.tmr-adver-interval": {
    title: "the master advertises every Advertisement_Interval",
    requirements: ["VRRP-TMR-001"],
    needs: ["vrrp-v3"],
  },
  "vrrp.arp-garp": {
    title: "a new master announces the virtual address by gratuitous ARP",
    requirements: ["VRRP-ARP-001"],
    needs: ["vrrp-v3"],
  },
  "vrrp.arp-master-replies": {
    title: "the master answers ARP for the virtual address with the virtual MAC",
    requirements: ["VRRP-ARP-002"],
    needs: ["vrrp-v3"],
  },
  "vrrp.fwd-master": {
    title: "the master forwards packets sent to the virtual MAC",
    requirements: ["VRRP-FWD-001"],
    needs: ["vrrp-v3"],
  },
  "vrrp.stm-backup-silent": {
    title: "a lower-priority router stays backup and silent under a live master",
    requirements: ["VRRP-STM-001"],
    needs: ["vrrp-v3"],
  },
  "vrrp.arp-backup-silent": {
    title: "a backup does not answer ARP for the virtual address",
    requirements: ["VRRP-ARP-003"],
    needs: ["vrrp-v3"],
  },
  "vrrp.fwd-backup-silent": {
    title: "a backup does not forward packets sent to the virtual MAC",
    requirements: ["VRRP-FWD-002"],
    needs: ["vrrp-v3"],
  },
  "vrrp.tmr-master-down": {
    title: "a backup takes over after Master_Down_Interval when the master falls silent",
    requirements: ["VRRP-TMR-002", "VRRP-TMR-003", "VRRP-STM-005"],
    needs: ["vrrp-v3"],
  },
  "vrrp.tmr-learn-interval": {
    title: "a backup adopts the master's advertisement interval",
    requirements: ["VRRP-TMR-004"],
    needs: ["vrrp-v3"],
  },
  "vrrp.pri0-backup": {
    title: "a backup that hears priority 0 takes over after Skew_Time",
    requirements: ["VRRP-PRI0-002", "VRRP-TMR-003"],
    needs: ["vrrp-v3"],
  },
  "vrrp.pri0-master": {
    title: "a master that hears priority 0 advertises at once",
    requirements: ["VRRP-PRI0-003"],
    needs: ["vrrp-v3"],
  },
  "vrrp.pri0-shutdown": {
    title: "a master that is shut down sends priority 0",
    requirements: ["VRRP-PRI0-001"],
    needs: ["vrrp-v3", "vrrp-graceful-stop"],
  },
  "vrrp.stm-master-yields-higher": {
    title: "a master yields to a higher priority",
    requirements: ["VRRP-STM-002"],
    needs: ["vrrp-v3"],
  },
  "vrrp.stm-master-yields-tie": {
    title: "a master yields to an equal priority from a greater primary address",
    requirements: ["VRRP-STM-003"],
    needs: ["vrrp-v3"],
  },
  "vrrp.stm-master-keeps-lower": {
    title: "a master keeps its role against a lower priority",
    requirements: ["VRRP-STM-004"],
    needs: ["vrrp-v3"],
  },
  "vrrp.pre-on": {
    title: "with preemption a higher-priority backup takes over from a lower master",
    requirements: ["VRRP-PRE-001"],
    needs: ["vrrp-v3"],
  },
  "vrrp.pre-off": {
    title: "without preemption a higher-priority backup leaves a lower master alone",
    requirements: ["VRRP-PRE-002"],
    needs: ["vrrp-v3", "vrrp-preempt-off"],
  },
  "vrrp.rx-ttl": {
    title: "advertisements with TTL 254 are ignored",
    requirements: ["VRRP-RX-001"],
    needs: ["vrrp-v3"],
  },
  "vrrp.rx-version": {
    title: "version 2 advertisements are ignored by a v3 router",
    requirements: ["VRRP-RX-002"],
    needs: ["vrrp-v3"],
  },
  "vrrp.rx-length": {
    title: "truncated advertisements are ignored",
    requirements: ["VRRP-RX-003"],
    needs: ["vrrp-v3"],
  },
  "vrrp.rx-checksum": {
    title: "advertisements with a bad checksum are ignored",
    requirements: ["VRRP-RX-004"],
    needs: ["vrrp-v3"],
  },
  "vrrp.rx-vrid": {
    title: "advertisements for another VRID are ignored",
    requirements: ["VRRP-RX-005"],
    needs: ["vrrp-v3"],
  },
  "vrrp.accept-mode-off": {
    title:
      "a master with Accept_Mode False drops packets addressed to the virtual address (UNH-IOL 2.5, VPP test_vrrp4_accept_mode_disabled)",
    requirements: ["VRRP-ACC-001"],
    needs: ["vrrp-v3", "vrrp-accept-mode"],
  },
  "vrrp.accept-mode-on": {
    title:
      "a master with Accept_Mode True answers packets addressed to the virtual address (UNH-IOL 2.5, VPP test_vrrp4_accept_mode_enabled)",
    requirements: ["VRRP-ACC-002"],
    needs: ["vrrp-v3", "vrrp-accept-mode"],
  },
  "vrrp.rx-interval-v2": {
    title: "a VRRPv2 router ignores advertisements with another Adver Int",
    requirements: ["VRRP-RX-006"],
    needs: ["vrrp-v2"],
  },
});
