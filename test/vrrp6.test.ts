// The pure parts of the reference's VRRPv3 over IPv6 (lib/roles/vrls/vrrp6.ts) and the
// family-neutral state machine's IPv6 election (vrrp-state.ts): frames decoded back with
// the lib/wire codecs and judged by the same receive and sender checks the suite uses.
import { describe, expect, it } from "vitest";
import { compareAddresses, initialVrrpState, outranks, step } from "../lib/roles/vrls/vrrp-state.ts";
import {
  orderVirtualAddresses6,
  vrrp6AdvertisementFrame,
  vrrp6AdvertisementWithFaults,
  vrrp6GateRules,
  vrrp6GateScript,
  vrrp6GuardTable,
  vrrp6Mac,
  vrrp6OwnerTable,
  vrrp6TakeoverNas,
} from "../lib/roles/vrls/vrrp6.ts";
import { decodeEthernet, ETHERTYPE } from "../lib/wire/ethernet.ts";
import { decodeNeighborDiscovery, icmpv6ChecksumMatches, ndLinkLayerAddress } from "../lib/wire/icmpv6.ts";
import { decodeIpv6 } from "../lib/wire/ipv6.ts";
import { vrrpChecksum } from "../lib/wire/vrrp.ts";
import { validateVrrp6Packet, vrrpIpv6SenderProblems } from "../lib/wire/vrrp-validate.ts";

const LL = "fe80::2";
const VIPS = ["2001:db8:2::1/64", "fe80::7/64"];

function ipOf(frame: Uint8Array) {
  const eth = decodeEthernet(frame);
  if (!eth.ok) throw new Error(eth.error.reason);
  return eth.value;
}

describe("vrrp6: addresses", () => {
  it("puts link-local virtual addresses first and drops the prefix length", () => {
    expect(orderVirtualAddresses6(VIPS)).toEqual(["fe80::7", "2001:db8:2::1"]);
  });
  it("refuses a list without a link-local address, or with an IPv4 one", () => {
    expect(() => orderVirtualAddresses6(["2001:db8:2::1/64"])).toThrow(/link-local virtual address/);
    expect(() => orderVirtualAddresses6(["fe80::7", "198.18.2.1"])).toThrow(/not IPv6/);
  });
});

describe("vrrp6: the advertisement frame", () => {
  const frame = vrrp6AdvertisementFrame({
    vrid: 7,
    priority: 100,
    advertIntervalCs: 100,
    src: LL,
    addresses: orderVirtualAddresses6(VIPS),
  });

  it("is from the virtual MAC 00:00:5e:00:02:07 to 33:33:00:00:00:12, ethertype IPv6", () => {
    const eth = ipOf(frame);
    expect(vrrp6Mac(7)).toBe("00:00:5e:00:02:07");
    expect(eth.src).toBe("00:00:5e:00:02:07");
    expect(eth.dst).toBe("33:33:00:00:00:12");
    expect(eth.etherType).toBe(ETHERTYPE.ipv6);
  });

  it("passes the RFC 9568 7.1 receive checks and has no sender problem (link-local source, ff02::12, hop limit 255, link-local first)", () => {
    const v = validateVrrp6Packet(ipOf(frame).payload, { version: 3, vrids: [7] });
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.ip.hopLimit).toBe(255);
    expect(v.ip.src).toBe(LL);
    expect(v.ip.dst).toBe("ff02::12");
    expect(v.vrrp).toMatchObject({ version: 3, type: 1, vrid: 7, priority: 100, maxAdverIntCs: 100 });
    expect(v.vrrp.addresses).toEqual(["fe80::7", "2001:db8:2::1"]);
    expect(vrrpIpv6SenderProblems(v.ip, v.vrrp)).toEqual([]);
  });

  it("a changed byte breaks the checksum over the IPv6 pseudo-header (the source is covered)", () => {
    const other = vrrp6AdvertisementFrame({
      vrid: 7,
      priority: 100,
      advertIntervalCs: 100,
      src: "fe80::3",
      addresses: orderVirtualAddresses6(VIPS),
    });
    const ip = decodeIpv6(ipOf(other).payload);
    if (!ip.ok) throw new Error(ip.error.reason);
    // The same VRRP message claimed from fe80::2: only the pseudo-header differs.
    const bytes = Uint8Array.from(ipOf(other).payload);
    bytes.set(Uint8Array.from(ipOf(frame).payload).subarray(8, 24), 8);
    const v = validateVrrp6Packet(bytes, { version: 3, vrids: [7] });
    expect(v.ok ? "accepted" : v.reason).toBe("bad-checksum");
  });
});

