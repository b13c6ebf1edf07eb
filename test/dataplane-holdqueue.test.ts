// HoldQueue on real packets: sender -> forwarder -> receiver namespaces. nftables on the
// forwarder counts per source (set with per-element counters) and marks the sources to
// queue; one iptables-nft rule (mangle FORWARD) queues marked packets to NFQUEUE; the
// HoldQueue in this process (queue opened inside the forwarder's namespace) decides.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { parseQueueStats } from "tandem-nfqueue";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HoldBounds, HoldQueue } from "../lib/dataplane/hold-queue.ts";
import { ensureQueueRule, type QueueRule, removeQueueRule } from "../lib/dataplane/iptables-queue.ts";
import { listSet, readCounter, replaceTable } from "../lib/dataplane/nft.ts";
import { packetIdentity } from "../lib/dataplane/packet.ts";
import { run } from "../lib/lab/command.ts";
import {
  buildForwardingLab,
  type ForwardingLab,
  RECEIVER,
  range,
  SOURCE_A,
  SOURCE_B,
  UDP_PORT,
} from "../lib/lab/forwarding-lab.ts";
import { waitUntil } from "../lib/remote/wait.ts";

const QUEUE = 300;
const MARK = 0x3000;
const rule: QueueRule = { table: "mangle", chain: "FORWARD", mark: MARK, mask: 0xf000, queueNum: QUEUE };

let lab: ForwardingLab;

beforeAll(async () => {
  lab = await buildForwardingLab();
  // Classification at priority -200, before iptables-nft's mangle FORWARD (-150) queues.
  await replaceTable(
    lab.exec.forwarder,
    { family: "inet", table: "tdclassify" },
    `
    set sources { type ipv4_addr; counter; elements = { ${SOURCE_A}, ${SOURCE_B} } }
    set queued { type ipv4_addr; elements = { ${SOURCE_A}, ${SOURCE_B} } }
    chain classify {
      type filter hook forward priority -200; policy accept;
      ip saddr @sources
      ip saddr @queued meta mark set meta mark or ${MARK}
    }`,
  );
  await replaceTable(
    lab.exec.receiver,
    { family: "inet", table: "tdcount" },
    `
    counter rx { }
    chain input { type filter hook input priority 0; policy accept; udp dport ${UDP_PORT} counter name rx; }`,
  );
  expect(await ensureQueueRule(lab.exec.forwarder, rule)).toBe(true);
}, 60_000);

afterAll(async () => {
  await lab?.teardown();
});

function openHoldQueue(bounds?: HoldBounds) {
  return HoldQueue.open<string>({
    queueNum: QUEUE,
    queue: { netns: lab.forwarder },
    key: (s) => s.src,
    bounds,
  });
}

async function settle(ms = 300) {
  await new Promise((r) => setTimeout(r, ms));
}

