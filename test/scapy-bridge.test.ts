import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withLab } from "../lib/lab/index.ts";
import {
  ScapyBridge,
  ScapyBridgeError,
  ScapyBridgeTimeoutError,
  type ScapyDecodedLayer,
} from "../lib/scapy-bridge/bridge.ts";
import { type ArpPacket, decodeArp, encodeArp, gratuitousArpFrame } from "../lib/wire/arp.ts";
import { decodeEthernet, ETHERTYPE, encodeEthernet } from "../lib/wire/ethernet.ts";
import { decodeIcmp, encodeIcmp } from "../lib/wire/icmp.ts";
import {
  decodeNeighborDiscovery,
  icmpv6ChecksumMatches,
  ndLinkLayerAddress,
  neighborSolicitationFrame,
  unsolicitedNaFrame,
} from "../lib/wire/icmpv6.ts";
import { decodeIpv4, encodeIpv4 } from "../lib/wire/ipv4.ts";
import { decodeIpv6, encodeIpv6, solicitedNodeMulticast } from "../lib/wire/ipv6.ts";
import { ipv4Address, ipv6Address, linkLocalIpv6, macAddress, u8, u16 } from "../lib/wire/registry.ts";
import { expectOk } from "../lib/wire/result.ts";
import {
  decodeVrrp,
  encodeVrrp,
  type Vrrp2Packet,
  type Vrrp3Packet,
  vrrpChecksumMatches,
} from "../lib/wire/vrrp.ts";
import { validateVrrp6Packet, vrrpIpv6SenderProblems } from "../lib/wire/vrrp-validate.ts";

// Cross-checks lib/wire against an independent decoder: Debian's python3-scapy, through the bridge.

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const fields = (layers: ScapyDecodedLayer[], name: string) => {
  const l = layers.find((x) => x.layer === name);
  if (!l) throw new Error(`scapy found no ${name} layer in ${layers.map((x) => x.layer).join("/")}`);
  return l.fields;
};
const SAMPLES = 25;

const vrrp3Values = fc.record({
  vrid: fc.integer({ min: 1, max: 255 }),
  priority: u8,
  maxAdverIntCs: fc.integer({ min: 1, max: 4095 }),
  addresses: fc.array(ipv4Address, { minLength: 1, maxLength: 8 }),
  src: ipv4Address,
});
const vrrp3v6Values = fc.record({
  vrid: fc.integer({ min: 1, max: 255 }),
  priority: u8,
  maxAdverIntCs: fc.integer({ min: 1, max: 4095 }),
  addresses: fc
    .tuple(linkLocalIpv6, fc.array(ipv6Address, { maxLength: 5 }))
    .map(([ll, rest]) => [ll, ...rest]),
  src: linkLocalIpv6,
});
const ndValues = fc.record({
  kind: fc.constantFrom("ns" as const, "na" as const),
  mac: macAddress,
  src: linkLocalIpv6,
  target: ipv6Address,
  router: fc.boolean(),
});
const vrrp2Values = fc.record({
  vrid: fc.integer({ min: 1, max: 255 }),
  priority: u8,
  adverIntSeconds: fc.integer({ min: 1, max: 255 }),
  authType: fc.constantFrom(0, 1),
  password: fc.string({ minLength: 0, maxLength: 8, unit: fc.constantFrom(..."abcdefgh0123") }),
  addresses: fc.array(ipv4Address, { minLength: 1, maxLength: 8 }),
  src: ipv4Address,
});

