// The brief's exactly-once hand-off, on the data plane alone (no VRLS messages): two
// members on a hub segment share one virtual MAC, so both receive every frame of the end
// system; nftables on each forwards only the sources in its `mine` set. A condition (one
// source address) moves back and forth while a UDP stream runs:
//   1. old owner observes the condition (queue-and-accept, remembering the last packet per flow);
//   2. new owner holds it (queued, held) and takes it into `mine`;
//   3. old owner stops: block + take the per-flow markers in one synchronous step, then nft drop;
//   4. new owner drops what precedes each marker, releases the rest, stops queueing.
// The receiver must get every datagram exactly once; the members' own counters must add up.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HoldQueue } from "../lib/dataplane/hold-queue.ts";
import { ensureQueueRule } from "../lib/dataplane/iptables-queue.ts";
import {
  type InProcessNft,
  inProcessNft,
  listCounters,
  replaceTable,
  updateSet,
} from "../lib/dataplane/nft.ts";
import { run } from "../lib/lab/command.ts";
import { RECEIVER, sendPaced, startUdpReceiver, type UdpReceiver } from "../lib/lab/forwarding-lab.ts";
import { type Lab, upLab } from "../lib/lab/index.ts";
import type { CommandHost } from "../lib/remote/command.ts";
import { waitUntil } from "../lib/remote/wait.ts";
import { parseTopologyText } from "../lib/topology/load.ts";

const END_SYSTEM = "198.18.1.10";
const VIRTUAL_MAC = "00:00:5e:00:01:09";
const QUEUE = 300;
const MARK = 0x3000;
const PACKETS = 4000;
const PPS = 2000;

const TOPOLOGY = `
lab: dphandoff
description: two members on a hub sharing a virtual MAC, one end system, one receiver (test/dataplane-handoff.test.ts)
segments:
  lan: { hub: true, subnet: 198.18.1.0/24 }
  far: { subnet: 198.18.2.0/24 }
hosts:
  es:
    interfaces: { eth0: { segment: lan, addresses: [${END_SYSTEM}/24], mac: "02:00:00:00:01:10" } }
    routes: [{ to: default, via: 198.18.1.1 }]
  m1:
    forwarding: true
    interfaces:
      eth0: { segment: lan, addresses: [198.18.1.2/24], mac: "02:00:00:00:01:02" }
      eth1: { segment: far, addresses: [198.18.2.2/24], mac: "02:00:00:00:02:02" }
  m2:
    forwarding: true
    interfaces:
      eth0: { segment: lan, addresses: [198.18.1.3/24], mac: "02:00:00:00:01:03" }
      eth1: { segment: far, addresses: [198.18.2.3/24], mac: "02:00:00:00:02:03" }
  rcv:
    interfaces: { eth0: { segment: far, addresses: [${RECEIVER}/24], mac: "02:00:00:00:02:10" } }
    routes: [{ to: 198.18.1.0/24, via: 198.18.2.2 }]
`;

interface Member {
  name: string;
  exec: CommandHost;
  /** The member's nftables, in process (as a role agent has them): a hand-off spawns nothing. */
  nft: InProcessNft;
  queue: HoldQueue<string>;
}

let lab: Lab;
let receiver: UdpReceiver | undefined;
const members: Member[] = [];

beforeAll(async () => {
  lab = await upLab(parseTopologyText(TOPOLOGY, "test/dataplane-handoff.test.ts"));
  // Both members answer to the virtual MAC on the hub; the end system knows it statically.
  for (const m of ["m1", "m2"]) {
    await run(["ip", "-n", lab.namespace(m), "link", "set", "eth0", "address", VIRTUAL_MAC]);
  }
  await run([
    "ip",
    "-n",
    lab.namespace("es"),
    "neigh",
    "replace",
    "198.18.1.1",
    "lladdr",
    VIRTUAL_MAC,
    "dev",
    "eth0",
    "nud",
    "permanent",
  ]);
  for (const name of ["m1", "m2"]) {
    const exec = lab.host(name);
    await replaceTable(
      exec,
      { family: "inet", table: "tdhandoff" },
      `set mine { type ipv4_addr; }
      set queued { type ipv4_addr; }
      counter direct { }
      chain classify {
        type filter hook forward priority -200; policy accept;
        ip saddr @queued meta mark set meta mark or ${MARK} accept
        ip saddr != @mine drop
        counter name direct
      }`,
    );
    await ensureQueueRule(exec, {
      table: "mangle",
      chain: "FORWARD",
      mark: MARK,
      mask: 0xf000,
      queueNum: QUEUE,
    });
    const queue = HoldQueue.open<string>({
      queueNum: QUEUE,
      queue: { netns: lab.namespace(name) },
      key: (s) => s.src,
      bounds: { packets: 10_000 },
    });
    members.push({ name, exec, nft: inProcessNft({ netns: lab.namespace(name) }), queue });
    await run(["ip", "netns", "exec", lab.namespace(name), "ping", "-c1", "-W2", RECEIVER]);
  }
  receiver = await startUdpReceiver(lab.namespace("rcv"));
}, 90_000);