describe("HoldQueue in a forwarding namespace", () => {
  it("holds one source while the other flows, then releases every held packet once and in order", async () => {
    const hq = openHoldQueue();
    try {
      hq.hold(SOURCE_A);
      const before = await readCounter(lab.exec.receiver, { family: "inet", table: "tdcount" }, "rx");
      await Promise.all([lab.send(SOURCE_A, "h1a", 200), lab.send(SOURCE_B, "h1b", 200)]);
      await waitUntil(() => lab.receivedOf("h1b").length >= 200, {
        timeoutMs: 10_000,
        what: "B's 200 datagrams",
      });
      await waitUntil(() => hq.counters(SOURCE_A).held >= 200, {
        timeoutMs: 10_000,
        what: "A's 200 packets held",
      });
      await settle();
      expect(lab.receivedOf("h1a")).toHaveLength(0);
      expect(hq.counters(SOURCE_B).passed).toBe(200);
      expect(hq.held(SOURCE_A).map((r) => r.summary.src)).toEqual(Array(200).fill(SOURCE_A));

      expect(hq.release(SOURCE_A)).toEqual({ released: 200, discarded: 0 });
      await waitUntil(() => lab.receivedOf("h1a").length >= 200, {
        timeoutMs: 10_000,
        what: "A's 200 datagrams",
      });
      await settle();
      expect(lab.receivedOf("h1a").map((d) => d.seq)).toEqual(range(200));
      expect(lab.receivedOf("h1b").map((d) => d.seq)).toEqual(range(200));
      const after = await readCounter(lab.exec.receiver, { family: "inet", table: "tdcount" }, "rx");
      expect(after.packets - before.packets).toBe(400);

      const c = hq.counters(SOURCE_A);
      expect(c).toMatchObject({ held: 0, heldTotal: 200, released: 200, discarded: 0, overflowDropped: 0 });
      expect(hq.mode(SOURCE_A)).toBe("pass");
      const q = hq.stats().queue;
      expect(q.kernel?.queueTotal).toBe(0);
      expect(q.kernel?.queueDropped).toBe(0);
      expect(q.verdictErrors).toBe(0);
    } finally {
      hq.close();
    }
  });

  it("counts per source in the nft set's per-element counters", async () => {
    const set = await listSet(lab.exec.forwarder, { family: "inet", table: "tdclassify", set: "sources" });
    const byValue = new Map(set.elements.map((e) => [e.value, e.counter?.packets]));
    // Test 1 sent 200 + 200 (the fixture's ARP-priming pings ran before the table existed).
    expect(byValue.get(SOURCE_A)).toBe(200);
    expect(byValue.get(SOURCE_B)).toBe(200);
  });

  it("discards: nothing held arrives, and the discard is counted", async () => {
    const hq = openHoldQueue();
    try {
      hq.hold(SOURCE_A);
      await lab.send(SOURCE_A, "d1", 50);
      await waitUntil(() => hq.counters(SOURCE_A).held >= 50, { timeoutMs: 10_000, what: "50 held" });
      expect(hq.discard(SOURCE_A, (r) => r.summary.dstPort === UDP_PORT)).toBe(50);
      expect(hq.mode(SOURCE_A)).toBe("hold");
      hq.passThrough(SOURCE_A);
      await lab.send(SOURCE_A, "d2", 10);
      await waitUntil(() => lab.receivedOf("d2").length >= 10, {
        timeoutMs: 10_000,
        what: "the 10 sent after pass-through",
      });
      await settle();
      expect(lab.receivedOf("d1")).toHaveLength(0);
      expect(hq.counters(SOURCE_A)).toMatchObject({ heldTotal: 50, discarded: 50, released: 0, passed: 10 });
    } finally {
      hq.close();
    }
  });

  it("bounds by packets: overflow is dropped and counted exactly", async () => {
    const hq = openHoldQueue({ packets: 30 });
    try {
      hq.hold(SOURCE_A);
      await lab.send(SOURCE_A, "o1", 50);
      await waitUntil(
        () => {
          const c = hq.counters(SOURCE_A);
          return c.held + c.overflowDropped >= 50;
        },
        { timeoutMs: 10_000, what: "50 arrivals" },
      );
      expect(hq.counters(SOURCE_A)).toMatchObject({ held: 30, overflowDropped: 20 });
      hq.release(SOURCE_A);
      await waitUntil(() => lab.receivedOf("o1").length >= 30, { timeoutMs: 10_000, what: "30 datagrams" });
      await settle();
      expect(lab.receivedOf("o1").map((d) => d.seq)).toEqual(range(30));
    } finally {
      hq.close();
    }
  });

  it("bounds by bytes", async () => {
    // "o2:NN" is 5 bytes of UDP payload: 20 + 8 + 5 = 33-byte packets (seq 10..99 -> 33 bytes).
    const hq = openHoldQueue({ bytes: 33 * 12 });
    try {
      hq.hold(SOURCE_A);
      await lab.send(SOURCE_A, "o2", 40);
      await waitUntil(
        () => {
          const c = hq.counters(SOURCE_A);
          return c.held + c.overflowDropped >= 40;
        },
        { timeoutMs: 10_000, what: "40 arrivals" },
      );
      const c = hq.counters(SOURCE_A);
      // 10 packets of 32 bytes (seq 0..9) + 2 of 33 = 386 <= 396; the 13th would be 419.
      expect(c.held).toBe(12);
      expect(c.heldBytes).toBe(10 * 32 + 2 * 33);
      expect(c.overflowDropped).toBe(28);
    } finally {
      hq.close();
    }
  });

  it("bounds by age: expired packets are dropped and counted", async () => {
    const hq = openHoldQueue({ ageMs: 250 });
    try {
      hq.hold(SOURCE_A);
      await lab.send(SOURCE_A, "t1", 20);
      await waitUntil(() => hq.counters(SOURCE_A).held >= 20, { timeoutMs: 10_000, what: "20 held" });
      await waitUntil(() => hq.counters(SOURCE_A).timeoutDropped >= 20, { timeoutMs: 3000, what: "expiry" });
      hq.release(SOURCE_A);
      await settle();
      expect(lab.receivedOf("t1")).toHaveLength(0);
      expect(hq.counters(SOURCE_A)).toMatchObject({ held: 0, timeoutDropped: 20, released: 0 });
      expect(hq.stats().queue.kernel?.queueTotal).toBe(0);
    } finally {
      hq.close();
    }
  });

  it("whenArrived wakes on arrivals (no polling) and gives the check's value at its timeout", async () => {
    const hq = openHoldQueue();
    try {
      hq.hold(SOURCE_A);
      let checks = 0;
      const fifth = hq.whenArrived(() => {
        checks++;
        return hq.held(SOURCE_A).length >= 5;
      }, 10_000);
      await lab.send(SOURCE_A, "w1", 5);
      expect(await fifth).toBe(true);
      // Checked at the start and once per batch of arrivals: at most 1 + 5, never per loop turn.
      expect(checks).toBeGreaterThanOrEqual(2);
      expect(checks).toBeLessThanOrEqual(6);
      const started = performance.now();
      expect(await hq.whenArrived(() => hq.held(SOURCE_A).length >= 6, 200)).toBe(false);
      expect(performance.now() - started).toBeGreaterThanOrEqual(195);
      hq.discard(SOURCE_A);
    } finally {
      hq.close();
    }
  });

  it("releases after per-flow markers (exactly-once hand-off, new owner's side)", async () => {
    const hq = openHoldQueue();
    try {
      hq.hold(SOURCE_A);
      await lab.send(SOURCE_A, "m1", 30);
      await waitUntil(() => hq.counters(SOURCE_A).held >= 30, { timeoutMs: 10_000, what: "30 held" });
      const held = hq.held(SOURCE_A);
      const marker = held[11]!;
      const result = hq.releaseAfterMarkers(SOURCE_A, new Map([[marker.summary.flow, marker.identity]]));
      expect(result).toEqual({ released: 18, discarded: 12, markersFound: 1, markersMissing: 0 });
      await waitUntil(() => lab.receivedOf("m1").length >= 18, { timeoutMs: 10_000, what: "18 datagrams" });
      await settle();
      expect(lab.receivedOf("m1").map((d) => d.seq)).toEqual(range(18, 12));
    } finally {
      hq.close();
    }
  });

  it("observes: accepts at once and records the last packet per flow, same identity as at the receiver", async () => {
    const hq = openHoldQueue();
    const pcap = `/tmp/${lab.prefix}-observe.pcap`;
    const capture = run(
      [
        "ip",
        "netns",
        "exec",
        lab.receiver,
        "timeout",
        "-s",
        "INT",
        "4",
        "tcpdump",
        "-i",
        "eth0",
        "-U",
        "-w",
        pcap,
        "-c",
        "15",
        "udp",
      ],
      { allowFailure: true },
    );
    try {
      await settle(800); // tcpdump needs a moment to attach
      hq.observe(SOURCE_A);
      await lab.send(SOURCE_A, "v1", 15);
      await waitUntil(() => lab.receivedOf("v1").length >= 15, { timeoutMs: 10_000, what: "15 datagrams" });
      await capture;
      const obs = hq.observations(SOURCE_A);
      expect(obs).toHaveLength(1);
      expect(obs[0]!.packets).toBe(15);
      expect(obs[0]!.summary.dst).toBe(RECEIVER);
      expect(hq.counters(SOURCE_A).observed).toBe(15);
      const packets = readPcapIpPackets(await import("node:fs").then((fs) => fs.readFileSync(pcap)));
      expect(packets).toHaveLength(15);
      // The receiver saw TTL 63, the forward hook TTL 63 too but prerouting 64: identity ignores TTL.
      expect(packetIdentity(packets[14]!)).toBe(obs[0]!.identity);
      expect(packetIdentity(packets[13]!)).not.toBe(obs[0]!.identity);
      // Every observed packet is remembered by identity (type 4 extension: the old owner
      // stops once it has taken in one the new owner holds), not only the last per flow.
      expect(hq.observedAny(SOURCE_A, [packetIdentity(packets[3]!)])).toBe(true);
      expect(hq.observedAny(SOURCE_A, ["00000000deadbeef"])).toBe(false);
      expect(hq.observedAny(SOURCE_B, [packetIdentity(packets[3]!)])).toBe(false);
      expect(hq.takeObservations(SOURCE_A)).toHaveLength(1);
      expect(hq.observations(SOURCE_A)).toHaveLength(0);
      expect(hq.observedAny(SOURCE_A, [packetIdentity(packets[3]!)])).toBe(false);
    } finally {
      hq.close();
      await run(["rm", "-f", pcap], { allowFailure: true });
    }
  });

  it("close drops what is still held; the kernel queue ends empty", async () => {
    const hq = openHoldQueue();
    hq.hold(SOURCE_A);
    await lab.send(SOURCE_A, "c1", 10);
    await waitUntil(() => hq.counters(SOURCE_A).held >= 10, { timeoutMs: 10_000, what: "10 held" });
    hq.close();
    await settle();
    expect(lab.receivedOf("c1")).toHaveLength(0);
    expect(hq.counters(SOURCE_A)).toMatchObject({ discarded: 10, held: 0 });
  });

  it("a consumer killed mid-hold: the kernel drops what it held, nothing leaks, the queue can be bound again", async () => {
    const addon = createRequire(import.meta.url).resolve("tandem-nfqueue");
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { openQueue } from ${JSON.stringify(addon)};
         let n = 0;
         openQueue(${QUEUE}, { netns: ${JSON.stringify(lab.forwarder)} }, () => { if (++n === 20) console.log("held 20"); });
         console.log("ready");
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const lines: string[] = [];
      createInterface({ input: child.stdout }).on("line", (l) => lines.push(l));
      await waitUntil(() => lines.includes("ready"), { timeoutMs: 10_000, what: "the child to bind" });
      await lab.send(SOURCE_A, "k1", 20);
      await waitUntil(() => lines.includes("held 20"), { timeoutMs: 10_000, what: "the child to hold 20" });
      const kernelQueue = async () => {
        const text = (await lab.exec.forwarder.exec(["cat", "/proc/net/netfilter/nfnetlink_queue"])).stdout;
        return parseQueueStats(text).find((q) => q.queueNum === QUEUE);
      };
      expect((await kernelQueue())?.queueTotal).toBe(20);
      child.kill("SIGKILL");
      await waitUntil(async () => (await kernelQueue()) === undefined, {
        timeoutMs: 10_000,
        what: "the kernel to unbind the queue",
      });
      const hq = openHoldQueue();
      try {
        await lab.send(SOURCE_A, "k2", 10);
        await waitUntil(() => lab.receivedOf("k2").length >= 10, {
          timeoutMs: 10_000,
          what: "10 after rebinding",
        });
        await settle();
        expect(lab.receivedOf("k1")).toHaveLength(0);
      } finally {
        hq.close();
      }
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("a throwing key function or hook is counted; the packets still get a verdict", async () => {
    const hq = HoldQueue.open<string>({
      queueNum: QUEUE,
      queue: { netns: lab.forwarder },
      key: (s) => {
        if (s.src === SOURCE_B) throw new Error("key bug");
        return s.src;
      },
      onPacket: () => {
        throw new Error("hook bug");
      },
    });
    try {
      await Promise.all([lab.send(SOURCE_A, "e1", 10), lab.send(SOURCE_B, "e2", 10)]);
      await waitUntil(() => lab.receivedOf("e1").length + lab.receivedOf("e2").length >= 20, {
        timeoutMs: 10_000,
        what: "20 datagrams",
      });
      const stats = hq.stats();
      expect(stats).toMatchObject({ received: 20, keyErrors: 10, hookErrors: 10, malformed: 0 });
      expect(hq.counters(SOURCE_A).passed).toBe(10);
    } finally {
      hq.close();
    }
  });

  it("the queue rule is idempotent", async () => {
    expect(await ensureQueueRule(lab.exec.forwarder, rule)).toBe(false);
    const listed = await lab.exec.forwarder.exec(["iptables", "-t", "mangle", "-S", "FORWARD"]);
    expect(listed.stdout.match(/NFQUEUE/g)).toHaveLength(1);
    expect(await removeQueueRule(lab.exec.forwarder, rule)).toBe(1);
    expect(await removeQueueRule(lab.exec.forwarder, rule)).toBe(0);
    expect(await ensureQueueRule(lab.exec.forwarder, rule)).toBe(true);
  });
});

/** IP packets of a pcap file with Ethernet link type (enough for tcpdump -w output). */
function readPcapIpPackets(file: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const le = file.readUInt32LE(0) === 0xa1b2c3d4;
  let o = 24;
  while (o + 16 <= file.length) {
    const incl = le ? file.readUInt32LE(o + 8) : file.readUInt32BE(o + 8);
    const frame = file.subarray(o + 16, o + 16 + incl);
    if (frame.length > 14 && frame.readUInt16BE(12) === 0x0800) out.push(Buffer.from(frame.subarray(14)));
    o += 16 + incl;
  }
  return out;
}
