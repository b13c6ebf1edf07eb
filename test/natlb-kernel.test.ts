// NAT-LB phase 1 (seed 002): the kernel recipe proven in namespaces this test builds
// itself. Embodiment 1 (DNAT) and 2 (full NAT), strict conntrack answering a mid-stream
// packet without entry with a RST, and live TCP connections surviving a conntrack entry
// move + VIP move between two balancer namespaces; the naive order resets them.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ipBatch, run, runInNamespace } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { namespacesOf, teardownPrefix } from "../lib/lab/teardown.ts";
import { namespaceHost } from "../lib/remote/command.ts";
import { waitUntil } from "../lib/remote/wait.ts";
import { Balancer } from "../lib/roles/natlb/balancer.ts";
import { type NatlbConfig, NatlbSection } from "../lib/roles/natlb/config.ts";
import { type ConnEntry, entryToInsertLine } from "../lib/roles/natlb/conn-table.ts";
import { LocalAgent } from "../lib/roles/natlb/local-agent.ts";
import { localPorts } from "../lib/roles/natlb/local-port.ts";
import {
  type BalancerPort,
  ControllerCrash,
  type MoveContext,
  MoveJournal,
  type MoveKind,
  type MoveReport,
  moveVip,
  recoverMoves,
} from "../lib/roles/natlb/move.ts";
import { NfqueueHold } from "../lib/roles/natlb/nfqueue-hold.ts";
import type { ClientLoadReport } from "../lib/traffic/http-load.ts";
import type { WebServerStats } from "../lib/traffic/http-server.ts";

const VIP = "198.18.0.100";
const VIP_INTERNAL = "198.19.0.100";
const SERVER = "198.19.0.10";
const CLIENT = "198.18.0.10";

function config(embodiment: "dnat" | "fullnat"): NatlbConfig {
  return NatlbSection.parse({
    embodiment,
    controller: { host: "s1", address: "198.19.0.10" },
    balancers: {
      a: { external: "eth0", internal: "eth1", address: "198.19.0.1" },
      b: { external: "eth0", internal: "eth1", address: "198.19.0.2" },
    },
    vips: [
      {
        label: "31a-IP-1",
        address: VIP,
        port: 80,
        internal: VIP_INTERNAL,
        servers: [{ host: "s1", address: SERVER, port: 8080 }],
        owner: "a",
      },
    ],
    control: { key: "00112233445566778899aabbccddeeff" },
  });
}

/** c (client) -- ext -- a, b -- int -- s1 (server); the bridges live in <prefix>-sw. */
async function buildNamespaces(prefix: string, embodiment: "dnat" | "fullnat"): Promise<void> {
  const ns = (h: string) => namespaceName(prefix, h);
  const hosts = ["sw", "c", "a", "b", "s1"];
  await run(["ip", "-batch", "-"], { input: hosts.map((h) => `netns add ${ns(h)}`).join("\n") + "\n" });
  await ipBatch(ns("sw"), [
    "link add ext type bridge",
    "link add int type bridge",
    "link set ext up",
    "link set int up",
    "link set lo up",
  ]);
  const plugs: [string, string, string][] = [
    ["c", "eth0", "ext"],
    ["a", "eth0", "ext"],
    ["b", "eth0", "ext"],
    ["a", "eth1", "int"],
    ["b", "eth1", "int"],
    ["s1", "eth0", "int"],
  ];
  await ipBatch(
    undefined,
    plugs.map(([h, i]) => `link add ${i} netns ${ns(h)} type veth peer name ${h}${i} netns ${ns("sw")}`),
  );
  await ipBatch(
    ns("sw"),
    plugs.map(([h, i, br]) => `link set ${h}${i} master ${br} up`),
  );
  const addr: Record<string, string[]> = {
    c: ["addr add 198.18.0.10/24 dev eth0", "link set eth0 up"],
    a: [
      "addr add 198.18.0.1/24 dev eth0",
      "addr add 198.19.0.1/24 dev eth1",
      "link set eth0 up",
      "link set eth1 up",
    ],
    b: [
      "addr add 198.18.0.2/24 dev eth0",
      "addr add 198.19.0.2/24 dev eth1",
      "link set eth0 up",
      "link set eth1 up",
    ],
    // Embodiment 1: the server answers through the balancer that owns its VIP (the VIP's
    // internal address is its gateway). Embodiment 2 needs no route to the clients.
    s1: [
      "addr add 198.19.0.10/24 dev eth0",
      "link set eth0 up",
      ...(embodiment === "dnat" ? [`route add default via ${VIP_INTERNAL}`] : []),
    ],
  };
  for (const [h, cmds] of Object.entries(addr)) await ipBatch(ns(h), ["link set lo up", ...cmds]);
}

