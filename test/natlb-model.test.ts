// NAT-LB model (seed 002): the access correspondence table view of conntrack, the copy
// keeping function's columns per embodiment, the load assignment and the move journal.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeAssignment } from "../lib/roles/natlb/assignment.ts";
import { NatlbSection } from "../lib/roles/natlb/config.ts";
import {
  type ConnEntry,
  entryToInsertLine,
  parseConntrackLine,
  parseConntrackListing,
} from "../lib/roles/natlb/conn-table.ts";
import { CopyStore, entriesFromSocketTable, toCopyRow } from "../lib/roles/natlb/keeper.ts";
import { MoveJournal } from "../lib/roles/natlb/move.ts";
import type { PcapRecord } from "../lib/traffic/pcap-reader.ts";
import { compareCaptures, type Segment, segmentOf } from "../lib/traffic/tcp-compare.ts";
import { ETHERTYPE, encodeEthernet } from "../lib/wire/ethernet.ts";
import { encodeIpv4, IP_PROTOCOL } from "../lib/wire/ipv4.ts";
import { encodeTcp } from "../lib/wire/tcp.ts";

// Lines as `conntrack -L -o extended` printed them in this machine's namespaces.
const DNAT_LINE =
  "ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.0.10 dst=198.18.0.100 sport=46612 dport=80 src=198.19.0.10 dst=198.18.0.10 sport=8080 dport=46612 [ASSURED] mark=0 use=1";
const FULLNAT_LINE =
  "ipv4     2 tcp      6 299 ESTABLISHED src=198.18.0.10 dst=198.18.0.100 sport=47568 dport=80 src=198.19.0.10 dst=198.19.0.100 sport=8080 dport=47568 [ASSURED] mark=7 use=1";
const SYN_LINE =
  "tcp      6 29 SYN_SENT src=198.18.1.9 dst=198.18.0.100 sport=2 dport=80 [UNREPLIED] src=198.19.0.10 dst=198.18.1.9 sport=8080 dport=2 mark=0 use=1";
const VIPS = new Set(["198.18.0.100"]);

describe("access correspondence table (conntrack view, Figs. 5 and 12)", () => {
  it("reads a DNAT entry into the seed's columns", () => {
    const t = parseConntrackListing(DNAT_LINE, VIPS);
    expect(t.malformed).toEqual([]);
    expect(t.entries).toEqual([
      {
        protocol: "tcp",
        clientAddr: "198.18.0.10",
        clientPort: 46612,
        vip: "198.18.0.100",
        vipPort: 80,
        serverAddr: "198.19.0.10",
        serverPort: 8080,
        tcpState: "ESTABLISHED",
        seqDelta: 0,
        timeoutS: 431999,
        seenReply: true,
        assured: true,
        mark: 0,
      },
    ]);
  });

  it("reads a full-NAT entry with the internal address/port (913/914)", () => {
    const [e] = parseConntrackListing(FULLNAT_LINE, VIPS).entries;
    expect(e?.internalAddr).toBe("198.19.0.100");
    expect(e?.internalPort).toBe(47568);
    expect(e?.mark).toBe(7);
  });

  it("keeps an unreplied SYN as such and skips flows to other addresses", () => {
    const t = parseConntrackListing(
      `${SYN_LINE}\nudp      17 20 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 use=1\nconntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.`,
      VIPS,
    );
    expect(t.entries).toHaveLength(1);
    expect(t.entries[0]?.seenReply).toBe(false);
    expect(t.entries[0]?.tcpState).toBe("SYN_SENT");
    expect(t.skipped).toBe(1);
  });

  it("writes the conntrack -R line that recreates the NAT binding", () => {
    const [dnat] = parseConntrackListing(DNAT_LINE, VIPS).entries as [ConnEntry];
    expect(entryToInsertLine(dnat)).toBe(
      "-I -p tcp -s 198.18.0.10 -d 198.18.0.100 --sport 46612 --dport 80 --dst-nat 198.19.0.10:8080 --state ESTABLISHED -u ASSURED,SEEN_REPLY -t 431999",
    );
    const [full] = parseConntrackListing(FULLNAT_LINE, VIPS).entries as [ConnEntry];
    expect(entryToInsertLine(full)).toContain("--src-nat 198.19.0.100:47568");
    expect(entryToInsertLine(full)).toContain("-m 7");
    const [syn] = parseConntrackListing(SYN_LINE, VIPS).entries as [ConnEntry];
    expect(entryToInsertLine(syn)).toContain("--state SYN_SENT -u UNSET");
  });

  it("never throws on hostile lines; malformed ones are reported with a reason", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (line) => {
        const r = parseConntrackLine(line);
        expect(typeof r.ok).toBe("boolean");
      }),
    );
    const cut = DNAT_LINE.slice(0, 80);
    const t = parseConntrackListing(cut, VIPS);
    expect(t.entries).toEqual([]);
    expect(t.malformed[0]?.reason).toMatch(/missing or bad/);
    expect(parseConntrackLine(DNAT_LINE.replace("sport=46612", "sport=99999")).ok).toBe(false);
  });
});

