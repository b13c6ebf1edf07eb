/**
 * Subnet configuration information (seed Fig. 9B): the end systems the master
 * learned, from ICMP information replies (type 16, seed Figs. 8A/8B) or
 * passively from the source addresses of packets it sees ("first it is assumed
 * that all addresses under the subnet address are allocated ... when a packet
 * actually arrives at the router, the existence of the end system is
 * determined"). Addresses outside the configured subnets, the virtual address
 * and the members' own addresses are ignored.
 */
import { type Cidr, cidrContains, parseCidr } from "../../topology/address.ts";

export type LearnedBy = "icmp-info" | "passive" | "static";

export interface EndSystem {
  address: string;
  /** The subnet (CIDR) it belongs to; for Fig. 7's remote subnet, the router (node) in front of it. */
  subnet: string;
  node: string | null;
  learnedBy: LearnedBy;
  firstSeen: number;
  lastSeen: number;
}

export interface SubnetSpec {
  cidr: string;
  /** The router (Fig. 7's router C, "node#") through which the subnet is reached, or null for the LAN. */
  via: string | null;
}

export class Discovery {
  private readonly systems = new Map<string, EndSystem>();
  private readonly subnets: { spec: SubnetSpec; cidr: Cidr }[];
  private readonly excluded: Set<string>;
  /** Addresses offered that were not ours to learn (diagnostics). */
  ignored = 0;

  constructor(subnets: readonly SubnetSpec[], excluded: Iterable<string>) {
    this.subnets = subnets.map((spec) => ({ spec, cidr: parseCidr(spec.cidr) }));
    this.excluded = new Set(excluded);
  }

  /** Records a sighting; returns true when the address is new. */
  learn(address: string, by: LearnedBy, now: number): boolean {
    const subnet = this.subnets.find((s) => cidrContains(s.cidr, address));
    const hostPart = subnet ? isNetworkOrBroadcast(address, subnet.cidr) : true;
    if (!subnet || hostPart || this.excluded.has(address)) {
      this.ignored++;
      return false;
    }
    const known = this.systems.get(address);
    if (known) {
      known.lastSeen = now;
      if (by === "icmp-info" && known.learnedBy === "passive") known.learnedBy = by;
      return false;
    }
    this.systems.set(address, {
      address,
      subnet: subnet.spec.cidr,
      node: subnet.spec.via,
      learnedBy: by,
      firstSeen: now,
      lastSeen: now,
    });
    return true;
  }

  /** Forgets end systems not seen for `maxAgeMs` (never the static ones); returns the forgotten addresses. */
  expire(now: number, maxAgeMs: number): string[] {
    const gone: string[] = [];
    for (const [a, s] of this.systems) {
      if (s.learnedBy !== "static" && now - s.lastSeen > maxAgeMs) {
        this.systems.delete(a);
        gone.push(a);
      }
    }
    return gone;
  }

  has(address: string): boolean {
    return this.systems.has(address);
  }

  list(): EndSystem[] {
    return [...this.systems.values()].map((s) => ({ ...s }));
  }

  get size(): number {
    return this.systems.size;
  }

  /** The configured subnets, for ICMP information requests (broadcast on each). */
  subnetSpecs(): SubnetSpec[] {
    return this.subnets.map((s) => s.spec);
  }
}

function isNetworkOrBroadcast(address: string, cidr: Cidr): boolean {
  if (cidr.prefix >= 31) return false;
  const parts = address.split(".").map(Number);
  const n =
    (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
  const hostMask = (2 ** (32 - cidr.prefix) - 1) >>> 0;
  return (n & hostMask) === 0 || (n & hostMask) === hostMask;
}
