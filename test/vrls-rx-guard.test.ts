// Issue 15, "standard VRRP must not starve": the kernel guard of a VRLS member
// (lib/roles/vrls/rx-guard.ts, table ip vrls<VRID>_rx) against the real kernel. Two scratch
// namespaces of this run's prefix joined by one veth (removed in afterAll); A crafts
// protocol-112 packets with any source address (raw socket, header included), B holds the
// guard table (through an in-process libnftables context, as the agent does) and a RawIo
// receiving what passes. Every protocol-112 packet arriving on B's eth0 lands in exactly one counter.
// Also the user-space limits (RxLimiter), which need no kernel.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InProcessNft, inProcessNft, listCounters, replaceTable } from "../lib/dataplane/index.ts";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { teardownPrefix } from "../lib/lab/teardown.ts";
import { waitUntil } from "../lib/remote/wait.ts";
import { RawIo } from "../lib/roles/vrls/rawio.ts";
import { RX_GUARD_COUNTERS, RxLimiter, rxGuardTable, rxGuardTableName } from "../lib/roles/vrls/rx-guard.ts";
import { encodeIpv4, IP_PROTOCOL } from "../lib/wire/ipv4.ts";
import { encodeVrrp } from "../lib/wire/vrrp.ts";

const prefix = newRunPrefix();
const nsA = namespaceName(prefix, "gda");
const nsB = namespaceName(prefix, "gdb");
const A = "198.18.251.1";
const B = "198.18.251.2";
const PEER = "198.18.251.3";
const ATTACKER = "198.18.251.66";
const VRID = 51;
const table = { family: "ip" as const, table: rxGuardTableName(VRID) };

const waitFor = (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000) =>
  waitUntil(condition, { timeoutMs, what });

let sender: RawIo;
let receiver: RawIo;
let nft: InProcessNft;
const received: Buffer[] = [];

interface Craft {
  src?: string;
  ttl?: number;
  version?: number;
  type?: number;
  vrid?: number;
  options?: Uint8Array;
  truncateTo?: number;
  id?: number;
}

function craft(c: Craft = {}): Buffer {
  const src = c.src ?? ATTACKER;
  const vrrp = encodeVrrp(
    {
      version: 3,
      type: 1,
      vrid: c.vrid ?? VRID,
      priority: 100,
      maxAdverIntCs: 100,
      addresses: ["198.18.251.10"],
      extension: new Uint8Array(0),
    },
    { src, dst: B },
  );
  vrrp[0] = ((c.version ?? 3) << 4) | (c.type ?? 1);
  const ip = encodeIpv4({
    src,
    dst: B,
    protocol: IP_PROTOCOL.vrrp,
    ttl: c.ttl ?? 255,
    identification: c.id ?? 1,
    ...(c.options ? { options: c.options } : {}),
    payload: c.truncateTo === undefined ? vrrp : vrrp.subarray(0, c.truncateTo),
  });
  return Buffer.from(ip);
}

async function counters(): Promise<Record<string, number>> {
  const m = await listCounters(nft, table);
  return Object.fromEntries([...m].map(([k, v]) => [k, v.packets]));
}

const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

/** Sends, then waits until B's guard has counted every packet (each lands in one counter). */
async function sendAll(packets: Buffer[]): Promise<Record<string, number>> {
  const before = total(await counters());
  let sent = 0;
  for (const p of packets) if (sender.sendIp(p)) sent++;
  expect(sent).toBe(packets.length);
  await waitFor(`${sent} packets counted by the guard`, async () => total(await counters()) >= before + sent);
  receiver.pump();
  return counters();
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
  nft = inProcessNft({ netns: nsB });
  await replaceTable(nft, table, rxGuardTable({ vrid: VRID, peers: [PEER], lanInterface: "eth0" }));
  sender = await RawIo.open({ interface: "eth0", listen: [], netns: nsA });
  receiver = await RawIo.open({
    interface: "eth0",
    listen: ["vrrp"],
    netns: nsB,
    onVrrp: (p) => received.push(p),
  });
});

afterAll(async () => {
  sender?.close();
  receiver?.close();
  nft?.close();
  await teardownPrefix(prefix);
});