describe("copy keeping function (third embodiment, Fig. 13)", () => {
  const [dnat] = parseConntrackListing(DNAT_LINE, VIPS).entries as [ConnEntry];
  const [full] = parseConntrackListing(FULLNAT_LINE, VIPS).entries as [ConnEntry];

  it("embodiment 1 keeps 901, 902, 905, 906-908 only; 903/904 come from the control function", () => {
    const row = toCopyRow(dnat, "dnat");
    expect(Object.keys(row).sort()).toEqual(
      [
        "assured",
        "clientAddr",
        "clientPort",
        "mark",
        "protocol",
        "seenReply",
        "serverPort",
        "tcpState",
        "timeoutS",
      ].sort(),
    );
    const store = new CopyStore("dnat");
    store.apply("lba", 1, "full", [dnat]);
    expect(store.restore("lba", { vip: "198.18.0.100", vipPort: 80, serverAddr: "198.19.0.10" })).toEqual([
      dnat,
    ]);
  });

  it("embodiment 2 keeps everything but the server address 904", () => {
    const row = toCopyRow(full, "fullnat");
    expect(row).not.toHaveProperty("serverAddr");
    expect(row.internalAddr).toBe("198.19.0.100");
    expect(row.vip).toBe("198.18.0.100");
    const store = new CopyStore("fullnat");
    store.apply("lba", 1, "full", [full]);
    expect(store.restore("lba", { vip: "198.18.0.100", vipPort: 80, serverAddr: "198.19.0.10" })).toEqual([
      full,
    ]);
    expect(store.restore("lba", { vip: "198.18.0.101", vipPort: 80, serverAddr: "198.19.0.10" })).toEqual([]);
  });

  it("a full push replaces, a delta adds/removes, an older generation is ignored", () => {
    const store = new CopyStore("dnat");
    const other = { ...dnat, clientPort: 1000 };
    store.apply("lba", 5, "full", [dnat, other]);
    expect(store.size("lba")).toBe(2);
    expect(store.apply("lba", 4, "full", [])).toBe(false);
    expect(store.size("lba")).toBe(2);
    store.apply("lba", 6, "delta", [], [other]);
    expect(store.size("lba")).toBe(1);
    store.apply("lba", 7, "full", [other]);
    expect(store.copyRows("lba", "198.18.0.100").map((r) => r.clientPort)).toEqual([1000]);
  });

  it("a push cut short (balancer died between parts) keeps the last complete copy", () => {
    const store = new CopyStore("dnat");
    const conns = Array.from({ length: 6 }, (_, i) => ({ ...dnat, clientPort: 2000 + i }));
    store.apply("lba", 1, "full", conns.slice(0, 3), [], 1, 0, 2);
    store.apply("lba", 1, "full", conns.slice(3), [], 1, 1, 2);
    expect(store.size("lba")).toBe(6);
    // Generation 2: only its first part arrives, with a newer state of one connection.
    store.apply("lba", 2, "full", [{ ...conns[0], tcpState: "FIN_WAIT" } as ConnEntry], [], 2, 0, 3);
    const rows = store.copyRows("lba", "198.18.0.100");
    expect(rows).toHaveLength(6);
    expect(rows.find((r) => r.clientPort === 2000)?.tcpState).toBe("FIN_WAIT");
  });
});

