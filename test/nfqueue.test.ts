// The native addon on its own, in one namespace: locally sent UDP to 127.0.0.1 is queued
// in mangle OUTPUT; nftables counters in input show what the verdicts let through.
import { type NfQueue, openQueue, type QueuedPacket } from "tandem-nfqueue";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureQueueRule } from "../lib/dataplane/iptables-queue.ts";
import { readCounter, replaceTable } from "../lib/dataplane/nft.ts";
import { summarizePacket } from "../lib/dataplane/packet.ts";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { namespaceHost } from "../lib/remote/command.ts";
import { waitUntil } from "../lib/remote/wait.ts";

const prefix = newRunPrefix();
const ns = namespaceName(prefix, "nfq");
const exec = namespaceHost(ns, { timeoutMs: 30_000 });
const QUEUE = 301;
const PORT = 5001;
const table = { family: "inet", table: "tdnfq" } as const;

const SENDER = `
const s = require("node:dgram").createSocket("udp4");
const n = Number(process.argv[1]);
(async () => {
  for (let i = 0; i < n; i++) await new Promise((r) => s.send("p:" + i, ${PORT}, "127.0.0.1", r));
  s.close();
})();
`;

async function send(count: number) {
  await run(["ip", "netns", "exec", ns, process.execPath, "-e", SENDER, String(count)]);
}

async function rx() {
  return readCounter(exec, table, "rx");
}

beforeAll(async () => {
  await run(["ip", "netns", "add", ns]);
  await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
  await replaceTable(
    exec,
    table,
    `counter rx { }
    counter marked { }
    chain out { type filter hook output priority -200; policy accept; udp dport ${PORT} meta mark set 0x3000; }
    chain in { type filter hook input priority 0; policy accept;
      udp dport ${PORT} counter name rx
      udp dport ${PORT} meta mark 0x3042 counter name marked
    }`,
  );
  await ensureQueueRule(exec, {
    table: "mangle",
    chain: "OUTPUT",
    mark: 0x3000,
    mask: 0xf000,
    queueNum: QUEUE,
  });
});

afterAll(async () => {
  const pids = await run(["ip", "netns", "pids", ns], { allowFailure: true });
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean))
    await run(["kill", "-9", pid], { allowFailure: true });
  await run(["ip", "netns", "del", ns], { allowFailure: true });
});

function collect(options: Parameters<typeof openQueue>[1] = {}) {
  const packets: QueuedPacket[] = [];
  const queue: NfQueue = openQueue(QUEUE, { netns: ns, ...options }, (p) => packets.push(p));
  return { queue, packets };
}

