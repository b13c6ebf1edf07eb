import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { packetIdentity, summarizePacket } from "../lib/dataplane/packet.ts";

function ipv4(options: {
  ttl?: number;
  id?: number;
  protocol?: number;
  l4: Buffer;
  checksum?: number;
}): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + options.l4.length, 2);
  h.writeUInt16BE(options.id ?? 0x1234, 4);
  h[8] = options.ttl ?? 64;
  h[9] = options.protocol ?? 17;
  h.writeUInt16BE(options.checksum ?? 0xbeef, 10);
  Buffer.from([198, 18, 1, 10]).copy(h, 12);
  Buffer.from([198, 18, 2, 10]).copy(h, 16);
  return Buffer.concat([h, options.l4]);
}

function udp(srcPort: number, dstPort: number, payload: string): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b.writeUInt16BE(srcPort, 0);
  b.writeUInt16BE(dstPort, 2);
  b.writeUInt16BE(8 + payload.length, 4);
  b.write(payload, 8);
  return b;
}

function tcp(seq: number, flags: number, payload: string): Buffer {
  const b = Buffer.alloc(20 + payload.length);
  b.writeUInt16BE(40000, 0);
  b.writeUInt16BE(80, 2);
  b.writeUInt32BE(seq, 4);
  b.writeUInt32BE(7, 8);
  b[12] = 5 << 4;
  b[13] = flags;
  b.write(payload, 20);
  return b;
}

describe("summarizePacket", () => {
  it("reads an IPv4 UDP packet", () => {
    const r = summarizePacket(ipv4({ l4: udp(1234, 5000, "hello") }));
    expect(r).toEqual({
      ok: true,
      value: {
        version: 4,
        src: "198.18.1.10",
        dst: "198.18.2.10",
        protocol: 17,
        length: 33,
        srcPort: 1234,
        dstPort: 5000,
        flow: "17 198.18.1.10:1234>198.18.2.10:5000",
      },
    });
  });

  it("reads TCP sequence fields and payload length", () => {
    const r = summarizePacket(ipv4({ protocol: 6, l4: tcp(0xfffffff0, 0x18, "abcdef") }));
    expect(r.ok && r.value.tcp).toEqual({ seq: 0xfffffff0, ack: 7, flags: 0x18, payloadLength: 6 });
  });

  it("reads IPv6 with RFC 5952 address text", () => {
    const b = Buffer.alloc(48);
    b[0] = 0x60;
    b.writeUInt16BE(8, 4);
    b[6] = 17;
    b[7] = 64;
    Buffer.from("20010db8000000000000000000000001", "hex").copy(b, 8);
    Buffer.from("20010db8000100000000000000000002", "hex").copy(b, 24);
    udp(1, 2, "").copy(b, 40);
    const r = summarizePacket(b);
    expect(r.ok && r.value).toMatchObject({
      version: 6,
      src: "2001:db8::1",
      dst: "2001:db8:1::2",
      srcPort: 1,
      dstPort: 2,
    });
  });

  it("reports malformed packets with offset and reason", () => {
    expect(summarizePacket(Buffer.alloc(0))).toEqual({
      ok: false,
      error: { offset: 0, reason: "empty packet" },
    });
    expect(summarizePacket(Buffer.from([0x45, 0, 0]))).toMatchObject({ ok: false, error: { offset: 0 } });
    const badIhl = ipv4({ l4: udp(1, 2, "x") });
    badIhl[0] = 0x4f;
    expect(summarizePacket(badIhl.subarray(0, 40))).toMatchObject({ ok: false });
    expect(summarizePacket(Buffer.from([0x55, 0, 0, 0]))).toMatchObject({
      ok: false,
      error: { reason: "IP version 5" },
    });
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        const r = summarizePacket(bytes);
        return r.ok === true || typeof r.error.reason === "string";
      }),
      { numRuns: 2000 },
    );
  });
});

describe("packetIdentity", () => {
  it("ignores TTL and header checksum (what forwarding changes)", () => {
    const a = ipv4({ ttl: 64, checksum: 0x1111, l4: udp(1, 2, "x:1") });
    const b = ipv4({ ttl: 63, checksum: 0x2222, l4: udp(1, 2, "x:1") });
    expect(packetIdentity(a)).toBe(packetIdentity(b));
    expect(packetIdentity(a)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("changes with the IP ID, the protocol, the payload and the length", () => {
    const base = packetIdentity(ipv4({ l4: udp(1, 2, "x:1") }));
    expect(packetIdentity(ipv4({ id: 0x1235, l4: udp(1, 2, "x:1") }))).not.toBe(base);
    expect(packetIdentity(ipv4({ protocol: 6, l4: udp(1, 2, "x:1") }))).not.toBe(base);
    expect(packetIdentity(ipv4({ l4: udp(1, 2, "x:2") }))).not.toBe(base);
    expect(packetIdentity(ipv4({ l4: udp(1, 2, "x:10") }))).not.toBe(base);
  });

  it("ignores the IPv6 hop limit only", () => {
    const b = Buffer.alloc(48);
    b[0] = 0x60;
    b[6] = 17;
    b[7] = 64;
    const c = Buffer.from(b);
    c[7] = 3;
    const d = Buffer.from(b);
    d[47] = 1;
    expect(packetIdentity(b)).toBe(packetIdentity(c));
    expect(packetIdentity(b)).not.toBe(packetIdentity(d));
  });

  it("has no collisions over 200k distinct packets of one flow", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++)
      seen.add(packetIdentity(ipv4({ id: i & 0xffff, l4: udp(1, 2, `s:${i}`) })));
    expect(seen.size).toBe(200_000);
  });
});
