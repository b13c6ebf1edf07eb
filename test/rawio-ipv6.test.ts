// VRRPv3 over IPv6 through the tandem-rawio addon's "vrrp6" socket (issue 16), against the
// real kernel: two scratch namespaces of their own run prefix joined by one veth pair with
// IPv6 link-local addresses only (no IPv4 at all: the IPv6-only RawIo needs none). A sends
// whole frames (the reference's advertisement, vrrp6.ts) with sendFrame; B's raw IPv6
// socket of next header 112, joined to ff02::12, hands them over with the IPv6 header
// rebuilt from what the kernel reported (hop limit, source, destination, traffic class), so
// the receive checks judge what arrived: byte-identical to what was sent, a hop limit of
// 254 kept as 254 (and rejected by validateVrrp6Packet), a group B did not join never
// delivered, the sender never hearing itself.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { teardownPrefix } from "../lib/lab/teardown.ts";
import { waitUntil } from "../lib/remote/wait.ts";
import { RawIo } from "../lib/roles/vrls/rawio.ts";
import { vrrp6AdvertisementFrame } from "../lib/roles/vrls/vrrp6.ts";
import { decodeEthernet, ETHERTYPE, encodeEthernet } from "../lib/wire/ethernet.ts";
import { decodeIpv6, encodeIpv6, IPV6_NEXT_HEADER, ipv6MulticastMac } from "../lib/wire/ipv6.ts";
import { encodeVrrp } from "../lib/wire/vrrp.ts";
import { validateVrrp6Packet } from "../lib/wire/vrrp-validate.ts";

const prefix = newRunPrefix();
const nsA = namespaceName(prefix, "r6a");
const nsB = namespaceName(prefix, "r6b");
const A = "fe80::a";
const B = "fe80::b";
const B_MAC = "02:00:00:00:06:0b";
const opened: RawIo[] = [];
let a: RawIo;
let b: RawIo;
const atA: Buffer[] = [];
const atB: Buffer[] = [];

function ipPayload(frame: Uint8Array): Buffer {
  const eth = decodeEthernet(frame);
  if (!eth.ok) throw new Error(eth.error.reason);
  return Buffer.from(eth.value.payload);
}

const VIPS = ["fe80::51", "2001:db8:51::1"];

/** A VRRPv3 advertisement frame to `dst` with the given hop limit (the reference's builder makes 255 to ff02::12). */
function crafted(dst: string, dstMac: string, hopLimit: number, priority: number): Uint8Array {
  const vrrp = encodeVrrp(
    {
      version: 3,
      type: 1,
      vrid: 51,
      priority,
      maxAdverIntCs: 100,
      addresses: VIPS,
      extension: new Uint8Array(0),
    },
    { src: A, dst },
  );
  const ip = encodeIpv6({ src: A, dst, nextHeader: IPV6_NEXT_HEADER.vrrp, hopLimit, payload: vrrp });
  return encodeEthernet({ dst: dstMac, src: "00:00:5e:00:02:33", etherType: ETHERTYPE.ipv6, payload: ip });
}

beforeAll(async () => {
  await run(["ip", "netns", "add", nsA]);
  await run(["ip", "netns", "add", nsB]);
  await run(["ip", "-n", nsA, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", nsB]);
  for (const [ns, addr] of [
    [nsA, A],
    [nsB, B],
  ] as const) {
    for (const k of ["all", "default"]) {
      await run(["ip", "netns", "exec", ns, "sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=0`]);
      await run(["ip", "netns", "exec", ns, "sysctl", "-qw", `net.ipv6.conf.${k}.accept_dad=0`]);
    }
    await run(["ip", "-n", ns, "link", "set", "eth0", "addrgenmode", "none"]);
    await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    await run(["ip", "-n", ns, "-6", "addr", "add", `${addr}/64`, "dev", "eth0", "nodad"]);
  }
  await run(["ip", "-n", nsB, "link", "set", "eth0", "address", B_MAC]);
  a = await RawIo.open({
    interface: "eth0",
    listen: ["vrrp6"],
    ipv4: false,
    netns: nsA,
    onVrrp6: (p) => atA.push(p),
  });
  b = await RawIo.open({
    interface: "eth0",
    listen: ["vrrp6"],
    ipv4: false,
    netns: nsB,
    onVrrp6: (p) => atB.push(p),
  });
  opened.push(a, b);
});

afterAll(async () => {
  for (const o of opened) o.close();
  await teardownPrefix(prefix);
});

describe("RawIo vrrp6: VRRPv3 over IPv6 on real packets (two namespaces, one veth, no IPv4)", () => {
  it("opens without an IPv4 address; sendIp is refused and counted", () => {
    expect(b.address).toBe("");
    expect(a.sendIp(new Uint8Array(20))).toBe(false);
    expect(a.stats().lastSendError).toMatch(/no IPv4 socket/);
  });

  it("the reference's advertisement (virtual MAC, link-local source, ff02::12, hop limit 255) arrives byte-identical and passes the RFC 9568 7.1 checks; not back at the sender", async () => {
    const frame = vrrp6AdvertisementFrame({
      vrid: 51,
      priority: 200,
      advertIntervalCs: 100,
      src: A,
      addresses: VIPS,
    });
    const before = atB.length;
    expect(a.sendFrame(frame)).toBe(true);
    await waitUntil(() => atB.length > before, { timeoutMs: 5000, what: "the advertisement at B" });
    const got = atB.slice(before);
    expect(got.map((p) => p.toString("hex"))).toEqual([ipPayload(frame).toString("hex")]);
    const v = validateVrrp6Packet(got[0]!, { version: 3, vrids: [51] });
    expect(v.ok && { src: v.ip.src, dst: v.ip.dst, hop: v.ip.hopLimit, tc: v.ip.trafficClass }).toEqual({
      src: A,
      dst: "ff02::12",
      hop: 255,
      tc: 0xc0,
    });
    expect(atA).toHaveLength(0);
    expect(b.stats().sockets.vrrp6?.received).toBe(before + 1);
  });

  it("hop limit 254 arrives as 254 and is rejected; unicast to B's link-local arrives; a group B did not join (ff02::13) does not", async () => {
    const before = atB.length;
    expect(a.sendFrame(crafted("ff02::13", ipv6MulticastMac("ff02::13"), 255, 10))).toBe(true);
    expect(a.sendFrame(crafted("ff02::12", ipv6MulticastMac("ff02::12"), 254, 11))).toBe(true);
    expect(a.sendFrame(crafted(B, B_MAC, 255, 12))).toBe(true);
    await waitUntil(() => atB.length >= before + 2, { timeoutMs: 5000, what: "two packets at B" });
    // The unicast one left last: once it is here, the ff02::13 one (sent first) had its chance.
    const got = atB.slice(before).map((p) => {
      const ip = decodeIpv6(p);
      if (!ip.ok) throw new Error(ip.error.reason);
      const v = validateVrrp6Packet(p, { version: 3, vrids: [51] });
      return { dst: ip.value.dst, hop: ip.value.hopLimit, verdict: v.ok ? "ok" : v.reason };
    });
    expect(got).toEqual([
      { dst: "ff02::12", hop: 254, verdict: "hop-limit-not-255" },
      { dst: B, hop: 255, verdict: "ok" },
    ]);
  });
});
