import { describe, expect, it } from "vitest";
import { namespacesOf, withLab } from "../lib/lab/index.ts";
import { parseTopologyText } from "../lib/topology/index.ts";

// Issue 16: IPv6 in the lab. Two IPv6 segments joined by a forwarding router, plus an
// IPv4-only host on the first segment that must keep IPv6 off.
const TOPOLOGY = `
lab: v6
addressPlan: { v4: 198.18.3.0/24, v6: 2001:db8::/32 }
segments:
  s1: { subnet: 198.18.3.0/24, subnet6: 2001:db8:0:1::/64 }
  s2: { subnet: 2001:db8:0:2::/64 }
hosts:
  a:
    interfaces: { eth0: { segment: s1, addresses: [198.18.3.1/24, 2001:db8:0:1::1/64, fe80::a/64], mac: "02:00:00:00:03:01" } }
    routes: [{ to: 2001:db8:0:2::/64, via: fe80::1, dev: eth0 }]
  r:
    forwarding: true
    interfaces:
      eth0: { segment: s1, addresses: [198.18.3.2/24, 2001:db8:0:1::2/64, fe80::1/64] }
      eth1: { segment: s2, addresses: [2001:db8:0:2::2/64] }
  b:
    interfaces: { eth0: { segment: s2, addresses: [2001:db8:0:2::1/64] } }
    routes: [{ to: default6, via: 2001:db8:0:2::2 }]
  c:
    interfaces: { eth0: { segment: s1, addresses: [198.18.3.3/24] } }
`;

describe("IPv6 in a virtual lab", () => {
  it("routes IPv6 across a forwarding router, link-local included, and keeps IPv6 off where not asked for", async () => {
    let prefix = "";
    await withLab(parseTopologyText(TOPOLOGY, "v6-inline.yaml"), async (lab) => {
      prefix = lab.prefix;
      // Addresses are usable at once: no DAD, so nothing is tentative right after bring-up.
      const addrs = await lab.host("a").exec(["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
      expect(addrs.stdout).toContain("inet6 2001:db8:0:1::1/64");
      expect(addrs.stdout).toContain("inet6 fe80::a/64");
      expect(addrs.stdout).not.toContain("tentative");
      // a -> b crosses r: a's route via r's link-local address, b's default route, r forwards.
      const ping = await lab
        .host("a")
        .exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "2001:db8:0:2::1"]);
      expect(ping.stdout).toMatch(/2 received/);
      const hops = await lab.host("b").exec(["ping", "-6", "-c", "1", "-W", "2", "2001:db8:0:1::1"]);
      expect(hops.stdout).toMatch(/ttl=63/); // one router on the way back: hop limit 64 - 1
      const ll = await lab.host("r").exec(["ping", "-6", "-c", "1", "-W", "2", "fe80::a%eth0"]);
      expect(ll.stdout).toMatch(/1 received/);
      // IPv4 still works beside it on the same segment.
      expect((await lab.host("c").exec(["ping", "-c", "1", "-W", "2", "198.18.3.1"])).code).toBe(0);
      // c asked for no IPv6: disabled, no address at all (not even link-local).
      const off = await lab
        .host("c")
        .exec(["sysctl", "-n", "net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.eth0.disable_ipv6"]);
      expect(off.stdout.split("\n").filter(Boolean)).toEqual(["1", "1"]);
      expect((await lab.host("c").exec(["ip", "-6", "-o", "addr"])).stdout.trim()).toBe("");
      const fwd = await lab.host("r").exec(["sysctl", "-n", "net.ipv6.conf.eth1.forwarding"]);
      expect(fwd.stdout.trim()).toBe("1");
    });
    expect(await namespacesOf(prefix)).toEqual([]);
  });
});
