// NAT-LB control channel (control-channel.ts) on loopback: requests confirmed by acks,
// retransmission of a request already done answered from the cache (not redone), and
// unauthenticated, truncated and replayed datagrams counted and dropped.
import { afterEach, describe, expect, it } from "vitest";
import { INSIDER_KINDS, INSIDER_SEQUENCE_BASE, insiderDatagram } from "../lib/attack/natlb-insider.ts";
import { waitUntil } from "../lib/remote/wait.ts";
import { ControlChannel, rejectReasonOf } from "../lib/roles/natlb/control-channel.ts";
import { encodeNatlb } from "../lib/wire/natlb.ts";

const KEY = "00112233445566778899aabbccddeeff";
const opened: ControlChannel[] = [];

async function pair(handler: (calls: number) => number) {
  const server = await ControlChannel.open({ id: 10, keyHex: KEY, port: 0, address: "127.0.0.1" });
  const client = await ControlChannel.open({ id: 1, keyHex: KEY, port: 0, address: "127.0.0.1" });
  opened.push(server, client);
  let calls = 0;
  server.setHandler(async (msg) => {
    calls++;
    return msg.type === 1 ? handler(calls) : 0;
  });
  return { server, client, calls: () => calls, dest: { address: "127.0.0.1", port: server.port } };
}

afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const body = { type: 1 as const, vip: "198.51.100.11", from: 0, to: 10, enter: true };