describe("scapy bridge (local)", () => {
  let bridge: ScapyBridge;
  beforeAll(async () => {
    bridge = await ScapyBridge.startLocal();
  }, 60_000);
  afterAll(async () => {
    await bridge?.close();
  });

  it("answers ping with scapy's version", async () => {
    expect((await bridge.ping()).scapy).toMatch(/^2\./);
  });

  it("VRRP v3 encoded in TypeScript: scapy decodes the same fields and agrees on the pseudo-header checksum", async () => {
    for (const v of fc.sample(vrrp3Values, SAMPLES)) {
      const packet: Vrrp3Packet = { version: 3, type: 1, ...v, extension: new Uint8Array(0) };
      const ip = encodeIpv4({
        src: v.src,
        dst: "224.0.0.18",
        ttl: 255,
        protocol: 112,
        payload: encodeVrrp(packet, { src: v.src, dst: "224.0.0.18" }),
      });
      const d = await bridge.decode(ip, "IP");
      expect(fields(d.layers, "VRRPv3")).toMatchObject({
        version: 3,
        type: 1,
        vrid: v.vrid,
        priority: v.priority,
        ipcount: v.addresses.length,
        adv: v.maxAdverIntCs,
        addrlist: v.addresses,
      });
      expect(d.checksums.map((c) => [c.layer, c.valid])).toEqual([
        ["IP", true],
        ["VRRPv3", true],
      ]);
    }
  });

  it("VRRP v2 encoded in TypeScript: scapy decodes the same fields and agrees on the checksum", async () => {
    for (const v of fc.sample(vrrp2Values, SAMPLES)) {
      const authData = new Uint8Array(8);
      if (v.authType === 1) authData.set(new TextEncoder().encode(v.password));
      const packet: Vrrp2Packet = {
        version: 2,
        type: 1,
        vrid: v.vrid,
        priority: v.priority,
        authType: v.authType,
        adverIntSeconds: v.adverIntSeconds,
        addresses: v.addresses,
        authData,
        extension: new Uint8Array(0),
      };
      const ip = encodeIpv4({
        src: v.src,
        dst: "224.0.0.18",
        ttl: 255,
        protocol: 112,
        payload: encodeVrrp(packet),
      });
      const d = await bridge.decode(ip, "IP");
      const view = new DataView(authData.buffer);
      expect(fields(d.layers, "VRRP")).toMatchObject({
        version: 2,
        type: 1,
        vrid: v.vrid,
        priority: v.priority,
        ipcount: v.addresses.length,
        authtype: v.authType,
        adv: v.adverIntSeconds,
        addrlist: v.addresses,
        auth1: view.getUint32(0),
        auth2: view.getUint32(4),
      });
      expect(d.checksums.every((c) => c.valid)).toBe(true);
    }
  });

  it("ARP (incl. gratuitous) encoded in TypeScript: scapy decodes the same fields", async () => {
    const arps = fc.sample(
      fc.record({
        operation: fc.constantFrom(1, 2),
        senderMac: macAddress,
        senderIp: ipv4Address,
        targetMac: macAddress,
        targetIp: ipv4Address,
      }),
      SAMPLES,
    );
    for (const a of arps) {
      const frame = encodeEthernet({
        dst: "ff:ff:ff:ff:ff:ff",
        src: a.senderMac,
        etherType: ETHERTYPE.arp,
        payload: encodeArp(a),
      });
      const d = await bridge.decode(frame, "Ether");
      expect(fields(d.layers, "ARP")).toMatchObject({
        hwtype: 1,
        ptype: 0x0800,
        hwlen: 6,
        plen: 4,
        op: a.operation,
        hwsrc: a.senderMac,
        psrc: a.senderIp,
        hwdst: a.targetMac,
        pdst: a.targetIp,
      });
    }
    const garp = await bridge.decode(gratuitousArpFrame("00:00:5e:00:01:07", "198.18.0.100"));
    expect(fields(garp.layers, "Ether")).toMatchObject({
      dst: "ff:ff:ff:ff:ff:ff",
      src: "00:00:5e:00:01:07",
      type: 0x0806,
    });
    expect(fields(garp.layers, "ARP")).toMatchObject({ op: 1, psrc: "198.18.0.100", pdst: "198.18.0.100" });
  });

  it("ICMP information request/reply (15/16) encoded in TypeScript: scapy decodes the same fields and checksum", async () => {
    const values = fc.sample(
      fc.record({ type: fc.constantFrom(15, 16), identifier: u16, sequence: u16, src: ipv4Address }),
      SAMPLES,
    );
    for (const v of values) {
      const icmp = encodeIcmp({
        type: v.type,
        code: 0,
        identifier: v.identifier,
        sequence: v.sequence,
        data: new Uint8Array(0),
      });
      const ip = encodeIpv4({ src: v.src, dst: "198.18.0.255", protocol: 1, payload: icmp });
      const d = await bridge.decode(ip, "IP");
      expect(fields(d.layers, "ICMP")).toMatchObject({
        type: v.type,
        code: 0,
        id: v.identifier,
        seq: v.sequence,
      });
      expect(d.checksums.map((c) => [c.layer, c.valid])).toEqual([
        ["IP", true],
        ["ICMP", true],
      ]);
    }
  });

  it("frames built by scapy decode identically in TypeScript, byte for byte", async () => {
    for (const v of fc.sample(vrrp3Values, SAMPLES)) {
      const built = await bridge.build([
        { layer: "IP", fields: { src: v.src, dst: "224.0.0.18", ttl: 255, id: 7 } },
        {
          layer: "VRRPv3",
          fields: {
            vrid: v.vrid,
            priority: v.priority,
            adv: v.maxAdverIntCs,
            ipcount: v.addresses.length,
            addrlist: v.addresses,
          },
        },
      ]);
      const ip = expectOk(decodeIpv4(Buffer.from(built.hex, "hex")));
      expect(ip.checksumValid).toBe(true);
      const vrrp = expectOk(decodeVrrp(ip.payload));
      expect(vrrp).toMatchObject({
        version: 3,
        type: 1,
        vrid: v.vrid,
        priority: v.priority,
        maxAdverIntCs: v.maxAdverIntCs,
      });
      expect(vrrp.addresses).toEqual(v.addresses);
      expect(vrrpChecksumMatches(ip.payload, { src: ip.src, dst: ip.dst })).toBe(true);
      const ours = encodeIpv4({
        src: v.src,
        dst: "224.0.0.18",
        ttl: 255,
        protocol: 112,
        identification: 7,
        payload: encodeVrrp(vrrp, { src: v.src, dst: "224.0.0.18" }),
      });
      expect(hex(ours)).toBe(built.hex);
    }
    for (const v of fc.sample(vrrp2Values, 10)) {
      const built = await bridge.build([
        { layer: "IP", fields: { src: v.src, dst: "224.0.0.18", ttl: 255 } },
        {
          layer: "VRRP",
          fields: {
            vrid: v.vrid,
            priority: v.priority,
            adv: v.adverIntSeconds,
            authtype: v.authType,
            ipcount: v.addresses.length,
            addrlist: v.addresses,
          },
        },
      ]);
      const ip = expectOk(decodeIpv4(Buffer.from(built.hex, "hex")));
      const vrrp = expectOk(decodeVrrp(ip.payload));
      expect(vrrp).toMatchObject({
        version: 2,
        vrid: v.vrid,
        priority: v.priority,
        adverIntSeconds: v.adverIntSeconds,
        authType: v.authType,
      });
      expect(vrrpChecksumMatches(ip.payload, { src: ip.src, dst: ip.dst })).toBe(true);
    }
    for (const type of [15, 16]) {
      const built = await bridge.build([
        { layer: "Ether", fields: { src: "02:00:00:00:00:01", dst: "ff:ff:ff:ff:ff:ff" } },
        { layer: "IP", fields: { src: "198.18.0.5", dst: "198.18.0.255" } },
        { layer: "ICMP", fields: { type, id: 0x1234, seq: 9 } },
      ]);
      const eth = expectOk(decodeEthernet(Buffer.from(built.hex, "hex")));
      const icmp = expectOk(decodeIcmp(expectOk(decodeIpv4(eth.payload)).payload));
      expect(icmp).toMatchObject({ type, code: 0, identifier: 0x1234, sequence: 9, checksumValid: true });
    }
    const arp = await bridge.build([
      { layer: "Ether", fields: { src: "02:00:00:00:00:01", dst: "ff:ff:ff:ff:ff:ff" } },
      {
        layer: "ARP",
        fields: {
          op: 2,
          hwsrc: "02:00:00:00:00:01",
          psrc: "198.18.0.7",
          hwdst: "ff:ff:ff:ff:ff:ff",
          pdst: "198.18.0.7",
        },
      },
    ]);
    const arpDecoded: ArpPacket = expectOk(
      decodeArp(expectOk(decodeEthernet(Buffer.from(arp.hex, "hex"))).payload),
    );
    expect(arpDecoded).toEqual({
      operation: 2,
      senderMac: "02:00:00:00:00:01",
      senderIp: "198.18.0.7",
      targetMac: "ff:ff:ff:ff:ff:ff",
      targetIp: "198.18.0.7",
    });
  });

  it("VRRPv3 over IPv6 encoded in TypeScript: scapy decodes the same fields and agrees on the IPv6 pseudo-header checksum", async () => {
    for (const v of fc.sample(vrrp3v6Values, SAMPLES)) {
      const packet: Vrrp3Packet = { version: 3, type: 1, ...v, family: 6, extension: new Uint8Array(0) };
      const ip = encodeIpv6({
        src: v.src,
        dst: "ff02::12",
        hopLimit: 255,
        nextHeader: 112,
        payload: encodeVrrp(packet, { src: v.src, dst: "ff02::12" }),
      });
      const d = await bridge.decode(ip, "IPv6");
      expect(fields(d.layers, "IPv6")).toMatchObject({ nh: 112, hlim: 255, src: v.src, dst: "ff02::12" });
      expect(fields(d.layers, "VRRPv3")).toMatchObject({
        version: 3,
        vrid: v.vrid,
        priority: v.priority,
        ipcount: v.addresses.length,
        adv: v.maxAdverIntCs,
        addrlist: v.addresses,
      });
      expect(d.checksums.map((c) => [c.layer, c.valid])).toEqual([["VRRPv3", true]]);
    }
  });

  it("VRRPv3 over IPv6 built by scapy decodes identically in TypeScript, byte for byte", async () => {
    for (const v of fc.sample(vrrp3v6Values, SAMPLES)) {
      const built = await bridge.build([
        { layer: "IPv6", fields: { src: v.src, dst: "ff02::12", hlim: 255 } },
        {
          layer: "VRRPv3",
          fields: { vrid: v.vrid, priority: v.priority, adv: v.maxAdverIntCs, addrlist: v.addresses },
        },
      ]);
      const ip = expectOk(decodeIpv6(Buffer.from(built.hex, "hex")));
      const checked = validateVrrp6Packet(Buffer.from(built.hex, "hex"), { version: 3, vrids: [v.vrid] });
      expect(checked.ok).toBe(true);
      const vrrp = expectOk(decodeVrrp(ip.payload, 6));
      expect(vrrp).toMatchObject({
        version: 3,
        type: 1,
        vrid: v.vrid,
        priority: v.priority,
        maxAdverIntCs: v.maxAdverIntCs,
      });
      expect(vrrp.addresses).toEqual(v.addresses);
      expect(vrrpIpv6SenderProblems(ip, vrrp)).toEqual([]);
      const ours = encodeIpv6({
        src: v.src,
        dst: "ff02::12",
        hopLimit: 255,
        nextHeader: 112,
        payload: encodeVrrp(vrrp, { src: v.src, dst: "ff02::12" }),
      });
      expect(hex(ours)).toBe(built.hex);
    }
  });

  it("Neighbor Solicitation/Advertisement both ways: scapy and TypeScript agree on fields, options and checksum", async () => {
    for (const v of fc.sample(ndValues, SAMPLES)) {
      // TypeScript -> scapy
      const ours =
        v.kind === "na"
          ? unsolicitedNaFrame({ mac: v.mac, src: v.src, target: v.target, router: v.router })
          : neighborSolicitationFrame({ mac: v.mac, src: v.src, target: v.target });
      const d = await bridge.decode(ours, "Ether");
      if (v.kind === "na") {
        expect(fields(d.layers, "ICMPv6ND_NA")).toMatchObject({
          type: 136,
          R: v.router ? 1 : 0,
          S: 0,
          O: 1,
          tgt: v.target,
        });
        expect(fields(d.layers, "ICMPv6NDOptDstLLAddr")).toMatchObject({ lladdr: v.mac });
      } else {
        expect(fields(d.layers, "ICMPv6ND_NS")).toMatchObject({ type: 135, tgt: v.target });
        expect(fields(d.layers, "ICMPv6NDOptSrcLLAddr")).toMatchObject({ lladdr: v.mac });
      }
      expect(fields(d.layers, "IPv6")).toMatchObject({ hlim: 255, src: v.src });
      expect(d.checksums.map((c) => c.valid)).toEqual([true]);
      // scapy -> TypeScript, byte for byte
      const dst = v.kind === "na" ? "ff02::1" : solicitedNodeMulticast(v.target);
      const built = await bridge.build([
        { layer: "IPv6", fields: { src: v.src, dst, hlim: 255 } },
        v.kind === "na"
          ? { layer: "ICMPv6ND_NA", fields: { R: v.router ? 1 : 0, S: 0, O: 1, tgt: v.target } }
          : { layer: "ICMPv6ND_NS", fields: { tgt: v.target } },
        {
          layer: v.kind === "na" ? "ICMPv6NDOptDstLLAddr" : "ICMPv6NDOptSrcLLAddr",
          fields: { lladdr: v.mac },
        },
      ]);
      const ip = expectOk(decodeIpv6(Buffer.from(built.hex, "hex")));
      expect(icmpv6ChecksumMatches(ip.payload, ip.src, ip.dst)).toBe(true);
      const nd = expectOk(decodeNeighborDiscovery(ip.payload));
      expect(nd.target).toBe(v.target);
      expect(ndLinkLayerAddress(nd, v.kind === "na" ? 2 : 1)).toBe(v.mac);
      expect(hex(expectOk(decodeEthernet(ours)).payload)).toBe(built.hex);
    }
  });

  it("notices a corrupted checksum (the cross-check can fail)", async () => {
    const payload = encodeVrrp(
      {
        version: 3,
        type: 1,
        vrid: 1,
        priority: 100,
        maxAdverIntCs: 100,
        addresses: ["192.0.2.1"],
        extension: new Uint8Array(0),
      },
      { src: "192.0.2.2", dst: "224.0.0.18", mode: "no-pseudo-header" },
    );
    const ip = encodeIpv4({ src: "192.0.2.2", dst: "224.0.0.18", ttl: 255, protocol: 112, payload });
    const d = await bridge.decode(ip, "IP");
    expect(d.checksums.find((c) => c.layer === "VRRPv3")?.valid).toBe(false);
  });

  it("surfaces python errors and timeouts as TypeScript errors, and keeps working", async () => {
    await expect(bridge.build([{ layer: "NoSuchLayer" }])).rejects.toBeInstanceOf(ScapyBridgeError);
    await expect(bridge.call("noSuchMethod")).rejects.toThrow(/unknown method/);
    const { handle } = await bridge.sniffStart({ iface: "lo", filter: "udp port 9", count: 1 });
    await expect(
      bridge.call("sniffWait", { handle, waitMs: 60_000 }, { timeoutMs: 300 }),
    ).rejects.toBeInstanceOf(ScapyBridgeTimeoutError);
    expect((await bridge.ping()).pong).toBe(true);
  });
});

