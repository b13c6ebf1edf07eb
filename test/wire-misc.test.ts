import { describe, expect, it } from "vitest";
import { decodeArp, gratuitousArpFrame, isGratuitousArp } from "../lib/wire/arp.ts";
import { parseIpv4 } from "../lib/wire/bytes.ts";
import { decodeEthernet, ETHERTYPE } from "../lib/wire/ethernet.ts";
import { decodeIpv4, encodeIpv4 } from "../lib/wire/ipv4.ts";
import { decodeNatlb, encodeNatlb, entriesPerDatagram, type NatlbMessage } from "../lib/wire/natlb.ts";
import { ReplayWindow } from "../lib/wire/replay.ts";
import { expectOk } from "../lib/wire/result.ts";

describe("ARP", () => {
  it("builds a gratuitous ARP for the VRRP virtual MAC", () => {
    const frame = gratuitousArpFrame("00:00:5e:00:01:33", "198.18.0.100");
    expect(frame.length).toBe(60);
    const eth = expectOk(decodeEthernet(frame));
    expect(eth).toMatchObject({
      dst: "ff:ff:ff:ff:ff:ff",
      src: "00:00:5e:00:01:33",
      etherType: ETHERTYPE.arp,
    });
    const arp = expectOk(decodeArp(eth.payload.subarray(0, 28)));
    expect(isGratuitousArp(arp)).toBe(true);
    expect(arp).toMatchObject({ operation: 1, senderIp: "198.18.0.100", targetMac: "00:00:00:00:00:00" });
  });
});

describe("IPv4 options", () => {
  it("skips options cleanly by default and rejects them on request", () => {
    const options = new Uint8Array([0x94, 0x04, 0, 0]); // router alert
    const bytes = encodeIpv4({
      src: "192.0.2.1",
      dst: "192.0.2.2",
      protocol: 17,
      options,
      payload: new Uint8Array(8),
    });
    const skipped = expectOk(decodeIpv4(bytes));
    expect(skipped.headerLength).toBe(24);
    expect(skipped.payload.length).toBe(8);
    const rejected = decodeIpv4(bytes, { rejectOptions: true });
    expect(rejected.ok ? null : rejected.error).toEqual({
      offset: 20,
      reason: "IPv4 options present (rejected by configuration)",
    });
  });
});

describe("replay window", () => {
  it("accepts increasing (incarnation, sequence) per sender and rejects the rest", () => {
    const w = new ReplayWindow();
    expect(w.check("a", 1, 1)).toBe("accept");
    expect(w.check("a", 1, 1)).toBe("replay");
    expect(w.check("b", 1, 1)).toBe("accept");
    expect(w.check("a", 1, 2)).toBe("accept");
    expect(w.check("a", 2, 0)).toBe("accept");
    expect(w.check("a", 1, 99)).toBe("stale-incarnation");
  });
});

describe("NAT-LB control", () => {
  const key = new TextEncoder().encode("natlb-key");
  const entry = {
    protocol: 6,
    tcpState: "ESTABLISHED" as const,
    status: 0x0e,
    client: { address: "203.0.113.5", port: 40001 },
    vip: { address: "198.51.100.10", port: 80 },
    server: { address: "198.18.5.2", port: 8080 },
    internal: { address: "198.18.5.1", port: 61000 },
    timeoutSeconds: 431999,
    mark: 7,
    flowControl: {
      origSeq: 1,
      replySeq: 2,
      origWindow: 502,
      replyWindow: 509,
      origWscale: 7,
      replyWscale: 7,
    },
    removed: false,
  };
  it("a full datagram of entries fits the MTU and round-trips", () => {
    const n = entriesPerDatagram(1500);
    const msg: NatlbMessage = {
      sender: 1,
      sequence: 123n,
      moveId: 9,
      type: 3,
      vip: "198.51.100.10",
      from: 1,
      to: 2,
      part: 0,
      parts: 1,
      entries: Array.from({ length: n }, () => entry),
    };
    const bytes = encodeNatlb(msg, key);
    expect(bytes.length + 28).toBeLessThanOrEqual(1500);
    expect(expectOk(decodeNatlb(bytes, key))).toEqual(msg);
    const truncated = decodeNatlb(bytes.subarray(0, 100), key);
    expect(truncated.ok).toBe(false);
    const wrongKey = decodeNatlb(bytes, new TextEncoder().encode("x"));
    expect(wrongKey.ok ? "" : wrongKey.error.reason).toBe("bad HMAC");
  });
});

describe("IPv4 address text", () => {
  it("parses dotted quads and rejects everything else with the value in the message", () => {
    expect([...parseIpv4("198.18.0.255")]).toEqual([198, 18, 0, 255]);
    expect([...parseIpv4("0.0.0.0")]).toEqual([0, 0, 0, 0]);
    for (const bad of [
      "256.1.1.1",
      "1.2.3",
      "1.2.3.4.",
      "a.b.c.d",
      "1..2.3",
      "",
      "1.2.3.4.5",
      " 1.2.3.4",
      "1234.1.1.1",
    ]) {
      expect(() => parseIpv4(bad), bad).toThrow(`invalid IPv4 address: ${JSON.stringify(bad)}`);
    }
  });
});