describe("vrrp6: unsolicited Neighbor Advertisements on takeover", () => {
  it("one per virtual address, from the link-local virtual address to ff02::1, hop limit 255, R and O set, S clear, target link-layer = virtual MAC", () => {
    const nas = vrrp6TakeoverNas(7, VIPS).map((f) => {
      const eth = ipOf(f);
      const ip = decodeIpv6(eth.payload);
      if (!ip.ok) throw new Error(ip.error.reason);
      const nd = decodeNeighborDiscovery(ip.value.payload);
      if (!nd.ok || nd.value.type !== 136) throw new Error("not an NA");
      expect(icmpv6ChecksumMatches(ip.value.payload, ip.value.src, ip.value.dst)).toBe(true);
      return {
        mac: eth.src,
        src: ip.value.src,
        dst: ip.value.dst,
        hop: ip.value.hopLimit,
        target: nd.value.target,
        flags: [nd.value.router, nd.value.solicited, nd.value.override],
        tll: ndLinkLayerAddress(nd.value, 2),
      };
    });
    const common = {
      mac: "00:00:5e:00:02:07",
      src: "fe80::7",
      dst: "ff02::1",
      hop: 255,
      flags: [true, false, true],
      tll: "00:00:5e:00:02:07",
    };
    expect(nas).toEqual([
      { ...common, target: "fe80::7" },
      { ...common, target: "2001:db8:2::1" },
    ]);
  });
});

describe("vrrp6: nftables", () => {
  it("the gate forwards from the macvlan only as master", () => {
    expect(vrrp6GateRules("vrrp6r-7", "master")[1]).toMatch(/meta mark set mark or 0x20000 accept$/);
    expect(vrrp6GateRules("vrrp6r-7", "backup")[1]).toMatch(/drop$/);
    expect(vrrp6GateRules("vrrp6r-7", "initialize")[1]).toMatch(/drop$/);
    expect(vrrp6GateScript("vrrp6r_7", "vrrp6r-7", "backup")).toBe(
      'flush chain ip6 vrrp6r_7 gate\nadd rule ip6 vrrp6r_7 gate iifname != "vrrp6r-7" accept\nadd rule ip6 vrrp6r_7 gate counter name "backup_drops" drop\n',
    );
  });
  it("the guard (not owned) drops unadmitted packets from the macvlan in forward and input; the owned table admits input while it lives", () => {
    const g = vrrp6GuardTable("vrrp6r-7");
    expect(g.match(/iifname "vrrp6r-7" meta mark and 0x20000 == 0 counter drop/g)).toHaveLength(2);
    expect(g).toContain("hook forward priority -150");
    expect(g).toContain("hook input priority -150");
    expect(g).not.toContain("flags owner");
    const t = vrrp6OwnerTable({ macvlan: "vrrp6r-7", role: "backup", addresses: VIPS, acceptMode: true });
    expect(t).toContain(
      'hook input priority -250; policy accept;\n  iifname "vrrp6r-7" meta mark set mark or 0x20000',
    );
  });
  it("Accept_Mode False drops local delivery to the virtual addresses but lets Neighbor Discovery through", () => {
    const off = vrrp6OwnerTable({ macvlan: "m", role: "backup", addresses: VIPS, acceptMode: false });
    expect(off).toContain(
      "ip6 daddr { 2001:db8:2::1, fe80::7 } icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept",
    );
    expect(off).toContain('ip6 daddr { 2001:db8:2::1, fe80::7 } counter name "accept_mode_drops" drop');
    expect(off.startsWith("flags owner;")).toBe(true);
    expect(
      vrrp6OwnerTable({ macvlan: "m", role: "backup", addresses: VIPS, acceptMode: true }),
    ).not.toContain("accept_mode");
  });
});