describe("Modification 1: the server's TCP/IP connection table (Fig. 14) as the copy", () => {
  it("rebuilds embodiment 1 entries from /proc/net/tcp, skipping what it does not understand", () => {
    // 198.19.0.10:8080 <- 198.18.0.10:46612 established; the listener; another port; a
    // connection closing (FIN_WAIT1); garbage. Addresses as a little-endian host prints them.
    const out = [
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
      "   0: 0A0013C6:1F90 0A0012C6:B614 01 00000000:00000000 00:00000000 00000000     0        0 0 1",
      "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1",
      "   2: 0A0013C6:0016 0A0012C6:1388 01 00000000:00000000 00:00000000 00000000     0        0 0 1",
      "   3: 0A0013C6:1F90 0A0012C6:B615 04 00000000:00000000 00:00000000 00000000     0        0 0 1",
      "   4: garbage here and there",
      "",
    ].join("\n");
    const ctx = { vip: "198.18.0.100", vipPort: 80, serverAddr: "198.19.0.10", serverPort: 8080 };
    const r = entriesFromSocketTable(out, ctx, true);
    expect(r.malformed).toBe(1);
    expect(r.entries).toHaveLength(1);
    // A big-endian host prints the bytes in order.
    expect(
      entriesFromSocketTable(out.replace("0A0012C6:B614", "C612000A:B614"), ctx, false).entries[0]
        ?.clientAddr,
    ).toBe("198.18.0.10");
    const [dnat] = parseConntrackListing(DNAT_LINE, VIPS).entries as [ConnEntry];
    expect(r.entries[0]).toEqual({ ...dnat, timeoutS: 432_000 });
  });

  it("is refused for full NAT (the server's peers are not the clients)", () => {
    const r = NatlbSection.safeParse({
      embodiment: "fullnat",
      controller: { host: "s5c", address: "198.18.10.13" },
      balancers: { lba: { external: "eth0", internal: "eth1", address: "198.18.10.2" } },
      vips: [
        {
          address: "198.51.100.11",
          internal: "198.18.10.101",
          owner: "lba",
          servers: [{ host: "s5a", address: "198.18.10.11", port: 8080 }],
        },
      ],
      keeper: { source: "socket-table" },
      control: { key: "00112233445566778899aabbccddeeff" },
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["keeper", "source"]);
  });
});

describe("wire check: captures on both sides of the balancers", () => {
  // A TCP segment with a timestamp option, as a capture would hold it.
  function frame(src: string, dst: string, seq: number, payload: number, tsval: number): PcapRecord {
    const ts = new Uint8Array([1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
    new DataView(ts.buffer).setUint32(4, tsval);
    const flags = {
      fin: false,
      syn: false,
      rst: false,
      psh: true,
      ack: true,
      urg: false,
      ece: false,
      cwr: false,
    };
    const tcp = encodeTcp(
      {
        srcPort: 40000,
        dstPort: 80,
        seq,
        ack: 7,
        flags,
        window: 500,
        urgentPointer: 0,
        options: ts,
        payload: new Uint8Array(payload),
      },
      src,
      dst,
    );
    const ip = encodeIpv4({ src, dst, protocol: IP_PROTOCOL.tcp, ttl: 64, payload: tcp });
    const data = encodeEthernet({
      dst: "02:00:00:00:00:02",
      src: "02:00:00:00:00:01",
      etherType: ETHERTYPE.ipv4,
      payload: ip,
    });
    return { tsMs: 1000, caplen: data.length, origlen: data.length, data };
  }
  const outerDir = (src: string, dst: string) =>
    dst === "198.51.100.11" ? true : src === "198.51.100.11" ? false : undefined;
  const innerDir = (src: string, dst: string) =>
    dst === "198.18.10.11" ? true : src === "198.18.10.11" ? false : undefined;
  const seg = (r: PcapRecord, d: typeof outerDir) => segmentOf(r, d) as Segment;
  const win = { from: 0, to: 2000 };

  it("matches a segment across NAT, and a GSO packet split in two by its bytes", () => {
    const sent = [seg(frame("203.0.113.11", "198.51.100.11", 1, 2800, 99), outerDir)];
    const arrived = [
      seg(frame("203.0.113.11", "198.18.10.11", 1, 1400, 99), innerDir),
      seg(frame("203.0.113.11", "198.18.10.11", 1401, 1400, 99), innerDir),
    ];
    expect(compareCaptures(sent, arrived, win).c2s).toEqual({ sent: 2800, lost: 0, duplicated: 0 });
  });

  it("sees a lost and a duplicated segment", () => {
    const a = seg(frame("203.0.113.11", "198.51.100.11", 1, 100, 1), outerDir);
    const b = seg(frame("203.0.113.11", "198.51.100.11", 101, 100, 2), outerDir);
    const b2 = seg(frame("203.0.113.11", "198.18.10.11", 101, 100, 2), innerDir);
    const r = compareCaptures([a, b], [b2, b2], win);
    expect(r.c2s).toEqual({ sent: 200, lost: 100, duplicated: 100 });
    expect(r.examples).toHaveLength(2);
    // A TCP retransmission has a new TSval: a packet of its own, not a duplicate.
    const retrans = seg(frame("203.0.113.11", "198.18.10.11", 101, 100, 3), innerDir);
    expect(compareCaptures([b], [b2, retrans], win).c2s.duplicated).toBe(0);
  });
});

describe("load assignment (communication load assignment step)", () => {
  const balancers = ["lba", "lbb", "lbc"];
  const arb = fc.record({
    loads: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 12 }),
    owners: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 12, maxLength: 12 }),
    healthy: fc.subarray(balancers, { minLength: 1 }),
  });

  it("gives a failed balancer nothing and never worsens the balance", () => {
    fc.assert(
      fc.property(arb, ({ loads, owners, healthy }) => {
        const vips = loads.map((load, i) => ({
          vip: `v${i}`,
          load,
          owner: (owners[i] ?? 0) < 3 ? balancers[owners[i] ?? 0] : undefined,
        }));
        const r = computeAssignment(vips, healthy);
        for (const owner of r.assignment.values()) expect(healthy).toContain(owner);
        expect(r.assignment.size).toBe(vips.length);
        const total = loads.reduce((a, b) => a + b, 0);
        expect([...r.loads.values()].reduce((a, b) => a + b, 0)).toBe(total);
        // Each healthy balancer's load is at most the mean plus the biggest VIP.
        const mean = total / healthy.length;
        const biggest = Math.max(...loads);
        for (const l of r.loads.values()) expect(l).toBeLessThanOrEqual(mean + biggest);
        // VIPs already on healthy balancers move only if that helped.
        for (const m of r.moves)
          if (m.from && healthy.includes(m.from)) expect(r.moves.length).toBeGreaterThan(0);
      }),
    );
  });

  it("evens skewed loads across two balancers to within 15% of the mean", () => {
    const vips = [900, 700, 500, 300, 200, 200, 100, 100].map((load, i) => ({
      vip: `v${i}`,
      load,
      owner: "lba",
    }));
    const r = computeAssignment(vips, ["lba", "lbb"]);
    expect(r.imbalance).toBeLessThanOrEqual(0.15);
    expect(r.moves.every((m) => m.to === "lbb")).toBe(true);
  });

  it("moves every VIP of a failed balancer to the survivors and evens them", () => {
    const vips = [
      { vip: "a1", load: 500, owner: "lba" },
      { vip: "a2", load: 100, owner: "lba" },
      { vip: "b1", load: 300, owner: "lbb" },
      { vip: "c1", load: 300, owner: "lbc" },
    ];
    const r = computeAssignment(vips, ["lbb", "lbc"]);
    expect(r.moves.map((m) => m.vip)).toEqual(expect.arrayContaining(["a1", "a2"]));
    expect([...r.assignment.values()]).not.toContain("lba");
    // 1200 over two: 600 each is reachable (a1 + a2 | b1 + c1) and found.
    expect([...r.loads.values()].sort()).toEqual([600, 600]);
  });
});

