import { describe, expect, it } from "vitest";
import {
  decodeEthernet,
  decodeIpv6,
  ETHERTYPE,
  internetChecksum,
  pseudoHeaderSum6,
  validateVrrp6Packet,
  validateVrrpPacket,
  vrrpIpv6SenderProblems,
} from "../lib/wire/index.ts";
import { advertFrame, echoRequestFrame, udpFrame } from "../suites/vrrp/frames.ts";

// Issue 16: the frames the vrrp suite's tester sends on the IPv6 variant are what the
// receive checks of RFC 9568 7.1 expect (valid ones pass, each malformed one fails for its
// one reason), and its IPv4 frames are unchanged by the family switch.

const V6 = {
  srcMac: "02:00:00:00:02:0a",
  srcIp: "fe80::ffff:ffff:ffff:a",
  vrid: 7,
  priority: 200,
  addresses: ["fe80::7", "2001:db8:2::1"],
  interval: 100,
};
const V4 = { ...V6, srcIp: "198.18.2.10", addresses: ["198.18.2.1"] };
const rx = { version: 3 as const, vrids: [7] };

function ip6Of(frame: Uint8Array): Uint8Array {
  const eth = decodeEthernet(frame);
  if (!eth.ok) throw new Error(eth.error.reason);
  expect(eth.value.etherType).toBe(ETHERTYPE.ipv6);
  return eth.value.payload;
}

function ip4Of(frame: Uint8Array): Uint8Array {
  const eth = decodeEthernet(frame);
  if (!eth.ok) throw new Error(eth.error.reason);
  expect(eth.value.etherType).toBe(ETHERTYPE.ipv4);
  return eth.value.payload;
}

describe("vrrp suite frames over IPv6", () => {
  it("a valid tester advertisement passes every receive check and the sender rules", () => {
    const frame = advertFrame(V6);
    const eth = decodeEthernet(frame);
    expect(eth.ok && eth.value.dst).toBe("33:33:00:00:00:12");
    const v = validateVrrp6Packet(ip6Of(frame), rx);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.ip.dst).toBe("ff02::12");
    expect(v.vrrp.addresses).toEqual(V6.addresses);
    expect(vrrpIpv6SenderProblems(v.ip, v.vrrp)).toEqual([]);
  });

  it("each malformed advertisement fails for its own reason", () => {
    const reasons = [
      advertFrame({ ...V6, ttl: 254 }),
      advertFrame({ ...V6, version: 2, interval: 1 }),
      advertFrame({ ...V6, corrupt: "truncate" }),
      advertFrame({ ...V6, corrupt: "checksum" }),
      advertFrame({ ...V6, vrid: 8 }),
    ].map((f) => {
      const v = validateVrrp6Packet(ip6Of(f), rx);
      return v.ok ? "accepted" : v.reason;
    });
    expect(reasons).toEqual([
      "hop-limit-not-255",
      "bad-version",
      "bad-length",
      "bad-checksum",
      "unknown-vrid",
    ]);
  });

  it("UDP and ICMPv6 echo carry valid checksums over the IPv6 pseudo-header", () => {
    for (const frame of [
      udpFrame({
        srcMac: V6.srcMac,
        dstMac: "00:00:5e:00:02:07",
        srcIp: "2001:db8:2::a",
        dstIp: "2001:db8:102::a",
        dstPort: 9999,
        seq: 3,
      }),
      echoRequestFrame({
        srcMac: V6.srcMac,
        dstMac: "00:00:5e:00:02:07",
        srcIp: "2001:db8:2::a",
        dstIp: "2001:db8:2::1",
        identifier: 0x7a7a,
        sequence: 1,
      }),
    ]) {
      const ip = decodeIpv6(ip6Of(frame));
      expect(ip.ok).toBe(true);
      if (!ip.ok) continue;
      const p = ip.value;
      expect(
        internetChecksum(
          p.payload,
          0,
          p.payload.length,
          pseudoHeaderSum6(p.src, p.dst, p.nextHeader, p.payload.length),
        ),
      ).toBe(0);
    }
  });
});

describe("vrrp suite frames over IPv4 (unchanged by the family switch)", () => {
  it("valid, then each malformed advertisement fails for its own reason", () => {
    const reasons = [
      advertFrame(V4),
      advertFrame({ ...V4, ttl: 254 }),
      advertFrame({ ...V4, version: 2, interval: 1 }),
      advertFrame({ ...V4, corrupt: "truncate" }),
      advertFrame({ ...V4, corrupt: "checksum" }),
      advertFrame({ ...V4, vrid: 8 }),
    ].map((f) => {
      const v = validateVrrpPacket(ip4Of(f), rx);
      return v.ok ? "accepted" : v.reason;
    });
    expect(reasons).toEqual([
      "accepted",
      "ttl-not-255",
      "bad-version",
      "bad-length",
      "bad-checksum",
      "unknown-vrid",
    ]);
  });
});