interface Rig {
  prefix: string;
  journal: MoveJournal;
  cfg: NatlbConfig;
  a: Balancer;
  b: Balancer;
  web: LocalAgent;
  clients: LocalAgent;
}

async function startLoad(
  rig: Rig,
  id: string,
  connections: number,
  downloads: number,
): Promise<ClientLoadReport> {
  return rig.clients.call<ClientLoadReport>("start", {
    id,
    target: VIP,
    port: 80,
    connections,
    requestIntervalMs: 100,
    downloads,
    downloadBytes: 2_000_000,
    downloadRate: 200_000,
    rampMs: 200,
    stallMs: 1000,
  });
}

async function report(rig: Rig, id: string): Promise<ClientLoadReport> {
  return rig.clients.call<ClientLoadReport>("report", { id });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let moveSeq = 0;
function move(
  rig: Rig,
  from: string,
  to: string,
  kind: MoveKind,
  onStep?: MoveContext["onStep"],
): Promise<MoveReport> {
  return moveVip(
    {
      balancers: localPorts([rig.a, rig.b]),
      journal: rig.journal,
      naiveGapMs: 300,
      ...(onStep ? { onStep } : {}),
    },
    { id: `m${++moveSeq}`, vip: VIP, from, to, kind },
  );
}

function newBalancer(rig: Rig, name: "a" | "b"): Balancer {
  const ns = namespaceName(rig.prefix, name);
  const exec = namespaceHost(ns);
  return new Balancer(name, rig.cfg, exec, new NfqueueHold(rig.cfg, exec, { netns: ns }), { namespace: ns });
}

describe.each(["dnat", "fullnat"] as const)("NAT-LB kernel recipe, embodiment %s", (embodiment) => {
  const rig = {} as Rig;

  beforeAll(async () => {
    rig.prefix = newRunPrefix();
    rig.cfg = config(embodiment);
    try {
      await buildNamespaces(rig.prefix, embodiment);
      rig.journal = new MoveJournal(join(mkdtempSync(join(tmpdir(), "natlb-")), "moves.jsonl"));
      for (const name of ["a", "b"] as const) {
        rig[name] = newBalancer(rig, name);
      }
      await rig.a.setup();
      await rig.b.setup();
      rig.web = LocalAgent.start(namespaceName(rig.prefix, "s1"), "natlb-web");
      await rig.web.call("start", { port: 8080, name: "s1" });
      rig.clients = LocalAgent.start(namespaceName(rig.prefix, "c"), "natlb-clients");
    } catch (e) {
      await teardownPrefix(rig.prefix);
      throw e;
    }
  });

  afterAll(async () => {
    await rig.clients?.stop();
    await rig.web?.stop();
    await rig.a?.teardown();
    await rig.b?.teardown();
    // A stopped balancer leaves no entry of its VIPs behind (they would go on translating).
    const left: Record<string, string> = {};
    for (const h of ["a", "b"]) {
      const r = await run(
        ["ip", "netns", "exec", namespaceName(rig.prefix, h), "conntrack", "-L", "-d", VIP],
        {
          allowFailure: true,
        },
      );
      left[h] = r.stdout.trim();
    }
    await teardownPrefix(rig.prefix);
    expect(await namespacesOf(rig.prefix)).toEqual([]);
    expect(left, "entries of the VIP left on the balancers' hosts").toEqual({ a: "", b: "" });
  });

  it("translates accesses to the VIP: the owner's conntrack holds them in the seed's columns", async () => {
    const start = await startLoad(rig, "basic", 5, 0);
    expect(start.established).toBe(5);
    await sleep(300);
    const r = await rig.clients.call<ClientLoadReport>("stop", { id: "basic" });
    expect(r.requestsOk).toBeGreaterThan(5);
    expect(r.resets + r.corrupt + r.failedConnects).toBe(0);
    const entries = await rig.a.exportEntries(VIP);
    expect(entries.length).toBeGreaterThanOrEqual(5);
    const e = entries[0];
    expect(e?.clientAddr).toBe(CLIENT);
    expect(e?.serverAddr).toBe(SERVER);
    expect(e?.serverPort).toBe(8080);
    if (embodiment === "fullnat") expect(e?.internalAddr).toBe(VIP_INTERNAL);
    else expect(e?.internalAddr).toBeUndefined();
    // The server sees the client itself (embodiment 1) or the VIP's internal address (2, Fig. 11B).
    const stats = await rig.web.call<WebServerStats>("stats");
    const peers = Object.keys(stats.peers);
    expect(peers).toEqual([embodiment === "dnat" ? CLIENT : VIP_INTERNAL]);
    expect(await rig.b.exportEntries(VIP)).toEqual([]);
  });

  it("strict conntrack: a mid-stream packet with no entry is answered with a TCP RST", async () => {
    await startLoad(rig, "strict", 4, 0);
    await sleep(200);
    const before = await rig.a.counters();
    expect(await rig.a.deleteEntries(VIP)).toBeGreaterThanOrEqual(4);
    await sleep(600);
    const r = await rig.clients.call<ClientLoadReport>("stop", { id: "strict" });
    expect(r.resets).toBe(4);
    const after = await rig.a.counters();
    expect(after.invalidRejected).toBeGreaterThan(before.invalidRejected);
  });

  it("live connections survive a conntrack entry move + VIP move (entries first, then route)", async () => {
    const start = await startLoad(rig, "move", 40, 4);
    expect(start.established).toBe(44);
    await sleep(500);
    const moved = await move(rig, "a", "b", "entries-first");
    expect(moved.outcome).toBe("completed");
    expect(moved.entriesMoved).toBeGreaterThanOrEqual(44);
    const mid = await report(rig, "move");
    await sleep(1500);
    const end = await report(rig, "move");
    expect(end.resets).toBe(0);
    expect(end.corrupt).toBe(0);
    expect(end.stalls).toBe(0);
    expect(end.open).toBe(44);
    // Traffic goes on through b now: requests keep being answered and b counts them.
    expect(end.requestsOk).toBeGreaterThan(mid.requestsOk + 40);
    expect(await rig.b.ownedVips()).toEqual([VIP]);
    expect(await rig.a.ownedVips()).toEqual([]);
    expect((await rig.a.exportEntries(VIP)).length).toBe(0);
    const bCounters = await rig.b.counters();
    expect(bCounters.vips[0]?.packets).toBeGreaterThan(100);
    // And back again, so the next test starts from a.
    await move(rig, "b", "a", "entries-first");
    await sleep(800);
    const back = await rig.clients.call<ClientLoadReport>("stop", { id: "move" });
    expect(back.resets + back.corrupt + back.stalls).toBe(0);
    expect(back.open).toBe(44);
  });

  it("the naive order (route first, entries after, no transition mode) resets connections", async () => {
    await startLoad(rig, "naive", 40, 0);
    await sleep(500);
    await move(rig, "a", "b", "naive");
    await sleep(800);
    const r = await rig.clients.call<ClientLoadReport>("stop", { id: "naive" });
    // Every connection that sent a packet during the 300 ms gap was reset by b.
    expect(r.resets).toBeGreaterThan(0);
    const bCounters = await rig.b.counters();
    expect(bCounters.invalidRejected).toBeGreaterThan(0);
    await move(rig, "b", "a", "entries-first");
  });

  it("the four steps (transition, route, entries, end) keep every connection; held packets drain in order", async () => {
    await startLoad(rig, "planned", 40, 4);
    await sleep(500);
    const before = await rig.b.counters();
    // A move takes a few milliseconds here, too short for this light load (~600 packets/s)
    // to be sure to send b anything in between: the route switch is followed by a 100 ms
    // pause, so packets certainly reach b before its entries do.
    const m = await move(rig, "a", "b", "planned", (_id, step) =>
      step === "route" ? sleep(100) : undefined,
    );
    expect(m.outcome).toBe("completed");
    expect(m.steps.map((s) => s.step)).toEqual(["transition", "precopy", "route", "entries", "end"]);
    expect(m.entriesMoved).toBeGreaterThanOrEqual(44);
    // Packets arrived at b between the route switch and the entries, and were held, not rejected.
    expect(m.hold.held).toBeGreaterThan(0);
    expect(m.hold.released).toBe(m.hold.held);
    expect(m.hold.overflowDropped + m.hold.timeoutDropped + m.hold.discarded).toBe(0);
    expect(m.hold.inOrder).toBe(true);
    expect(m.hold.holdMs).toBeGreaterThan(0);
    await sleep(1200);
    const r = await rig.clients.call<ClientLoadReport>("stop", { id: "planned" });
    expect(r.resets).toBe(0);
    expect(r.corrupt).toBe(0);
    expect(r.stalls).toBe(0);
    expect(r.open).toBe(44);
    const after = await rig.b.counters();
    expect(after.invalidRejected).toBe(before.invalidRejected);
    expect(rig.b.modes.get(VIP)).toBe("normal");
    expect(rig.a.modes.get(VIP)).toBeUndefined();
    const back = await move(rig, "b", "a", "planned");
    expect(back.outcome).toBe("completed");
  });

  it("a move that fails after the route switch is rolled back: the old owner takes the VIP back, no connection lost", async () => {
    await startLoad(rig, "rollback", 40, 4);
    await sleep(500);
    const ports = localPorts([rig.a, rig.b]);
    const realA = ports.get("a") as BalancerPort;
    // Failure injection: the old owner cannot deliver the entries in step 3.
    const failingA: BalancerPort = {
      name: "a",
      beginTransition: (v) => realA.beginTransition(v),
      abortTransition: (v) => realA.abortTransition(v),
      claim: (v) => realA.claim(v),
      release: (v) => realA.release(v),
      sendEntries: async (v, to, id, phase) => {
        if (phase === "final") throw new Error("injected: entry transfer failed");
        return realA.sendEntries(v, to, id, phase);
      },
      endSwitch: (v, side) => realA.endSwitch(v, side),
    };
    ports.set("a", failingA);
    const m = await moveVip(
      { balancers: ports, journal: rig.journal },
      { id: `m${++moveSeq}`, vip: VIP, from: "a", to: "b", kind: "planned" },
    );
    expect(m.outcome).toBe("rolled-back");
    expect(m.error).toContain("injected");
    expect(m.steps.map((s) => s.step)).toEqual(["transition", "precopy", "route"]);
    expect(await rig.a.ownedVips()).toEqual([VIP]);
    expect(await rig.b.ownedVips()).toEqual([]);
    expect(rig.b.modes.get(VIP)).toBeUndefined();
    expect(rig.journal.unfinished()).toEqual([]);
    await sleep(1500);
    // b's copies go once the grace period for packets still on their way to it is over.
    expect(await rig.b.exportEntries(VIP)).toEqual([]);
    const r = await rig.clients.call<ClientLoadReport>("stop", { id: "rollback" });
    // Packets held by b were dropped on rollback; TCP sent them again through a.
    expect(r.resets + r.corrupt).toBe(0);
    expect(r.open).toBe(44);
  });

  it("a balancer holding the VIP in neither mode refuses its packets with an error and forwards nothing", async () => {
    expect((await move(rig, "a", "b", "planned")).outcome).toBe("completed");
    const client = namespaceName(rig.prefix, "c");
    const aMac = (
      JSON.parse(
        (await run(["ip", "-n", namespaceName(rig.prefix, "a"), "-j", "link", "show", "eth0"])).stdout,
      ) as {
        address: string;
      }[]
    )[0]?.address as string;
    const before = await rig.a.counters();
    const web0 = await rig.web.call<WebServerStats>("stats");
    // A client whose ARP cache still points at a (the old owner) after the move.
    await run([
      "ip",
      "-n",
      client,
      "neigh",
      "replace",
      VIP,
      "lladdr",
      aMac,
      "dev",
      "eth0",
      "nud",
      "permanent",
    ]);
    try {
      const r = await startLoad(rig, "stale", 3, 0);
      expect(r.failedConnects).toBe(3);
      expect(Object.keys(r.errorCodes)).toEqual(["ECONNREFUSED"]);
      await rig.clients.call("stop", { id: "stale" });
    } finally {
      await run(["ip", "-n", client, "neigh", "del", VIP, "dev", "eth0"], { allowFailure: true });
    }
    const after = await rig.a.counters();
    expect(after.unknownVip - before.unknownVip).toBeGreaterThanOrEqual(3);
    const web1 = await rig.web.call<WebServerStats>("stats");
    expect(web1.requests).toBe(web0.requests);
    expect((await move(rig, "b", "a", "planned")).outcome).toBe("completed");
  });

  it("a controller crash after the route switch: held packets age out (counted), recovery completes the move", async () => {
    await startLoad(rig, "crash", 20, 2);
    await sleep(500);
    const id = `m${++moveSeq}`;
    await expect(
      moveVip(
        {
          balancers: localPorts([rig.a, rig.b]),
          journal: rig.journal,
          onStep: (_id, step) => {
            if (step === "route") throw new ControllerCrash(step);
          },
        },
        { id, vip: VIP, from: "a", to: "b", kind: "planned" },
      ),
    ).rejects.toBeInstanceOf(ControllerCrash);
    expect(rig.journal.unfinished().map((r) => r.move.id)).toEqual([id]);
    expect(rig.b.modes.get(VIP)).toBe("transition");
    // Nobody ends the switch: b holds the VIP's packets up to maxHoldMs (3 s), then drops them.
    await sleep(rig.cfg.transition.maxHoldMs + 800);
    const [recovered] = await recoverMoves({ balancers: localPorts([rig.a, rig.b]), journal: rig.journal });
    expect(recovered?.outcome).toBe("completed");
    expect(recovered?.steps.map((s) => s.step)).toEqual(["entries", "end"]);
    expect(recovered?.hold.timeoutDropped).toBeGreaterThan(0);
    expect(rig.journal.unfinished()).toEqual([]);
    await sleep(3000);
    const r = await rig.clients.call<ClientLoadReport>("stop", { id: "crash" });
    // TCP retransmitted what was dropped: slow (stalls), but nothing was reset.
    expect(r.resets + r.corrupt).toBe(0);
    expect(r.open).toBe(22);
    expect((await move(rig, "b", "a", "planned")).outcome).toBe("completed");
  });

  it("a balancer starting where an earlier one left entries of its VIPs removes them (a physical lab's hosts are reused)", async () => {
    const ns = namespaceName(rig.prefix, "b");
    // Left in b's conntrack by an earlier balancer on that host: a closed access of another
    // run (TIME_WAIT); full NAT: its reply tuple (the server towards the VIP's internal
    // address, port 40000) is the one a live access of this run was given by a.
    const stale: ConnEntry = {
      protocol: "tcp",
      clientAddr: CLIENT,
      clientPort: 40001,
      vip: VIP,
      vipPort: 80,
      serverAddr: SERVER,
      serverPort: 8080,
      tcpState: "TIME_WAIT",
      seqDelta: 0,
      timeoutS: 120,
      seenReply: true,
      assured: true,
      mark: 0,
      ...(embodiment === "fullnat" ? { internalAddr: VIP_INTERNAL, internalPort: 40000 } : {}),
    };
    const live: ConnEntry = {
      ...stale,
      clientAddr: "198.18.0.11",
      clientPort: 40000,
      tcpState: "ESTABLISHED",
      timeoutS: 300,
    };
    // b gave the VIP back to a in the last move; its entries go after the grace period.
    await waitUntil(async () => (await rig.b.exportEntries(VIP)).length === 0, {
      timeoutMs: 5000,
      what: "b to delete the VIP's entries after the grace period",
    });
    // b's balancer ends (as a killed agent would, it leaves an entry behind) ...
    await rig.b.teardown();
    let tables = "";
    await waitUntil(
      async () => {
        tables = (await runInNamespace(ns, ["nft", "list", "tables"])).stdout;
        return !tables.includes("natlb");
      },
      { timeoutMs: 5000, what: "b's natlb table to go with its balancer", last: () => tables },
    );
    await run(["ip", "netns", "exec", ns, "conntrack", ...entryToInsertLine(stale).split(" ")]);
    // ... and a new one starts on the same host.
    rig.b = newBalancer(rig, "b");
    expect(await rig.b.exportEntries(VIP)).toHaveLength(1);
    if (embodiment === "fullnat")
      // What a move to b ran into on the reused hosts: the import clashes with the stale entry's reply tuple.
      await expect(rig.b.importEntries([live])).rejects.toThrow(/conntrack create failed/);
    await rig.b.setup();
    expect(rig.b.staleEntriesRemoved).toBe(1);
    expect(await rig.b.exportEntries(VIP)).toEqual([]);
    expect((await rig.b.importEntries([live])).imported).toBe(1);
    expect(await rig.b.deleteEntries(VIP)).toBe(1);
  });
});
