import { describe, expect, it } from "vitest";
import {
  canonicalIpv6,
  decodeEthernet,
  decodeIpv6,
  decodeNeighborDiscovery,
  decodeVrrp,
  ETHERTYPE,
  encodeIpv6,
  encodeVrrp,
  expectOk,
  icmpv6ChecksumMatches,
  ipv6MulticastMac,
  ndLinkLayerAddress,
  neighborSolicitationFrame,
  solicitedNodeMulticast,
  unsolicitedNaFrame,
  type Vrrp3Packet,
  validateVrrp6Packet,
  virtualMac,
  vrrpChecksumMatches,
  vrrpIpv6SenderProblems,
} from "../lib/wire/index.ts";

const LL = "fe80::200:5eff:fe00:207";
const advert = (over: Partial<Vrrp3Packet> = {}): Vrrp3Packet => ({
  version: 3,
  type: 1,
  vrid: 7,
  priority: 100,
  maxAdverIntCs: 100,
  addresses: ["fe80::7", "2001:db8:2::1"],
  family: 6,
  extension: new Uint8Array(0),
  ...over,
});
function packet(
  over: Partial<Vrrp3Packet> = {},
  ip: { src?: string; dst?: string; hopLimit?: number; nextHeader?: number } = {},
) {
  const src = ip.src ?? LL;
  const dst = ip.dst ?? "ff02::12";
  return encodeIpv6({
    src,
    dst,
    hopLimit: ip.hopLimit ?? 255,
    nextHeader: ip.nextHeader ?? 112,
    payload: encodeVrrp(advert(over), { src, dst }),
  });
}
const config = { version: 3 as const, vrids: [7] };

