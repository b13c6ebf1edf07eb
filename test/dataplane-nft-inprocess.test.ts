// The in-process libnftables context (tandem-nftables through lib/dataplane/nft.ts) against
// the real kernel, in a scratch namespace of its own run prefix (removed in afterAll). What
// the kernel holds is always read back independently, with a spawned `nft` in the namespace.
import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type InProcessNft,
  inProcessNft,
  listCounters,
  listSet,
  listSetsJson,
  NftError,
  nftApply,
  readCounter,
  replaceTable,
  updateSet,
} from "../lib/dataplane/nft.ts";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { teardownPrefix } from "../lib/lab/teardown.ts";
import { namespaceHost } from "../lib/remote/command.ts";
import { waitUntil } from "../lib/remote/wait.ts";

const prefix = newRunPrefix();
const ns = namespaceName(prefix, "nftinproc");
const spawned = namespaceHost(ns, { timeoutMs: 30_000 });
const opened: InProcessNft[] = [];
const children: ChildProcess[] = [];

function open(): InProcessNft {
  const nft = inProcessNft({ netns: ns });
  opened.push(nft);
  return nft;
}

/** The tables the kernel has in the namespace, as `family name`, read by a spawned nft. */
async function tables(): Promise<string[]> {
  const r = await run(["ip", "netns", "exec", ns, "nft", "list", "tables"]);
  return r.stdout
    .split("\n")
    .map((l) => l.trim().replace(/^table /, ""))
    .filter(Boolean);
}

beforeAll(async () => {
  await run(["ip", "netns", "add", ns]);
  await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const nft of opened) nft.close();
  await teardownPrefix(prefix);
});

