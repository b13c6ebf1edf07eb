import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deleteTable,
  listCounters,
  listSet,
  NftError,
  nftApply,
  replaceTable,
  syncSet,
  updateSet,
} from "../lib/dataplane/nft.ts";
import { buildForwardingLab, type ForwardingLab, SOURCE_A, SOURCE_B } from "../lib/lab/forwarding-lab.ts";
import { waitUntil } from "../lib/remote/wait.ts";

let lab: ForwardingLab;
const t = { family: "inet", table: "tdnft" } as const;
const set = { ...t, set: "members" };

beforeAll(async () => {
  lab = await buildForwardingLab();
}, 60_000);

afterAll(async () => {
  await lab?.teardown();
});

const BODY = `
  counter seen { }
  set members { type ipv4_addr; flags interval; counter; elements = { ${SOURCE_A}, 198.18.7.0/24 } }
  chain classify { type filter hook forward priority -200; policy accept; ip saddr @members counter name seen; }`;

describe("nft helpers in a namespace", () => {
  it("replaces a table and reads sets with per-element counters and named counters", async () => {
    const fwd = lab.exec.forwarder;
    await replaceTable(fwd, t, BODY);
    await lab.send(SOURCE_A, "n1", 25);
    await waitUntil(() => lab.receivedOf("n1").length >= 25, { timeoutMs: 10_000, what: "25 forwarded" });
    const listing = await listSet(fwd, set);
    expect(listing.type).toBe("ipv4_addr");
    expect(listing.flags).toEqual(["interval"]);
    expect(listing.elements).toEqual([
      { value: SOURCE_A, counter: { packets: 25, bytes: 10 * 32 + 15 * 33 } },
      { value: "198.18.7.0/24", counter: { packets: 0, bytes: 0 } },
    ]);
    expect((await listCounters(fwd, t)).get("seen")).toEqual({ packets: 25, bytes: 10 * 32 + 15 * 33 });
  });

  it("syncSet applies the difference and keeps the counters of elements that stay", async () => {
    const fwd = lab.exec.forwarder;
    expect(await syncSet(fwd, set, [SOURCE_A, SOURCE_B])).toEqual({
      added: [SOURCE_B],
      deleted: ["198.18.7.0/24"],
    });
    const listing = await listSet(fwd, set);
    expect(listing.elements.find((e) => e.value === SOURCE_A)?.counter?.packets).toBe(25);
    expect(listing.elements.map((e) => e.value).sort()).toEqual([SOURCE_A, SOURCE_B]);
    expect(await syncSet(fwd, set, [SOURCE_A, SOURCE_B])).toEqual({ added: [], deleted: [] });
  });

  it("a failing transaction changes nothing and the error carries nft's message", async () => {
    const fwd = lab.exec.forwarder;
    const error = await updateSet(fwd, set, { add: ["198.18.9.9"], delete: ["198.18.9.8"] }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NftError);
    expect((error as NftError).message).toMatch(/element does not exist/);
    expect((await listSet(fwd, set)).elements.map((e) => e.value)).not.toContain("198.18.9.9");

    const syntax = await nftApply(fwd, "add rule inet tdnft classify ip saddr 198.18.1.1 frobnicate\n").catch(
      (e: unknown) => e,
    );
    expect((syntax as NftError).message).toMatch(/syntax error[\s\S]*frobnicate/);
  });

  it("refuses names and elements that could escape the script", async () => {
    const fwd = lab.exec.forwarder;
    await expect(updateSet(fwd, set, { add: ["1.2.3.4 }; flush ruleset; {"] })).rejects.toThrow(
      /set element/,
    );
    await expect(listSet(fwd, { ...t, set: "a b" })).rejects.toThrow(/not a plain identifier/);
  });

  it("replacing a table under load opens no window (every version drops source A)", async () => {
    const fwd = lab.exec.forwarder;
    const dropping = (n: number) => `
      counter dropped { }
      chain classify { type filter hook forward priority -200; policy accept; ip saddr ${SOURCE_A} counter name dropped drop; ip saddr 198.18.99.${n} accept; }`;
    await replaceTable(fwd, t, dropping(0));
    let sending = true;
    const flood = lab.send(SOURCE_A, "w1", 4000).finally(() => {
      sending = false;
    });
    let replacements = 0;
    while (sending) await replaceTable(fwd, t, dropping(++replacements % 250));
    await flood;
    await new Promise((r) => setTimeout(r, 300));
    expect(replacements).toBeGreaterThan(5);
    expect(lab.receivedOf("w1")).toHaveLength(0);
  });

  it("control: the same replacement in two transactions (delete, then define) does leak", async () => {
    const fwd = lab.exec.forwarder;
    const body = `chain classify { type filter hook forward priority -200; policy accept; ip saddr ${SOURCE_A} drop; }`;
    await replaceTable(fwd, t, body);
    let sending = true;
    const flood = lab.send(SOURCE_A, "w2", 4000).finally(() => {
      sending = false;
    });
    while (sending) {
      await deleteTable(fwd, t);
      await nftApply(fwd, `table inet tdnft {\n${body}\n}\n`);
    }
    await flood;
    await new Promise((r) => setTimeout(r, 300));
    expect(lab.receivedOf("w2").length).toBeGreaterThan(0);
  });

  it("deleteTable is idempotent", async () => {
    await deleteTable(lab.exec.forwarder, t);
    await deleteTable(lab.exec.forwarder, t);
    await expect(listSet(lab.exec.forwarder, set)).rejects.toThrow(NftError);
  });
});
