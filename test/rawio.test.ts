// The VRLS agents' raw sockets (lib/roles/vrls/rawio.ts over the tandem-rawio addon) against
// the real kernel: two scratch namespaces of their own run prefix joined by one veth pair
// (removed in afterAll), a RawIo on each side, opened from this process with `netns`.
// What one side sends arrives at the other byte for byte; a burst is either received or
// shows in the kernel's drop counter (received + rxDrops == sent); failed sends are counted,
// not thrown; opening a missing interface names it.

import { openRawSockets, type RawSockets } from "tandem-rawio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { teardownPrefix } from "../lib/lab/teardown.ts";
import { waitUntil } from "../lib/remote/wait.ts";
import { RawIo } from "../lib/roles/vrls/rawio.ts";
import { ETHERTYPE, encodeEthernet } from "../lib/wire/ethernet.ts";
import { encodeIcmp, ICMP_TYPE } from "../lib/wire/icmp.ts";
import { encodeIpv4, IP_PROTOCOL } from "../lib/wire/ipv4.ts";
import { encodeVrrp, VRRP_MULTICAST, virtualMac } from "../lib/wire/vrrp.ts";

const prefix = newRunPrefix();
const nsA = namespaceName(prefix, "rawa");
const nsB = namespaceName(prefix, "rawb");
const A = "198.18.250.1";
const B = "198.18.250.2";
const opened: { close(): void }[] = [];

interface Side {
  io: RawIo;
  vrrp: Buffer[];
  icmp: Buffer[];
}

async function side(netns: string): Promise<Side> {
  const s: Side = { vrrp: [], icmp: [] } as unknown as Side;
  s.io = await RawIo.open({
    interface: "eth0",
    listen: ["vrrp", "icmp"],
    netns,
    onVrrp: (p) => s.vrrp.push(p),
    onIcmp: (p) => s.icmp.push(p),
  });
  opened.push(s.io);
  return s;
}

/** A VRRPv3 advertisement in IPv4 (TTL 255), with a non-zero IP identification: the kernel fills in only a zero one. */
function advertisement(src: string, dst: string, priority: number, identification: number): Buffer {
  const vrrp = encodeVrrp(
    {
      version: 3,
      type: 1,
      vrid: 51,
      priority,
      maxAdverIntCs: 100,
      addresses: ["198.18.250.10"],
      extension: new Uint8Array(0),
    },
    { src, dst },
  );
  return Buffer.from(
    encodeIpv4({ src, dst, protocol: IP_PROTOCOL.vrrp, ttl: 255, identification, payload: vrrp }),
  );
}

/** A 60-byte protocol-112 packet carrying `seq` (not VRRP: the raw socket delivers it all the same). */
function numbered(src: string, dst: string, seq: number): Buffer {
  const payload = Buffer.alloc(40);
  payload.writeUInt32BE(seq, 0);
  return Buffer.from(
    encodeIpv4({
      src,
      dst,
      protocol: IP_PROTOCOL.vrrp,
      ttl: 255,
      identification: (seq % 0xfffe) + 1,
      payload,
    }),
  );
}