describe("move journal", () => {
  it("survives a torn last line and lists unfinished moves", () => {
    const file = join(mkdtempSync(join(tmpdir(), "natlb-j-")), "moves.jsonl");
    const j = new MoveJournal(file);
    j.append({ ev: "begin", at: 1, move: { id: "m1", vip: "v", from: "lba", to: "lbb", kind: "planned" } });
    j.append({ ev: "step", at: 2, id: "m1", step: "transition", ms: 1 });
    j.append({ ev: "begin", at: 3, move: { id: "m2", vip: "w", from: "lba", to: "lbb", kind: "planned" } });
    j.append({ ev: "done", at: 4, id: "m2", outcome: "completed" });
    writeFileSync(file, `${readFileSync(file, "utf8")}{"ev":"step","at":5,"id":"m1","st`);
    const open = j.unfinished();
    expect(open.map((r) => r.move.id)).toEqual(["m1"]);
    expect(open[0]?.steps).toEqual(["transition"]);
  });
});

describe("natlb: section", () => {
  it("names the file path and value of a bad owner", () => {
    const r = NatlbSection.safeParse({
      embodiment: "dnat",
      controller: { host: "s5c", address: "198.18.10.13" },
      balancers: { lba: { external: "eth0", internal: "eth1", address: "198.18.10.2" } },
      vips: [
        {
          address: "198.51.100.11",
          internal: "198.18.10.101",
          owner: "lbz",
          servers: [{ host: "s5a", address: "198.18.10.11", port: 8080 }],
        },
      ],
      control: { key: "00112233445566778899aabbccddeeff" },
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["vips", 0, "owner"]);
    expect(r.error?.issues[0]?.message).toContain('no balancer named "lbz"');
  });
});
