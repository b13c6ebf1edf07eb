import { describe, expect, it } from "vitest";
import { fromHex } from "../lib/wire/bytes.ts";
import { decodeIpv4, encodeIpv4, IP_PROTOCOL } from "../lib/wire/ipv4.ts";
import { expectOk } from "../lib/wire/result.ts";
import {
  decodeVrls,
  encodeVrls,
  encodeVrlsIpv4,
  transferVrlsIpv4,
  VRLS_TYPE,
  type VrlsMessage,
} from "../lib/wire/vrls.ts";
import {
  decodeVrrp,
  detectVrrpChecksumMode,
  encodeVrrp,
  vrrpChecksumMatches,
  vrrpPasswordAuthData,
} from "../lib/wire/vrrp.ts";
import { validateVrrpPacket } from "../lib/wire/vrrp-validate.ts";

// Vectors built by scapy 2.5.0 (an independent implementation), see the scapy bridge tests for live checks.
const SCAPY_V3 = "4500002400010000ff701542c6120002e000001231339602006404d0c6120064c6120065";
const SCAPY_V2 = "4500002800010000ff70153ec6120002e00000122107640101017733c61200647365637265740000";

describe("VRRP v3 (RFC 5798)", () => {
  it("decodes a scapy-built advertisement and verifies its pseudo-header checksum", () => {
    const ip = expectOk(decodeIpv4(fromHex(SCAPY_V3)));
    expect(ip.checksumValid).toBe(true);
    const v = expectOk(decodeVrrp(ip.payload));
    expect(v).toMatchObject({ version: 3, type: 1, vrid: 51, priority: 150, count: 2, maxAdverIntCs: 100 });
    expect(v.addresses).toEqual(["198.18.0.100", "198.18.0.101"]);
    expect(detectVrrpChecksumMode(ip.payload, ip.src, ip.dst)).toBe("rfc");
  });

  it("encodes byte-identically to scapy", () => {
    const payload = encodeVrrp(
      {
        version: 3,
        type: 1,
        vrid: 51,
        priority: 150,
        maxAdverIntCs: 100,
        addresses: ["198.18.0.100", "198.18.0.101"],
        extension: new Uint8Array(0),
      },
      { src: "198.18.0.2", dst: "224.0.0.18" },
    );
    const ip = encodeIpv4({
      src: "198.18.0.2",
      dst: "224.0.0.18",
      ttl: 255,
      protocol: 112,
      identification: 1,
      payload,
    });
    expect(Buffer.from(ip).toString("hex")).toBe(SCAPY_V3);
  });

  it("supports the checksum variant without pseudo-header, and tells them apart", () => {
    const packet = {
      version: 3 as const,
      type: 1,
      vrid: 9,
      priority: 100,
      maxAdverIntCs: 5,
      addresses: ["192.0.2.1"],
      extension: new Uint8Array(0),
    };
    const ctx = { src: "198.18.1.1", dst: "224.0.0.18" };
    const legacy = encodeVrrp(packet, { ...ctx, mode: "no-pseudo-header" });
    expect(detectVrrpChecksumMode(legacy, ctx.src, ctx.dst)).toBe("no-pseudo-header");
    expect(vrrpChecksumMatches(legacy, { ...ctx, mode: "rfc" })).toBe(false);
    const rfc = encodeVrrp(packet, ctx);
    expect(vrrpChecksumMatches(rfc, { ...ctx, mode: "rfc" })).toBe(true);
  });
});

describe("VRRP v2 (RFC 3768)", () => {
  it("decodes a scapy-built advertisement with simple password auth", () => {
    const ip = expectOk(decodeIpv4(fromHex(SCAPY_V2)));
    const v = expectOk(decodeVrrp(ip.payload));
    expect(v).toMatchObject({ version: 2, type: 1, vrid: 7, priority: 100, authType: 1, adverIntSeconds: 1 });
    expect(v.addresses).toEqual(["198.18.0.100"]);
    if (v.version !== 2) throw new Error("v2 expected");
    expect(Buffer.from(v.authData).toString("latin1")).toBe("secret\0\0");
    expect(vrrpChecksumMatches(ip.payload, { src: ip.src, dst: ip.dst })).toBe(true);
    const re = encodeVrrp({ ...v, extension: new Uint8Array(0) });
    expect(Buffer.from(re).toString("hex")).toBe(Buffer.from(ip.payload).toString("hex"));
  });
});