describe("scapy bridge on lab hosts", () => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-scapy-"));
  const topology = join(dir, "scapy-lab.yaml");
  writeFileSync(
    topology,
    [
      "lab: scapy-bridge",
      "segments:",
      "  lan: { hub: true, subnet: 198.18.0.0/24 }",
      "hosts:",
      "  a:",
      "    interfaces: { eth0: { segment: lan, addresses: [198.18.0.1/24], mac: '02:00:00:00:00:0a' } }",
      "  b:",
      "    interfaces: { eth0: { segment: lan, addresses: [198.18.0.2/24], mac: '02:00:00:00:00:0b' } }",
      "",
    ].join("\n"),
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("sends TypeScript-built frames from one host (bridge over SSH) and sniffs them with a BPF filter on another (bridge in its namespace)", async () => {
    await withLab(topology, async (lab) => {
      const sender = await ScapyBridge.startRemote(lab.host("a").remote);
      const sniffer = await ScapyBridge.startLocal({ namespace: lab.namespace("b") });
      try {
        const { handle } = await sniffer.sniffStart({
          iface: "eth0",
          filter: "arp or icmp",
          count: 2,
          timeoutMs: 20_000,
        });
        const garp = gratuitousArpFrame("02:00:00:00:00:0a", "198.18.0.1");
        const info = encodeEthernet(
          {
            dst: "ff:ff:ff:ff:ff:ff",
            src: "02:00:00:00:00:0a",
            etherType: ETHERTYPE.ipv4,
            payload: encodeIpv4({
              src: "198.18.0.1",
              dst: "198.18.0.255",
              protocol: 1,
              payload: encodeIcmp({
                type: 15,
                code: 0,
                identifier: 77,
                sequence: 1,
                data: new Uint8Array(0),
              }),
            }),
          },
          // Unpadded on purpose: the lab's hub bridge (br_netfilter) trims an IP frame to the IP
          // total length, so padded IP frames do not arrive byte-identical; ARP frames do.
          false,
        );
        expect(await sender.send("eth0", garp)).toEqual({ sent: 1, bytes: 60 });
        await sender.send("eth0", info);
        const packets = await sniffer.sniffWait(handle, { waitMs: 20_000 });
        expect(packets.map((p) => p.hex)).toEqual([hex(garp), hex(info)]);
        expect(fields(packets[1]!.layers, "ICMP")).toMatchObject({ type: 15, id: 77, seq: 1 });
      } finally {
        await sender.close();
        await sniffer.close();
      }
      const exit = await sender.exited;
      expect(exit).toBe("exit code 0");
    });
  }, 120_000);
});