describe("IPv6 addresses and helpers", () => {
  it("prints RFC 5952 canonical text and derives multicast groups and MACs", () => {
    expect(canonicalIpv6("2001:0DB8:0000:0000:0001:0000:0000:0001")).toBe("2001:db8::1:0:0:1");
    expect(canonicalIpv6("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1"); // first of equal runs
    expect(canonicalIpv6("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1"); // a single 0 is not "::"
    expect(canonicalIpv6("::ffff:198.18.0.1")).toBe("::ffff:c612:1");
    expect(canonicalIpv6("::")).toBe("::");
    expect(() => canonicalIpv6("2001:db8:::1")).toThrow(/invalid IPv6/);
    expect(solicitedNodeMulticast("2001:db8::12:3456")).toBe("ff02::1:ff12:3456");
    expect(ipv6MulticastMac("ff02::12")).toBe("33:33:00:00:00:12");
    expect(virtualMac(7, 6)).toBe("00:00:5e:00:02:07");
    expect(virtualMac(7)).toBe("00:00:5e:00:01:07");
  });

  it("decodes the IPv6 header and rejects a payload length beyond the bytes", () => {
    const bytes = encodeIpv6({
      src: "2001:db8::1",
      dst: "2001:db8::2",
      nextHeader: 17,
      trafficClass: 0xb8,
      flowLabel: 0x12345,
      payload: new Uint8Array(10),
    });
    expect(expectOk(decodeIpv6(bytes))).toMatchObject({
      trafficClass: 0xb8,
      flowLabel: 0x12345,
      payloadLength: 10,
      hopLimit: 64,
    });
    const short = decodeIpv6(bytes.slice(0, 45));
    expect(short.ok).toBe(false);
    if (!short.ok) expect(short.error).toMatchObject({ offset: 4 });
  });
});

describe("VRRPv3 over IPv6 (RFC 9568)", () => {
  it("carries 16-byte addresses and a checksum over the IPv6 pseudo-header", () => {
    const ip = expectOk(decodeIpv6(packet()));
    const vrrp = expectOk(decodeVrrp(ip.payload, 6));
    expect(vrrp.addresses).toEqual(["fe80::7", "2001:db8:2::1"]);
    expect(vrrp.length).toBe(8 + 2 * 16);
    expect(vrrpChecksumMatches(ip.payload, { src: ip.src, dst: ip.dst })).toBe(true);
    // The same message is not valid for another source (the pseudo-header is covered) ...
    expect(vrrpChecksumMatches(ip.payload, { src: "fe80::1", dst: ip.dst })).toBe(false);
    // ... and read as IPv4 it is a different list: the family is not in the message.
    expect(expectOk(decodeVrrp(ip.payload, 4)).addresses).toHaveLength(2);
    expect(decodeVrrp(ip.payload.slice(0, 30), 6).ok).toBe(false);
    expect(vrrpIpv6SenderProblems(ip, vrrp)).toEqual([]);
  });

  it("receive checks name the exact reason", () => {
    const reason = (bytes: Uint8Array, c = config) => {
      const r = validateVrrp6Packet(bytes, c);
      return r.ok ? "ok" : r.reason;
    };
    expect(reason(packet())).toBe("ok");
    expect(reason(packet({}, { hopLimit: 254 }))).toBe("hop-limit-not-255");
    expect(reason(packet({}, { nextHeader: 58 }))).toBe("not-vrrp");
    expect(reason(packet({ vrid: 8 }))).toBe("unknown-vrid");
    expect(reason(packet({ type: 2 }))).toBe("unknown-type");
    expect(reason(packet(), { ...config, version: 2 as 3 })).toBe("bad-version");
    const bad = packet();
    bad[40 + 7]! ^= 1;
    expect(reason(bad)).toBe("bad-checksum");
    const truncated = packet().slice(0, 40 + 20);
    truncated[5] = 20; // payload length says 20: the second address is cut
    expect(reason(truncated)).toBe("bad-length");
    expect(reason(new Uint8Array(10))).toBe("not-ipv6");
  });

  it("sender checks: link-local source, ff02::12, hop limit, first address link-local", () => {
    const bytes = packet(
      { addresses: ["2001:db8:2::1"] },
      { src: "2001:db8:2::5", dst: "ff02::1", hopLimit: 64 },
    );
    const ip = expectOk(decodeIpv6(bytes));
    const problems = vrrpIpv6SenderProblems(ip, expectOk(decodeVrrp(ip.payload, 6)));
    expect(problems).toHaveLength(4);
    expect(problems.join("\n")).toMatch(
      /not link-local.*\n.*not ff02::12.*\n.*hop limit 64.*\n.*first address 2001:db8:2::1/,
    );
  });

  it("refuses VRRPv2 over IPv6 both ways", () => {
    expect(() =>
      encodeVrrp({
        version: 2,
        type: 1,
        vrid: 1,
        priority: 1,
        addresses: ["fe80::1"],
        authType: 0,
        adverIntSeconds: 1,
        authData: new Uint8Array(8),
        extension: new Uint8Array(0),
      }),
    ).toThrow(/IPv4 only/);
    expect(decodeVrrp(Uint8Array.from([0x21, 1, 1, 0, 0, 1, 0, 0]), 6).ok).toBe(false);
  });
});

describe("Neighbor Discovery frames", () => {
  it("an unsolicited NA: all-nodes, hop limit 255, R and O set, S clear, target link-layer = virtual MAC", () => {
    const frame = unsolicitedNaFrame({ mac: virtualMac(7, 6), src: "fe80::7", target: "2001:db8:2::1" });
    const eth = expectOk(decodeEthernet(frame));
    expect(eth).toMatchObject({
      dst: "33:33:00:00:00:01",
      src: "00:00:5e:00:02:07",
      etherType: ETHERTYPE.ipv6,
    });
    const ip = expectOk(decodeIpv6(eth.payload));
    expect(ip).toMatchObject({ src: "fe80::7", dst: "ff02::1", hopLimit: 255, nextHeader: 58 });
    expect(icmpv6ChecksumMatches(ip.payload, ip.src, ip.dst)).toBe(true);
    const na = expectOk(decodeNeighborDiscovery(ip.payload));
    expect(na).toMatchObject({
      type: 136,
      code: 0,
      router: true,
      solicited: false,
      override: true,
      target: "2001:db8:2::1",
    });
    expect(ndLinkLayerAddress(na, 2)).toBe("00:00:5e:00:02:07");
  });

  it("an NS goes to the target's solicited-node group with the source link-layer option", () => {
    const frame = neighborSolicitationFrame({
      mac: "02:00:00:00:02:0a",
      src: "fe80::a",
      target: "2001:db8:2::1",
    });
    const eth = expectOk(decodeEthernet(frame));
    expect(eth.dst).toBe("33:33:ff:00:00:01");
    const ip = expectOk(decodeIpv6(eth.payload));
    expect(ip.dst).toBe("ff02::1:ff00:1");
    const ns = expectOk(decodeNeighborDiscovery(ip.payload));
    expect(ns).toMatchObject({ type: 135, target: "2001:db8:2::1" });
    expect(ndLinkLayerAddress(ns, 1)).toBe("02:00:00:00:02:0a");
    // An option of length 0 must be discarded (RFC 4861 4.6), not looped on.
    const zero = ip.payload.slice();
    zero[25] = 0;
    expect(decodeNeighborDiscovery(zero)).toMatchObject({ ok: false, error: { offset: 25 } });
  });
});