describe("VRRP receive validation (RFC 5798 7.1 / RFC 3768 7.1)", () => {
  const v2Config = {
    version: 2 as const,
    vrids: [7],
    authType: 1,
    authData: vrrpPasswordAuthData("secret"),
    adverIntSeconds: 1,
  };
  const mutate = (hex: string, at: number, value: number, fixIpChecksum = true): Uint8Array => {
    const b = fromHex(hex);
    b[at] = value;
    if (!fixIpChecksum) return b;
    const ip = expectOk(decodeIpv4(b));
    return encodeIpv4({ ...ip });
  };

  it("accepts the good packets", () => {
    expect(validateVrrpPacket(fromHex(SCAPY_V2), v2Config).ok).toBe(true);
    expect(validateVrrpPacket(fromHex(SCAPY_V3), { version: 3, vrids: [51] }).ok).toBe(true);
  });

  it.each([
    ["ttl-not-255", mutate(SCAPY_V2, 8, 64)],
    ["bad-checksum", mutate(SCAPY_V2, 20 + 2, 101)],
    ["bad-version", mutate(SCAPY_V3, 20, 0x21)],
  ])("rejects with %s", (reason, bytes) => {
    const result = validateVrrpPacket(
      bytes,
      reason === "bad-version" ? { version: 3, vrids: [51] } : v2Config,
    );
    expect(result.ok ? "accepted" : result.reason).toBe(reason);
  });

  it("names unknown VRID, auth and interval mismatches, and short packets", () => {
    const reason = (r: ReturnType<typeof validateVrrpPacket>) => (r.ok ? "accepted" : r.reason);
    expect(reason(validateVrrpPacket(fromHex(SCAPY_V2), { ...v2Config, vrids: [8] }))).toBe("unknown-vrid");
    expect(
      reason(validateVrrpPacket(fromHex(SCAPY_V2), { ...v2Config, authData: vrrpPasswordAuthData("other") })),
    ).toBe("auth-mismatch");
    expect(reason(validateVrrpPacket(fromHex(SCAPY_V2), { ...v2Config, authType: 0 }))).toBe("auth-mismatch");
    expect(reason(validateVrrpPacket(fromHex(SCAPY_V2), { ...v2Config, adverIntSeconds: 3 }))).toBe(
      "interval-mismatch",
    );
    // Count says 2 addresses but only one is present: a length error, not a crash.
    const shortIp = expectOk(decodeIpv4(fromHex(SCAPY_V3)));
    const truncated = encodeIpv4({ ...shortIp, payload: shortIp.payload.subarray(0, 12) });
    expect(reason(validateVrrpPacket(truncated, { version: 3, vrids: [51] }))).toBe("bad-length");
  });
});

