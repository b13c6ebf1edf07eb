import type { Link } from "tandem-netlink";
import { gratuitousArpFrame } from "../../wire/arp.ts";

/**
 * Gratuitous ARP (step 2 of a move: the new owner announces the VIP and the VIP's
 * internal address, so the upstream router and the servers send to it at once). The
 * frames are built by lib/wire and sent on the balancer's persistent AF_PACKET socket
 * (tandem-netlink `Link`): no process per announcement (a python sender per move cost
 * 50-100 ms; a persistent one still a pipe round trip through another process).
 */
export interface Announcement {
  ifname: string;
  mac: string;
  address: string;
}

export function sendGratuitousArp(link: Link, announcements: readonly Announcement[]): number {
  let sent = 0;
  for (const a of announcements) sent += link.sendFrames(a.ifname, [gratuitousArpFrame(a.mac, a.address)]);
  return sent;
}