describe("kernel guard table vrls<VRID>_rx", () => {
  it("has every counter, all zero at the start", async () => {
    const c = await counters();
    expect(Object.keys(c).sort()).toEqual([...RX_GUARD_COUNTERS].sort());
    expect(total(c)).toBe(0);
  });

  it("sheds each malformed kind in the kernel, counted under its reason; none reaches the socket", async () => {
    const kinds: [string, Craft][] = [
      ["own_source", { src: B }],
      ["bad_ttl", { ttl: 254 }],
      ["ip_options", { options: new Uint8Array([1, 1, 1, 0]) }],
      ["too_short", { truncateTo: 4 }],
      ["bad_version", { version: 2 }],
      ["other_vrid", { vrid: VRID + 1 }],
      ["bad_type", { type: 0 }],
      ["bad_type", { type: 15 }],
    ];
    const before = await counters();
    const got = received.length;
    for (const [, c] of kinds)
      await sendAll(Array.from({ length: 50 }, (_, i) => craft({ ...c, id: i + 1 })));
    const after = await counters();
    const expected: Record<string, number> = {};
    for (const [reason] of kinds) expected[reason] = (expected[reason] ?? 0) + 50;
    for (const name of RX_GUARD_COUNTERS) {
      expect(after[name]! - before[name]!, name).toBe(expected[name] ?? 0);
    }
    expect(received.length - got).toBe(0);
  });

  it("passes well-formed messages from a peer (counted passed_peer) byte for byte", async () => {
    const packets = Array.from({ length: 20 }, (_, i) => craft({ src: PEER, id: 100 + i }));
    const got = received.length;
    const before = await counters();
    const after = await sendAll(packets);
    await waitFor("20 peer packets at the socket", () => received.length >= got + 20, 5000);
    expect(after.passed_peer! - before.passed_peer!).toBe(20);
    expect(received.slice(got).map((p) => p.toString("hex"))).toEqual(packets.map((p) => p.toString("hex")));
  });

  it("a flood from many sources is cut to the global limit while every peer message in it gets through", async () => {
    const got = received.length;
    const before = await counters();
    const packets: Buffer[] = [];
    const peerIds = new Set<number>();
    // 20,000 well-formed (but unauthenticated) packets from 250 sources, a peer message every 200.
    for (let i = 0; i < 20_000; i++) {
      if (i % 200 === 0) {
        peerIds.add(1000 + i / 200);
        packets.push(craft({ src: PEER, id: 1000 + i / 200 }));
      }
      packets.push(craft({ src: `198.18.251.${100 + (i % 150)}`, id: (i % 60000) + 1 }));
    }
    const t0 = performance.now();
    const after = await sendAll(packets);
    const seconds = (performance.now() - t0) / 1000;
    const d = (k: string) => after[k]! - before[k]!;
    expect(d("passed_peer")).toBe(peerIds.size);
    await waitFor("the peer messages at the socket", () => {
      receiver.pump();
      const ids = new Set(
        received
          .slice(got)
          .filter((p) => p.subarray(12, 16).join(".") === PEER)
          .map((p) => p.readUInt16BE(4)),
      );
      return [...peerIds].every((id) => ids.has(id));
    });
    // Non-peer: at most the global burst (1,000) plus 2,000/s while the flood lasted, and
    // each source at most its burst (200) plus 200/s; the rest shed and counted.
    expect(d("passed_other")).toBeLessThanOrEqual(1000 + Math.ceil(2000 * seconds) + 1);
    expect(d("global_rate") + d("source_rate")).toBe(20_000 - d("passed_other"));
    expect(d("global_rate")).toBeGreaterThan(0);
    // Everything that passed reached the socket: nothing lost in the receive buffer.
    expect(receiver.stats().rxDrops).toBe(0);
  });

  it("one source alone is cut to its own limit (source_rate)", async () => {
    const before = await counters();
    const t0 = performance.now();
    const after = await sendAll(
      Array.from({ length: 3000 }, (_, i) => craft({ src: "198.18.251.77", id: i + 1 })),
    );
    const seconds = (performance.now() - t0) / 1000;
    const passed = after.passed_other! - before.passed_other!;
    expect(passed).toBeGreaterThan(0);
    expect(passed).toBeLessThanOrEqual(200 + Math.ceil(200 * seconds) + 1);
    // The source limit lets at most its burst plus its rate through; of those, the global
    // limit (still drained by the flood before) may drop more.
    const bySource = after.source_rate! - before.source_rate!;
    const byGlobal = after.global_rate! - before.global_rate!;
    expect(bySource).toBeGreaterThanOrEqual(3000 - (200 + Math.ceil(200 * seconds) + 1));
    expect(bySource + byGlobal).toBe(3000 - passed);
  });
});

describe("RxLimiter (user-space limits before the HMAC)", () => {
  it("limits each non-peer sender and all of them together, never a peer below its rate; counts each hit", () => {
    const l = new RxLimiter(
      { peers: ["p"], peerPerSecond: 1000, senderPerSecond: 10, globalPerSecond: 25, maxSenders: 3 },
      0,
    );
    // One sender: 10 in a burst, then refused.
    const one = Array.from({ length: 15 }, () => l.check("x", 0));
    expect(one.filter((v) => v === "accept")).toHaveLength(10);
    expect(l.counters.sender).toBe(5);
    // More senders: the global bucket (25) runs dry after 15 more.
    const many = ["a", "b", "c"].flatMap((s) => Array.from({ length: 10 }, () => l.check(s, 0)));
    expect(many.filter((v) => v === "accept")).toHaveLength(15);
    expect(l.counters.global).toBe(15);
    // A peer is not behind the global limit.
    expect(Array.from({ length: 500 }, () => l.check("p", 0)).every((v) => v === "accept")).toBe(true);
    // The sender table is bounded: a fourth non-peer forgets the oldest (counted).
    l.check("d", 0);
    expect(l.trackedSenders).toBe(3);
    expect(l.counters.sendersForgotten).toBeGreaterThan(0);
    // Tokens come back with time: one second later "x" may send 10 again.
    expect(Array.from({ length: 10 }, () => l.check("x", 1000)).filter((v) => v === "accept").length).toBe(
      10,
    );
  });
});

describe("kernel guard for the seeded receive faults (issue 13)", () => {
  it("letThrough leaves out exactly the named checks, so the faulty agent gets those packets", () => {
    const full = rxGuardTable({ vrid: VRID, peers: [PEER], lanInterface: "eth0" });
    const open = rxGuardTable({
      vrid: VRID,
      peers: [PEER],
      lanInterface: "eth0",
      letThrough: ["bad_ttl", "bad_version", "other_vrid"],
    });
    for (const rule of [
      'ip ttl != 255 counter name "bad_ttl" drop',
      '@th,0,4 != 3 counter name "bad_version" drop',
      `@th,8,8 != ${VRID} counter name "other_vrid" drop`,
    ]) {
      expect(full).toContain(rule);
      expect(open).not.toContain(rule);
    }
    expect(full.split("\n").length - open.split("\n").length).toBe(3);
    // The other checks stay (the short and bad-checksum faults are judged past them).
    expect(open).toContain('ip length < 28 counter name "too_short" drop');
  });
});