afterAll(async () => {
  receiver?.stop();
  for (const m of members) {
    m.queue.close();
    m.nft.close();
  }
  await lab?.down();
});

const ref = (set: string) => ({ family: "inet" as const, table: "tdhandoff", set });

interface HandoffReport {
  released: number;
  discarded: number;
  markersFound: number;
  markersMissing: number;
  ms: number;
}

/**
 * A VRLS message (allocation, confirmation, markers) crossing the LAN: in-process nft makes
 * every step synchronous, so without it the whole hand-off would fit between two reads of
 * the queues and no packet would ever be observed or held. Time is what is modelled here.
 */
const transit = () => new Promise((r) => setTimeout(r, 3));

async function handOff(from: Member, to: Member, condition: string): Promise<HandoffReport> {
  const t0 = performance.now();
  // 1. allocation sent: the old owner observes from now on.
  from.queue.observe(condition);
  await updateSet(from.nft, ref("queued"), { add: [condition] });
  await transit();
  // 2. allocation received: the new owner holds from now on.
  to.queue.hold(condition);
  await updateSet(to.nft, ref("queued"), { add: [condition] });
  await updateSet(to.nft, ref("mine"), { add: [condition] });
  await transit();
  // 3. confirmation received: the old owner stops and reports where it stopped, in one step.
  from.queue.block(condition);
  const markers = new Map(from.queue.takeObservations(condition).map((o) => [o.flow, o.identity]));
  await updateSet(from.nft, ref("mine"), { delete: [condition] });
  await updateSet(from.nft, ref("queued"), { delete: [condition] });
  await transit();
  // 4. markers received: the new owner drops what the old one forwarded, releases the rest.
  const r = to.queue.releaseAfterMarkers(condition, markers);
  await updateSet(to.nft, ref("queued"), { delete: [condition] });
  return { ...r, ms: performance.now() - t0 };
}

describe("exactly-once hand-off on the data plane", () => {
  it(`moves one condition back and forth under a ${PPS} pps UDP stream: every datagram arrives exactly once`, async () => {
    const [m1, m2] = members as [Member, Member];
    await updateSet(m1.nft, ref("mine"), { add: [END_SYSTEM] });
    let sending = true;
    const stream = sendPaced(lab.namespace("es"), END_SYSTEM, "x", PACKETS, PPS).finally(() => {
      sending = false;
    });
    const reports: HandoffReport[] = [];
    let owner = m1;
    let other = m2;
    await new Promise((r) => setTimeout(r, 100));
    while (sending) {
      reports.push(await handOff(owner, other, END_SYSTEM));
      [owner, other] = [other, owner];
      await new Promise((r) => setTimeout(r, 40));
    }
    await stream;
    // Every datagram that will arrive has arrived once the count stops growing for 300 ms.
    let last = -1;
    let stableSince = Date.now();
    await waitUntil(
      () => {
        const n = receiver?.received.length ?? 0;
        if (n !== last) {
          last = n;
          stableSince = Date.now();
        }
        return Date.now() - stableSince >= 300;
      },
      { timeoutMs: 10_000, what: "the receiver's count to settle" },
    );

    const seqs = receiver!.received.filter((d) => d.tag === "x").map((d) => d.seq);
    const counts = new Map<number, number>();
    for (const s of seqs) counts.set(s, (counts.get(s) ?? 0) + 1);
    const lost = PACKETS - counts.size;
    const duplicated = seqs.length - counts.size;
    let reordered = 0;
    for (let i = 1; i < seqs.length; i++) if (seqs[i]! < seqs[i - 1]!) reordered++;

    // What the members forwarded: directly by nft, or accepted from the queue.
    let forwarded = 0;
    for (const m of members) {
      forwarded +=
        (await listCounters(m.exec, { family: "inet", table: "tdhandoff" })).get("direct")?.packets ?? 0;
      const c = m.queue.counters(END_SYSTEM);
      forwarded += c.passed + c.observed + c.released;
    }
    const summary = {
      handoffs: reports.length,
      lost,
      duplicated,
      reordered,
      forwarded,
      markersFound: reports.reduce((a, r) => a + r.markersFound, 0),
      markersMissing: reports.reduce((a, r) => a + r.markersMissing, 0),
      heldDiscarded: reports.reduce((a, r) => a + r.discarded, 0),
      heldReleased: reports.reduce((a, r) => a + r.released, 0),
      handoffMsMax: Math.round(Math.max(...reports.map((r) => r.ms))),
    };
    console.log(`hand-off on the data plane: ${JSON.stringify(summary)}`);
    expect(reports.length).toBeGreaterThanOrEqual(10);
    expect(summary.markersFound).toBeGreaterThan(0);
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);
    expect(forwarded).toBe(PACKETS);
  }, 60_000);
});