describe("in-process libnftables context", () => {
  const t = { family: "ip", table: "tdinproc" } as const;
  const set = { ...t, set: "peers" };

  it("applies a transaction and lists JSON equal to what a spawned nft -j reads", async () => {
    const nft = open();
    await replaceTable(
      nft,
      t,
      [
        "counter pings { }",
        "set peers { type ipv4_addr; counter; elements = { 127.0.0.1, 198.18.0.7 } }",
        "chain out {",
        "  type filter hook output priority 0; policy accept;",
        "  ip daddr @peers counter name pings",
        "}",
      ].join("\n"),
    );
    await updateSet(nft, set, { add: ["198.18.0.8"], delete: ["198.18.0.7"] });
    // Counters that are not zero, so the comparison covers values the kernel keeps moving.
    await run(["ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.01", "-q", "127.0.0.1"]);

    expect((await listSet(spawned, set)).elements).toEqual([
      { value: "127.0.0.1", counter: { packets: 6, bytes: 6 * 84 } },
      { value: "198.18.0.8", counter: { packets: 0, bytes: 0 } },
    ]);
    expect(await readCounter(nft, t, "pings")).toEqual({ packets: 6, bytes: 6 * 84 });
    const inproc = JSON.parse(await listSetsJson(nft, t)) as { nftables: unknown[] };
    const byNft = JSON.parse(await listSetsJson(spawned, t)) as { nftables: unknown[] };
    // metainfo and the table's one set (with its elements and their counters)
    expect(inproc.nftables.map((o) => Object.keys(o as object)[0])).toEqual(["metainfo", "set"]);
    expect(inproc).toEqual(byNft);
    expect(nft.counters.failures).toBe(0);
  });

  it("reads named counters with libnftnl equal to what a spawned nft -j reads, and names a missing one", async () => {
    const nft = open();
    const c = { family: "ip6", table: "tdcounters" } as const;
    await replaceTable(
      nft,
      c,
      [
        "counter seen { }",
        "counter idle { }",
        "chain out {",
        "  type filter hook output priority 0; policy accept;",
        "  meta l4proto ipv6-icmp counter name seen",
        "}",
      ].join("\n"),
    );
    await run(["ip", "netns", "exec", ns, "ping", "-6", "-c", "4", "-i", "0.01", "-q", "::1"]);
    const bySpawn = await listCounters(spawned, c);
    expect(bySpawn.get("seen")?.packets).toBe(8);
    expect(await listCounters(nft, c)).toEqual(bySpawn);
    expect(await readCounter(nft, c, "seen")).toEqual(bySpawn.get("seen"));
    expect(await readCounter(nft, c, "idle")).toEqual({ packets: 0, bytes: 0 });
    await expect(readCounter(nft, c, "absent")).rejects.toThrow(/ip6 tdcounters absent.*No such file/);
    expect((await listCounters(nft, { family: "ip6", table: "tdnotable" })).size).toBe(0);
  });

  it("listings run off the event loop, beside transactions on the same object", async () => {
    const nft = open();
    const big = { family: "ip", table: "tdbig" } as const;
    // 20,000 elements with counters: a listing long enough (tens of ms) to see the loop turn.
    const elements = Array.from({ length: 20_000 }, (_, i) => `198.18.${(i >> 8) & 0xff}.${i & 0xff}`);
    await replaceTable(
      nft,
      big,
      `set many { type ipv4_addr; counter; elements = { ${elements.join(", ")} } }`,
    );
    let turns = 0;
    let spinning = true;
    const spin = () => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    const listing = listSetsJson(nft, big);
    // A transaction on the same object while the listing runs: the writer has its own context.
    await updateSet(nft, { ...big, set: "many" }, { add: ["198.19.0.1"] });
    const text = await listing;
    spinning = false;
    // (nftables 1.0.6 lists every table's sets here: pick this table's.)
    const set = (
      JSON.parse(text) as { nftables: { set?: { table?: string; elem?: unknown[] } }[] }
    ).nftables.find((o) => o.set?.table === big.table);
    expect(set?.set?.elem?.length).toBeGreaterThanOrEqual(20_000);
    // The loop kept turning while libnftables built and printed the listing.
    expect(turns).toBeGreaterThan(5);
    expect(nft.counters.failures).toBe(0);
  });

  it("a bad script throws NftError naming the bad text; a refused transaction changes nothing", async () => {
    const nft = open();
    const syntax = await nftApply(nft, `add rule ip ${t.table} out ip saddr 198.18.0.1 frobnicate\n`).catch(
      (e: unknown) => e,
    );
    expect(syntax).toBeInstanceOf(NftError);
    expect((syntax as NftError).message).toMatch(/syntax error[\s\S]*frobnicate/);

    const refused = await updateSet(nft, set, { add: ["198.18.0.9"], delete: ["198.18.0.200"] }).catch(
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(NftError);
    expect((refused as NftError).message).toMatch(/198\.18\.0\.200/);
    expect((await listSet(spawned, set)).elements.map((e) => e.value)).not.toContain("198.18.0.9");
    expect(nft.counters.failures).toBe(2);
  });

  it("a table flagged owner dies with the process that made it; a table without the flag stays", async () => {
    // A child node process opens its own context in the namespace, makes both tables, says
    // "ready" and waits to be killed.
    const script = `
      import { openNftContext } from "tandem-nftables";
      const ctx = openNftContext({ netns: ${JSON.stringify(ns)} });
      for (const s of ["add table ip tdowned { flags owner; }", "add table ip tdkept"]) {
        const r = ctx.run(s);
        if (r.code !== 0) { process.stderr.write(r.error); process.exit(3); }
      }
      process.stdout.write("ready\\n");
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    await waitUntil(() => out.includes("ready") || child.exitCode !== null, {
      timeoutMs: 10_000,
      what: "the child's tables",
    });
    expect(err).toBe("");
    expect(await tables()).toEqual(expect.arrayContaining(["ip tdowned", "ip tdkept"]));

    child.kill("SIGKILL");
    await waitUntil(async () => !(await tables()).includes("ip tdowned"), {
      timeoutMs: 10_000,
      what: "the owner table to go",
    });
    await waitUntil(() => child.signalCode !== null || child.exitCode !== null, {
      timeoutMs: 10_000,
      what: "the child to be reaped",
    });
    expect(child.signalCode).toBe("SIGKILL");
    expect(await tables()).toContain("ip tdkept");
  });

  it("nobody else may change an owner table: a spawned nft gets Operation not permitted", async () => {
    const nft = open();
    const owned = { family: "ip", table: "tdmine" } as const;
    await replaceTable(nft, owned, "flags owner;\nset s { type ipv4_addr; counter; }");
    expect(await tables()).toContain("ip tdmine");

    const outside = await updateSet(spawned, { ...owned, set: "s" }, { add: ["198.18.0.20"] }).catch(
      (e: unknown) => e,
    );
    expect(outside).toBeInstanceOf(NftError);
    expect((outside as NftError).message).toMatch(/Operation not permitted/);
    const deleted = await nftApply(spawned, "delete table ip tdmine\n").catch((e: unknown) => e);
    expect((deleted as NftError).message).toMatch(/Operation not permitted/);

    // The owner itself may; the outside attempts left nothing behind.
    await updateSet(nft, { ...owned, set: "s" }, { add: ["198.18.0.21"] });
    expect((await listSet(spawned, { ...owned, set: "s" })).elements.map((e) => e.value)).toEqual([
      "198.18.0.21",
    ]);

    // Closing the context releases it at once.
    nft.close();
    await waitUntil(async () => !(await tables()).includes("ip tdmine"), {
      timeoutMs: 10_000,
      what: "the closed context's table to go",
    });
  });
});