describe("VRLS extension messages (seed 000 Figs. 3, 10A-10F)", () => {
  const key = new TextEncoder().encode("vr-51-shared-key");
  const opts = { key, src: "198.18.0.2", dst: "198.18.0.3" };
  const envelope = {
    vrid: 51,
    priority: 150,
    maxAdverIntCs: 100,
    addresses: ["198.18.0.100"],
    sender: "198.18.0.2",
    senderIncarnation: 1_700_000_000,
    sequence: 42,
    masterEpoch: 3,
    inReplyTo: 0,
  };
  const messages: VrlsMessage[] = [
    { ...envelope, type: 1, allocationSerial: 5, mode: "exactly-once", memberCount: 3 },
    { ...envelope, type: 2, allocationSerial: 5, state: "working" },
    {
      ...envelope,
      type: 3,
      allocationSerial: 6,
      mode: "sequence-number",
      timerDelayMs: 0,
      assignments: [
        { router: "198.18.0.3", conditions: [{ kind: "prefix", address: "198.18.10.0", prefixLength: 25 }] },
        {
          router: "198.18.0.4",
          conditions: [{ kind: "bucket", hashInput: "src+dst", bucketCount: 16, bucket: 7 }],
        },
      ],
    },
    {
      ...envelope,
      type: 4,
      allocationSerial: 6,
      accepted: true,
      conditions: [{ kind: "prefix", address: "198.18.10.0", prefixLength: 25 }],
    },
    {
      ...envelope,
      type: 4,
      allocationSerial: 6,
      accepted: true,
      done: true,
      conditions: [
        { kind: "prefix", address: "198.18.10.0", prefixLength: 25 },
        { kind: "prefix", address: "198.18.10.5", prefixLength: 32 },
      ],
      // Type 4 extension: packets the new owner holds, per condition index.
      held: [
        { conditionIndex: 0, packetId: 0xfedcba9876543210n },
        { conditionIndex: 1, packetId: 1n },
      ],
    },
    {
      ...envelope,
      type: 5,
      allocationSerial: 6,
      part: 0,
      parts: 1,
      sequences: [
        {
          condition: { kind: "prefix", address: "198.18.10.5", prefixLength: 32 },
          found: true,
          src: "198.18.10.5",
          dst: "198.19.0.9",
          srcPort: 40000,
          dstPort: 80,
          tcpSeq: 0xfffffff0,
        },
        { condition: { kind: "prefix", address: "198.18.10.6", prefixLength: 32 }, found: false },
      ],
      markers: [
        {
          protocol: 17,
          src: "198.18.10.5",
          dst: "198.19.0.9",
          srcPort: 5000,
          dstPort: 6000,
          packetId: 0xdeadbeefcafef00dn,
          packetCount: 123456789n,
        },
      ],
    },
    {
      ...envelope,
      type: 6,
      rateExceeded: true,
      overflowExceeded: false,
      totalRateBps: 9_000_000_000n,
      overflowCount: 4,
      timeUnitMs: 1000,
    },
    { ...envelope, type: 7, allocationSerial: 6, conditions: [] },
    {
      ...envelope,
      type: 8,
      allocationSerial: 6,
      timeUnitMs: 1000,
      overflowCount: 2,
      rates: [
        {
          condition: { kind: "bucket", hashInput: "src", bucketCount: 4, bucket: 3 },
          rateBps: 1_000_000n,
          overflows: 1,
        },
      ],
    },
    { ...envelope, type: 9, role: "coordinator", registeredAddress: "198.18.0.9", priority: 0 },
    { ...envelope, type: 10, accepted: true, role: "coordinator", registeredAddress: "198.18.0.9" },
  ];

  it.each(messages.map((m) => [m.type, m] as const))(
    "type %i round-trips with HMAC and RFC checksum",
    (_t, m) => {
      const bytes = encodeVrls(m, opts);
      expect(vrrpChecksumMatches(bytes, { src: opts.src, dst: opts.dst })).toBe(true);
      const decoded = expectOk(decodeVrls(bytes, opts));
      expect(decoded).toEqual(m);
      // A standard VRRP v3 receiver sees a valid v3 message of an unknown type and drops it.
      const ip = encodeVrlsIpv4(m, opts);
      const standard = validateVrrpPacket(ip, { version: 3, vrids: [51] });
      expect(standard.ok ? "accepted" : standard.reason).toBe(m.type === 1 ? "accepted" : "unknown-type");
      const member = validateVrrpPacket(ip, {
        version: 3,
        vrids: [51],
        acceptedTypes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      });
      expect(member.ok).toBe(true);
      expect(expectOk(decodeIpv4(ip)).protocol).toBe(IP_PROTOCOL.vrrp);
    },
  );

  it("a transferred message (P25) keeps its sender, sequence and HMAC; only the IP header and checksum change", () => {
    const confirmation = messages.find((m) => m.type === VRLS_TYPE.allocationConfirmation)!;
    const original = encodeVrls(confirmation, opts);
    const server = { src: "198.18.0.6", dst: "198.18.0.2" };
    const ip = expectOk(decodeIpv4(transferVrlsIpv4(original, server)));
    expect(ip).toMatchObject({ src: server.src, dst: server.dst, protocol: IP_PROTOCOL.vrrp, ttl: 255 });
    expect(vrrpChecksumMatches(ip.payload, server)).toBe(true);
    // Authenticated as the original sender's message, byte for byte the same after the checksum.
    expect(expectOk(decodeVrls(ip.payload, { key, ...server }))).toEqual(confirmation);
    expect([...ip.payload.subarray(8)]).toEqual([...original.subarray(8)]);
    // A transferred copy cannot be altered by the server: any body change breaks the HMAC.
    const forged = ip.payload.slice();
    forged[forged.length - 40] = (forged[forged.length - 40] ?? 0) ^ 1;
    const d = decodeVrls(forged, { key });
    expect(d.ok ? "accepted" : d.error.reason).toBe("bad HMAC");
  });

  it("rejects a wrong key, a flipped byte anywhere, and a truncation, with offsets", () => {
    const m = messages[2]!;
    const bytes = encodeVrls(m, opts);
    const wrongKey = decodeVrls(bytes, { key: new TextEncoder().encode("other") });
    expect(wrongKey.ok ? "" : wrongKey.error.reason).toBe("bad HMAC");
    for (let i = 0; i < bytes.length; i++) {
      if (i === 6 || i === 7) continue; // checksum bytes are outside the HMAC; checked with src/dst
      const copy = bytes.slice();
      copy[i]! ^= 0x01;
      expect(decodeVrls(copy, { key }).ok, `flip at ${i}`).toBe(false);
    }
    const badSum = bytes.slice();
    badSum[7]! ^= 1;
    const r = decodeVrls(badSum, opts);
    expect(r.ok ? "" : r.error.reason).toBe("bad VRRP checksum");
    const cut = decodeVrls(bytes.subarray(0, bytes.length - 1), { key });
    expect(cut.ok).toBe(false);
  });
});