describe("NAT-LB control channel", () => {
  it("a request resolves with the ack's detail once the handler has run", async () => {
    const { client, dest, calls } = await pair(() => 42);
    expect(await client.request(body, dest)).toBe(42);
    expect(calls()).toBe(1);
  });

  it("a handler error becomes a failed ack and a rejected request", async () => {
    const server = await ControlChannel.open({ id: 10, keyHex: KEY, port: 0, address: "127.0.0.1" });
    const client = await ControlChannel.open({ id: 1, keyHex: KEY, port: 0, address: "127.0.0.1" });
    opened.push(server, client);
    server.setHandler(async () => {
      throw new Error("cannot");
    });
    await expect(client.request(body, { address: "127.0.0.1", port: server.port })).rejects.toThrow(
      /refused/,
    );
  });

  it("a flood from one source is cut to its limit before authentication, each refusal counted", async () => {
    const server = await ControlChannel.open({
      id: 10,
      keyHex: KEY,
      port: 0,
      address: "127.0.0.1",
      limits: { senderPerSecond: 10, globalPerSecond: 1000 },
    });
    const client = await ControlChannel.open({ id: 1, keyHex: KEY, port: 0, address: "127.0.0.1" });
    opened.push(server, client);
    const dest = { address: "127.0.0.1", port: server.port };
    // 50 unauthenticated datagrams at once: 10 reach the HMAC check (and fail it), 40 do not.
    for (let i = 0; i < 50; i++) client.sendRaw(new Uint8Array(80).fill(i), dest);
    const until = Date.now() + 5000;
    while (server.counters.received < 50 && Date.now() < until) await sleep(10);
    expect(server.counters.received).toBe(50);
    expect(server.counters.limitedSender + server.counters.badAuth + server.counters.malformed).toBe(50);
    expect(server.counters.limitedSender).toBeGreaterThanOrEqual(39);
    expect(server.counters.limitedGlobal).toBe(0);
  });

  it("a genuine request is answered during a flood of 20,000 junk datagrams from another source; every datagram counted", async () => {
    const server = await ControlChannel.open({
      id: 10,
      keyHex: KEY,
      port: 0,
      address: "127.0.0.1",
      limits: { senderPerSecond: 100, globalPerSecond: 5000 },
    });
    const client = await ControlChannel.open({ id: 1, keyHex: KEY, port: 0, address: "127.0.0.2" });
    const attacker = await ControlChannel.open({ id: 66, keyHex: KEY, port: 0, address: "127.0.0.3" });
    opened.push(server, client, attacker);
    let calls = 0;
    server.setHandler(async () => ++calls);
    const dest = { address: "127.0.0.1", port: server.port };
    const forged = encodeNatlb(
      { type: 1, sender: 1, sequence: 1n, moveId: 0, vip: "198.51.100.11", from: 0, to: 10, enter: true },
      Buffer.from("ffeeddccbbaa99887766554433221100", "hex"),
    );
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) {
      attacker.sendRaw(i % 2 ? forged : forged.subarray(0, i % forged.length), dest);
      if (i % 1000 === 0) await sleep(1);
    }
    expect(await client.request(body, dest)).toBe(1);
    const c = server.counters;
    const until = Date.now() + 5000;
    while (c.limitedSender + c.limitedGlobal + c.badAuth + c.malformed < 20_000 && Date.now() < until)
      await sleep(10);
    // UDP on loopback may drop in the socket buffer; what arrived is all counted.
    expect(c.received).toBe(c.limitedSender + c.limitedGlobal + c.badAuth + c.malformed + c.accepted);
    expect(c.accepted).toBe(1);
    expect(calls).toBe(1);
    // The flood's source got at most its burst (100) plus 100/s through to the HMAC check.
    const seconds = (performance.now() - t0) / 1000;
    expect(c.badAuth + c.malformed).toBeLessThanOrEqual(100 + Math.ceil(100 * seconds) + 1);
    expect(c.limitedSender).toBeGreaterThan(0);
  });

  it("a copy of a request already done gets the cached ack and is not acted on again", async () => {
    const { client, server, dest, calls } = await pair(() => 7);
    const bytes = client.encode(body);
    client.sendRaw(bytes, dest);
    await sleep(100);
    client.sendRaw(bytes, dest);
    await sleep(100);
    expect(calls()).toBe(1);
    expect(server.counters.replayed).toBe(1);
    expect(server.counters.retransmitAnswered).toBe(1);
    expect(server.counters.acksSent).toBe(1);
  });

  it("unauthenticated, truncated and replayed datagrams are counted and dropped", async () => {
    const { client, server, dest, calls } = await pair(() => 0);
    const wrongKey = Buffer.alloc(16, 0x5a);
    client.sendRaw(
      encodeNatlb({ ...body, sender: 1, sequence: client.nextSequence(), moveId: 0 }, wrongKey),
      dest,
    );
    const good = client.encode(body);
    client.sendRaw(good.subarray(0, good.length - 5), dest);
    client.sendRaw(new Uint8Array([1]), dest);
    // A replay of an old, already superseded message (lower sequence than the last accepted).
    const old = client.encode(body);
    const newer = client.encode(body);
    client.sendRaw(newer, dest);
    await sleep(50);
    client.sendRaw(old, dest);
    await sleep(150);
    expect(server.counters.badAuth).toBe(1);
    expect(server.counters.malformed).toBe(2);
    expect(server.counters.replayed).toBe(1);
    expect(server.counters.accepted).toBe(1);
    expect(calls()).toBe(1);
    expect(server.lastRejects.some((r) => r.includes("HMAC"))).toBe(true);
  });

  it("a genuine push re-addressed to a balancer is accepted without a type policy and refused as unexpected with one", async () => {
    // Issue 15's replay kind: balancer 10 pushes a copy (type 5) to a keeper; an attacker
    // on the LAN replays it to balancer 11, which never heard from 10, so its replay window
    // takes it. The receiver's type policy (who may send what) refuses it, counted.
    const open = async (id: number) => {
      const ch = await ControlChannel.open({ id, keyHex: KEY, port: 0, address: "127.0.0.1" });
      opened.push(ch);
      return ch;
    };
    const pusher = await open(10);
    const open11 = await open(11);
    const guarded = await open(12);
    guarded.accepts = (type, sender) => sender === 1 && type >= 1 && type <= 4;
    const push = pusher.encode({
      type: 5,
      balancer: 10,
      kind: "full",
      generation: 1,
      part: 0,
      parts: 1,
      entries: [],
    });
    pusher.sendRaw(push, { address: "127.0.0.1", port: open11.port });
    pusher.sendRaw(push, { address: "127.0.0.1", port: guarded.port });
    await waitUntil(() => open11.counters.received === 1 && guarded.counters.received === 1, {
      timeoutMs: 5000,
      what: "both receivers got the replay",
    });
    expect(open11.counters.accepted).toBe(1);
    expect(guarded.counters.accepted).toBe(0);
    expect(guarded.counters.unexpected).toBe(1);
    expect(guarded.rejects.unexpected).toBe(1);
    expect(guarded.lastRejects.at(-1)).toBe("unexpected type 5 from sender 10");
  });

  it("an insider's sealed messages for an unknown VIP (every type) and an unsolicited ack: acted on without the VIP check, refused before the replay window with it", async () => {
    // Issue 15: someone with the key seals, with a sequence above any genuine one, a
    // transition, route switch, transfer, end of switch, push and load report for
    // 198.51.100.99 (not a VIP of the receiver's lab) and an ack to no request. Without the
    // check (no `vips`) the receiver acts on them and its replay window moves past the
    // genuine sender, whose next request is then refused as a replay. With it each is
    // refused (unknown-vip, unsolicited-ack), nothing runs, the window stays.
    const run = async (vips: string[] | undefined) => {
      const receiver = await ControlChannel.open({
        id: 10,
        keyHex: KEY,
        port: 0,
        address: "127.0.0.1",
        ...(vips ? { vips } : {}),
      });
      const genuine = await ControlChannel.open({ id: 1, keyHex: KEY, port: 0, address: "127.0.0.1" });
      const insider = await ControlChannel.open({ id: 66, keyHex: KEY, port: 0, address: "127.0.0.1" });
      opened.push(receiver, genuine, insider);
      const handled: string[] = [];
      let reports = 0;
      receiver.setHandler(async (msg) => {
        handled.push(`${msg.type}`);
        return 0;
      });
      receiver.onLoadReport = () => reports++;
      const dest = { address: "127.0.0.1", port: receiver.port };
      for (const [i, kind] of INSIDER_KINDS.entries())
        insider.sendRaw(
          insiderDatagram(kind, {
            key: Buffer.from(KEY, "hex"),
            controller: 1,
            balancer: 20,
            other: 21,
            sequence: INSIDER_SEQUENCE_BASE + BigInt(i),
          }),
          dest,
        );
      await waitUntil(() => receiver.counters.received === INSIDER_KINDS.length, {
        timeoutMs: 5000,
        what: "the insider's datagrams received",
      });
      // Then the genuine controller (sender 1) asks for a transition of a known VIP.
      const answer = await genuine
        .request(body, dest, { timeoutMs: 600, retryMs: 200 })
        .then((d) => `ok ${d}`)
        .catch((e: Error) => e.message);
      return { receiver, handled, reports, answer };
    };

    const open = await run(undefined);
    expect(open.handled).toEqual(["1", "2", "3", "4", "5"]);
    expect(open.reports).toBe(1);
    // The ack check needs no configuration: an ack to no request is never taken.
    expect(open.receiver.counters.accepted).toBe(INSIDER_KINDS.length - 1);
    expect(open.receiver.rejects["unsolicited-ack"]).toBe(1);
    expect(open.answer).toMatch(/no ack from 127.0.0.1 for type 1/);
    expect(open.receiver.rejects.replay).toBeGreaterThan(0);

    const guarded = await run(["198.51.100.11", "198.51.100.12"]);
    expect(guarded.handled).toEqual(["1"]);
    expect(guarded.reports).toBe(0);
    expect(guarded.answer).toBe("ok 0");
    expect(guarded.receiver.rejects["unknown-vip"]).toBe(INSIDER_KINDS.length - 1);
    expect(guarded.receiver.rejects["unsolicited-ack"]).toBe(1);
    expect(guarded.receiver.counters.unknownVip).toBe(INSIDER_KINDS.length - 1);
    expect(guarded.receiver.counters.accepted).toBe(1);
    expect(guarded.receiver.rejects.replay).toBe(0);
    expect(guarded.receiver.counters.acksSent).toBe(1);
    expect(guarded.receiver.lastRejects).toContain("unknown VIP 198.51.100.99 in type 2 from sender 1");
  });

  it("decode failures map to one refusal reason each", () => {
    expect(rejectReasonOf("bad HMAC")).toBe("bad-hmac");
    expect(rejectReasonOf("unsupported NAT-LB control version 2")).toBe("version");
    expect(rejectReasonOf("truncated version: need 1 bytes, 0 left")).toBe("length");
    expect(rejectReasonOf("body length 3 disagrees with datagram length 9 (expected 59)")).toBe("length");
    expect(rejectReasonOf("unknown route switch method 9")).toBe("body");
  });

  it("a request to nobody times out with a clear error", async () => {
    const client = await ControlChannel.open({ id: 1, keyHex: KEY, port: 0, address: "127.0.0.1" });
    opened.push(client);
    await expect(
      client.request(body, { address: "127.0.0.1", port: 9 }, { timeoutMs: 400, retryMs: 100 }),
    ).rejects.toThrow(/no ack from 127.0.0.1 for type 1 within 400 ms/);
    expect(client.counters.retransmitted).toBeGreaterThanOrEqual(2);
  });
});