describe("vrrp-state: the master election over IPv6 (RFC 9568 6.4.3)", () => {
  it("compares IPv6 addresses as 128-bit numbers, any spelling", () => {
    expect(compareAddresses("fe80::ffff:ffff:ffff:a", "fe80::2")).toBe(1);
    expect(compareAddresses("fe80::2", "FE80:0:0::2")).toBe(0);
    expect(compareAddresses("fe80::ff:fe00:202", "fe80::1:0:0:0")).toBe(-1);
    expect(compareAddresses("198.18.2.10", "198.18.2.2")).toBe(1);
    expect(() => compareAddresses("fe80::2", "198.18.2.2")).toThrow(/cannot compare/);
    expect(outranks(100, "fe80::ffff:ffff:ffff:a", 100, "fe80::2")).toBe(true);
    expect(outranks(100, "fe80::2", 100, "fe80::ffff:ffff:ffff:a")).toBe(false);
  });

  it("a master yields to an equal priority from a greater link-local address and keeps it against a smaller one", () => {
    const params = {
      vrid: 7,
      priority: 100,
      advertIntervalCs: 100,
      preempt: true,
      primaryAddress: "fe80::2",
      virtualAddresses: ["fe80::7", "2001:db8:2::1"],
    };
    const master = step(initialVrrpState({ ...params, priority: 255 }), { type: "startup", now: 0 }).state;
    const asMaster = { ...master, params };
    const tie = (from: string) =>
      step(asMaster, { type: "advertisement", now: 10, from, priority: 100, maxAdverIntCs: 100 }).state.name;
    expect(tie("fe80::ffff:ffff:ffff:a")).toBe("backup");
    expect(tie("fe80::1")).toBe("master");
  });
});

describe("vrrp6: the seeded sender faults on the advertisement", () => {
  const base = {
    vrid: 7,
    priority: 100,
    advertIntervalCs: 100,
    src: LL,
    addresses: orderVirtualAddresses6(VIPS),
    physicalMac: "02:00:00:00:02:02",
  };
  const judged = (...faults: string[]) => {
    const eth = ipOf(vrrp6AdvertisementWithFaults(base, new Set(faults)));
    const ip = decodeIpv6(eth.payload);
    if (!ip.ok) throw new Error(ip.error.reason);
    const v3 = validateVrrp6Packet(eth.payload, { version: 3, vrids: [7] });
    return { mac: eth.src, hop: ip.value.hopLimit, v3: v3.ok ? v3.vrrp : v3.reason };
  };
  it("none: the plain frame", () => {
    expect(vrrp6AdvertisementWithFaults(base, new Set())).toEqual(vrrp6AdvertisementFrame(base));
  });
  it("each fault breaks what it names and nothing else", () => {
    expect(judged("vrrp-adv-wrong-priority").v3).toMatchObject({ priority: 101, maxAdverIntCs: 100 });
    expect(judged("vrrp-adv-wrong-interval").v3).toMatchObject({ priority: 100, maxAdverIntCs: 200 });
    expect(judged("vrrp-adv-physical-mac").mac).toBe("02:00:00:00:02:02");
    expect(judged("vrrp-adv-ttl-254")).toMatchObject({ hop: 254, v3: "hop-limit-not-255" });
    expect(judged("vrrp-adv-bad-checksum").v3).toBe("bad-checksum");
    // Version 2 with a checksum that is right for the changed message: only the version is wrong.
    expect(judged("vrrp-adv-version-2").v3).toBe("bad-version");
    const eth = ipOf(vrrp6AdvertisementWithFaults(base, new Set(["vrrp-adv-version-2"])));
    const ip = decodeIpv6(eth.payload);
    if (!ip.ok) throw new Error(ip.error.reason);
    expect(ip.value.payload[0]).toBe(0x21);
    // The v3 checksum (IPv6 pseudo-header) of the changed message, as the IPv4 agent's fault sends it.
    const m = ip.value.payload;
    expect(vrrpChecksum(m, 3, { src: LL, dst: "ff02::12" })).toBe((m[6]! << 8) | m[7]!);
  });
});