beforeAll(async () => {
  await run(["ip", "netns", "add", nsA]);
  await run(["ip", "netns", "add", nsB]);
  await run(["ip", "-n", nsA, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", nsB]);
  for (const [ns, addr] of [
    [nsA, A],
    [nsB, B],
  ] as const) {
    await run(["ip", "-n", ns, "addr", "add", `${addr}/24`, "dev", "eth0"]);
    await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
  }
  // An interface that is up but has no IPv4 address (open must refuse it, naming it).
  await run(["ip", "-n", nsA, "link", "add", "noaddr0", "type", "veth", "peer", "name", "noaddr1"]);
  await run(["ip", "-n", nsA, "link", "set", "noaddr0", "up"]);
});

afterAll(async () => {
  for (const o of opened) o.close();
  await teardownPrefix(prefix);
});

describe("RawIo over the tandem-rawio addon (two namespaces, one veth)", () => {
  let a: Side;
  let b: Side;
  beforeAll(async () => {
    a = await side(nsA);
    b = await side(nsB);
  });

  it("reports the interface's address and index", async () => {
    const link = JSON.parse((await run(["ip", "-n", nsB, "-j", "link", "show", "eth0"])).stdout)[0] as {
      ifindex: number;
    };
    expect(b.io.address).toBe(B);
    expect(b.io.ifindex).toBe(link.ifindex);
    expect(a.io.address).toBe(A);
  });

  it("sendIp: a VRRP advertisement (multicast) and a unicast one arrive byte-identical at the other side's onVrrp, not back at the sender", async () => {
    const multicast = advertisement(A, VRRP_MULTICAST, 200, 0x1234);
    const unicast = advertisement(A, B, 201, 0x1235);
    const before = b.vrrp.length;
    expect(a.io.sendIp(multicast)).toBe(true);
    expect(a.io.sendIp(unicast)).toBe(true);
    await waitUntil(() => b.vrrp.length >= before + 2, { timeoutMs: 5000, what: "two packets at B" });
    const got = b.vrrp.slice(before);
    expect(got.map((p) => p.toString("hex"))).toEqual([multicast.toString("hex"), unicast.toString("hex")]);
    // IP_MULTICAST_LOOP 0: the sender's own namespace does not hear its advertisement.
    await new Promise((r) => setTimeout(r, 50));
    expect(a.vrrp).toHaveLength(0);
    expect(b.io.stats().sockets.vrrp?.received).toBe(before + 2);
  });

  it("sendFrame: an Ethernet frame from the virtual MAC to 01:00:5e:00:00:12 arrives as its IP packet", async () => {
    const ip = advertisement(A, VRRP_MULTICAST, 150, 0x2345);
    const frame = encodeEthernet({
      dst: "01:00:5e:00:00:12",
      src: virtualMac(51),
      etherType: ETHERTYPE.ipv4,
      payload: ip,
    });
    const before = b.vrrp.length;
    expect(a.io.sendFrame(frame)).toBe(true);
    await waitUntil(() => b.vrrp.length > before, { timeoutMs: 5000, what: "the frame's packet at B" });
    expect(b.vrrp.slice(before).map((p) => p.toString("hex"))).toEqual([ip.toString("hex")]);
    expect(a.io.stats().sentFrames).toBe(1);
  });

  it("ICMP: an information request (type 15) sent with sendIp arrives at the other side's onIcmp", async () => {
    const icmp = encodeIcmp({
      type: ICMP_TYPE.informationRequest,
      code: 0,
      identifier: 0x77,
      sequence: 9,
      data: new Uint8Array(0),
    });
    const packet = Buffer.from(
      encodeIpv4({
        src: A,
        dst: B,
        protocol: IP_PROTOCOL.icmp,
        ttl: 64,
        identification: 0x3456,
        payload: icmp,
      }),
    );
    const before = b.icmp.length;
    expect(a.io.sendIp(packet)).toBe(true);
    await waitUntil(() => b.icmp.some((p) => p.equals(packet)), {
      timeoutMs: 5000,
      what: "the ICMP packet at B",
    });
    expect(b.icmp.slice(before).filter((p) => p.equals(packet))).toHaveLength(1);
    expect(b.vrrp.some((p) => p.equals(packet))).toBe(false);
  });

  it("failed sends are counted and reported, never thrown", () => {
    const before = a.io.stats().sendErrors;
    // Longer than the veth's MTU (1500): the kernel refuses a header-included packet with EMSGSIZE.
    const big = Buffer.from(
      encodeIpv4({
        src: A,
        dst: B,
        protocol: IP_PROTOCOL.vrrp,
        ttl: 255,
        identification: 7,
        payload: new Uint8Array(2000),
      }),
    );
    expect(a.io.sendIp(big)).toBe(false);
    let s = a.io.stats();
    expect(s.sendErrors).toBe(before + 1);
    expect(s.lastSendError).toMatch(/sendIp to 198\.18\.250\.2: EMSGSIZE/);
    expect(a.io.sendFrame(new Uint8Array(3000))).toBe(false);
    s = a.io.stats();
    expect(s.sendErrors).toBe(before + 2);
    expect(s.lastSendError).toMatch(/sendFrame on eth0: EMSGSIZE/);
    expect(a.io.sendIp(new Uint8Array(10))).toBe(false);
    s = a.io.stats();
    expect(s.sendErrors).toBe(before + 3);
    expect(s.lastSendError).toMatch(/not an IPv4 packet.*EINVAL/);
  });

  it("a burst of 20,000 protocol-112 packets: every one received once, or counted by the kernel as dropped", async () => {
    const vrrpSocket = () => {
      const v = b.io.stats().sockets.vrrp;
      if (!v) throw new Error("no vrrp socket stats");
      return v;
    };
    const before = b.vrrp.length;
    const start = vrrpSocket();
    expect(start.received).toBe(before);
    const sent = burst(a.io, 20_000, 1_000_000);
    expect(sent).toBe(20_000);
    // Every packet is accounted for: received here or counted in the receive socket's sk_drops.
    await waitUntil(
      () => {
        const v = vrrpSocket();
        return v.received + v.rxDrops >= start.received + start.rxDrops + sent;
      },
      { timeoutMs: 15_000, what: "received + rxDrops to reach the packets sent" },
    );
    await new Promise((r) => setTimeout(r, 200));
    const v = vrrpSocket();
    const seqs = b.vrrp.slice(before).map((p) => p.readUInt32BE(20));
    expect(seqs.every((q) => q >= 1_000_000 && q < 1_000_000 + sent)).toBe(true);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(v.received - start.received).toBe(seqs.length);
    expect(seqs.length + (v.rxDrops - start.rxDrops)).toBe(sent);
    process.stderr.write(
      `rawio burst (4 MiB buffer, granted ${v.rcvbufBytes}): sent ${sent}, received ${seqs.length}, rxDrops ${v.rxDrops - start.rxDrops}, batches ${v.batches - start.batches}\n`,
    );
  });
});

/** Sends `count` numbered packets from A to B as fast as the loop goes; returns how many the kernel took. */
function burst(io: { sendIp(p: Uint8Array): boolean }, count: number, firstSeq: number): number {
  let sent = 0;
  for (let i = 0; i < count; i++) if (io.sendIp(numbered(A, B, firstSeq + i))) sent++;
  return sent;
}

describe("the addon's drop counter under overflow", () => {
  it("with a 64 KiB receive buffer a 20,000-packet burst overflows it: the kernel's drops are counted and received + rxDrops == sent", async () => {
    const got: Buffer[] = [];
    const rx: RawSockets = openRawSockets(
      { interface: "eth0", listen: ["vrrp"], netns: nsB, vrrpRcvBufBytes: 64 * 1024 },
      (batch) => {
        for (const p of batch) got.push(p.data);
      },
    );
    opened.push(rx);
    const tx = openRawSockets({ interface: "eth0", netns: nsA }, () => undefined);
    opened.push(tx);
    const sent = burst(tx, 20_000, 2_000_000);
    expect(sent).toBe(20_000);
    await waitUntil(
      () => {
        const s = rx.stats();
        return s.received + s.rxDrops >= sent;
      },
      { timeoutMs: 15_000, what: "received + rxDrops to reach the packets sent" },
    );
    await new Promise((r) => setTimeout(r, 200));
    const s = rx.stats();
    expect(s.rxDrops).toBeGreaterThan(0);
    expect(s.received).toBe(got.length);
    expect(new Set(got.map((p) => p.readUInt32BE(20))).size).toBe(got.length);
    expect(s.received + s.rxDrops).toBe(sent);
    expect(s.sockets.vrrp?.rxDrops).toBe(s.rxDrops);
    process.stderr.write(
      `rawio burst (64 KiB buffer): sent ${sent}, received ${s.received}, rxDrops ${s.rxDrops}\n`,
    );
  });

  it("opening fails with the interface's name: a missing interface, an interface without an IPv4 address", async () => {
    await expect(RawIo.open({ interface: "nosuch0", listen: ["vrrp"], netns: nsA })).rejects.toThrow(
      /rawio on nosuch0: if_nametoindex: ENODEV/,
    );
    await expect(RawIo.open({ interface: "noaddr0", listen: ["vrrp"], netns: nsA })).rejects.toThrow(
      /rawio on noaddr0: ioctl\(SIOCGIFADDR\)/,
    );
  });
});