describe("tandem-nfqueue addon", () => {
  it("delivers queued packets with their metadata, and verdicts decide what passes", async () => {
    const { queue, packets } = collect();
    try {
      const before = await rx();
      await send(20);
      await waitUntil(() => packets.length >= 20, { timeoutMs: 10_000, what: "20 queued packets" });
      expect(packets.every((p) => p.hook === 3 && p.hwProtocol === 0x0800 && p.mark === 0x3000)).toBe(true);
      const first = summarizePacket(packets[0]!.payload);
      expect(first.ok && first.value).toMatchObject({
        src: "127.0.0.1",
        dst: "127.0.0.1",
        protocol: 17,
        dstPort: PORT,
      });
      expect(new Set(packets.map((p) => p.id)).size).toBe(20);
      // Even packets accepted, odd ones dropped.
      for (const [i, p] of packets.entries()) queue.verdict(p.id, i % 2 === 0 ? "accept" : "drop");
      await waitUntil(async () => (await rx()).packets - before.packets >= 10, {
        timeoutMs: 10_000,
        what: "10 delivered",
      });
      await new Promise((r) => setTimeout(r, 200));
      expect((await rx()).packets - before.packets).toBe(10);
      const stats = queue.stats();
      expect(stats).toMatchObject({ received: 20, verdicts: 20, verdictErrors: 0, malformed: 0 });
      expect(stats.kernel).toMatchObject({ queueNum: QUEUE, queueTotal: 0, queueDropped: 0 });
    } finally {
      queue.close();
    }
  });

  it("refuses a second binding of the same queue with a clear error", () => {
    const { queue } = collect();
    try {
      expect(() => openQueue(QUEUE, { netns: ns }, () => {})).toThrow(/bind queue 301: .*already bound/);
    } finally {
      queue.close();
    }
  });

  it("rejects a bad namespace and bad options", () => {
    expect(() => openQueue(QUEUE, { netns: `${prefix}-nosuchns` }, () => {})).toThrow(/open netns/);
    expect(() => openQueue(70000, {}, () => {})).toThrow(/queueNum must be an integer/);
    expect(() => openQueue(QUEUE, { netns: ns, maxLen: -1 }, () => {})).toThrow(/maxLen/);
  });

  it("counts kernel drops when the queue is full (maxLen)", async () => {
    const { queue, packets } = collect({ maxLen: 8 });
    try {
      await send(20);
      await waitUntil(() => packets.length >= 8, { timeoutMs: 10_000, what: "8 queued" });
      await new Promise((r) => setTimeout(r, 200));
      expect(packets).toHaveLength(8);
      expect(queue.stats().kernel).toMatchObject({ queueTotal: 8, queueDropped: 12 });
      queue.verdictMany(
        packets.map((p) => p.id),
        "drop",
      );
      await waitUntil(() => queue.stats().kernel?.queueTotal === 0, {
        timeoutMs: 10_000,
        what: "queue empty",
      });
    } finally {
      queue.close();
    }
  });

  it("sets a mark with the verdict, and batch verdicts (verdictMany, verdictUpTo) apply to every id", async () => {
    const { queue, packets } = collect();
    try {
      const marked = await readCounter(exec, table, "marked");
      await send(10);
      await waitUntil(() => packets.length >= 10, { timeoutMs: 10_000, what: "10 queued" });
      queue.verdictMany(
        packets.slice(0, 5).map((p) => p.id),
        "accept",
        { mark: 0x3042 },
      );
      queue.verdictUpTo(packets[9]!.id, "accept");
      await waitUntil(() => queue.stats().kernel?.queueTotal === 0, {
        timeoutMs: 10_000,
        what: "queue empty",
      });
      await new Promise((r) => setTimeout(r, 100));
      expect((await readCounter(exec, table, "marked")).packets - marked.packets).toBe(5);
    } finally {
      queue.close();
    }
  });

  it("replaces the payload with the verdict", async () => {
    const { queue, packets } = collect();
    const listener = run(
      [
        "ip",
        "netns",
        "exec",
        ns,
        "timeout",
        "3",
        "socat",
        "-u",
        `UDP4-RECVFROM:${PORT},bind=127.0.0.1`,
        "STDOUT",
      ],
      { allowFailure: true },
    );
    try {
      await new Promise((r) => setTimeout(r, 300));
      await send(1);
      await waitUntil(() => packets.length >= 1, { timeoutMs: 10_000, what: "1 queued" });
      const original = packets[0]!.payload;
      const changed = Buffer.from(original);
      changed.write("X", 28); // first UDP payload byte: "p:0" -> "X:0"
      changed.writeUInt16BE(0, 26); // UDP checksum 0 = none (IPv4)
      queue.verdict(packets[0]!.id, "accept", { payload: changed });
      const out = await listener;
      expect(out.stdout).toBe("X:0");
    } finally {
      queue.close();
    }
  });

  it("a full socket buffer is visible: ENOBUFS counted, the kernel's user_dropped accounts for every lost packet", async () => {
    // The smallest receive buffer, and this process's event loop blocked while 300 packets arrive.
    const { queue, packets } = collect({ rcvBufBytes: 4096 });
    try {
      const sending = send(300);
      const until = Date.now() + 2000;
      while (Date.now() < until) {
        // busy: the netlink socket fills up while the sender (another process) runs
      }
      await sending;
      for (const p of packets.splice(0)) queue.verdict(p.id, "accept");
      await waitUntil(() => queue.stats().kernel?.queueTotal === 0, {
        timeoutMs: 10_000,
        what: "the queue to drain",
      });
      let seen = 0;
      await waitUntil(
        async () => {
          for (const p of packets.splice(0)) queue.verdict(p.id, "accept");
          const now = queue.counters().received;
          const quiet = now === seen;
          seen = now;
          await new Promise((r) => setTimeout(r, 100));
          return quiet;
        },
        { timeoutMs: 10_000, what: "no more packets" },
      );
      const stats = queue.stats();
      expect(stats.enobufs).toBeGreaterThan(0);
      expect(stats.kernel?.userDropped).toBeGreaterThan(0);
      expect(stats.received + (stats.kernel?.userDropped ?? 0)).toBe(300);
      expect(stats.kernel?.idSequence).toBe(300);
    } finally {
      queue.close();
    }
  });

  it("a throwing handler does not cost the rest of the batch its delivery", async () => {
    const seen: number[] = [];
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on("uncaughtException", onError);
    const queue = openQueue(QUEUE, { netns: ns }, (p) => {
      seen.push(p.id);
      queue.verdict(p.id, "accept");
      if (seen.length === 1) throw new Error("handler bug");
    });
    try {
      const before = await rx();
      await send(10);
      await waitUntil(async () => (await rx()).packets - before.packets >= 10, {
        timeoutMs: 10_000,
        what: "10 delivered",
      });
      expect(seen).toHaveLength(10);
      expect(errors.map((e) => (e as Error).message)).toEqual(["handler bug"]);
    } finally {
      process.off("uncaughtException", onError);
      queue.close();
    }
  });

  it("queues IPv6 too (ip6tables rule), with the IPv6 EtherType", async () => {
    await ensureQueueRule(exec, {
      table: "mangle",
      chain: "OUTPUT",
      mark: 0x3000,
      mask: 0xf000,
      queueNum: QUEUE,
      ipv6: true,
    });
    const { queue, packets } = collect();
    try {
      const script = `const s = require("node:dgram").createSocket("udp6");
        s.send("v6", ${PORT}, "::1", () => s.close());`;
      await run(["ip", "netns", "exec", ns, process.execPath, "-e", script]);
      await waitUntil(() => packets.length >= 1, { timeoutMs: 10_000, what: "1 queued" });
      const p = packets[0]!;
      expect(p.hwProtocol).toBe(0x86dd);
      const s = summarizePacket(p.payload);
      expect(s.ok && s.value).toMatchObject({
        version: 6,
        src: "::1",
        dst: "::1",
        protocol: 17,
        dstPort: PORT,
      });
      queue.verdict(p.id, "accept");
    } finally {
      queue.close();
    }
  });

  it("close() is idempotent and verdicts after close throw", () => {
    const { queue } = collect();
    queue.close();
    queue.close();
    expect(() => queue.verdict(1, "accept")).toThrow(/closed/);
    expect(() => queue.verdict(1, "maybe" as "accept")).toThrow(/verdict must be/);
  });
});
