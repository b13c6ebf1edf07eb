// Issue 14: a link-down fault loses the link's routes (the kernel drops them with the link)
// and `ip link set up` brings back only the connected ones. The reference adapter records
// the other routes when it takes a link down and puts them back when it brings it up again
// (link-up, restore), so a host reused after the fault (a physical lab's) still forwards.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { ReferenceAdapter } from "../vendor-adapters/reference/index.ts";

const STATIC = "198.18.200.0/24 via 198.18.102.50 proto static";
const DEFAULT = "default via 198.18.102.1 proto static";

describe("reference adapter: routes after a link-down fault", () => {
  let lab: Lab;
  let adapter: ReferenceAdapter;
  const dutRoutes = async () => {
    const r = await lab.host("dut").exec(["ip", "-4", "route", "show", "dev", "eth1"]);
    return r.stdout
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !/\bproto kernel\b/.test(l))
      .map((l) => l.replace(/\s+$/, ""));
  };

  beforeAll(async () => {
    lab = await upLab("labs/vrrp-dut.yaml", { name: `lr${process.pid}` });
    adapter = new ReferenceAdapter({ hosts: {}, primary: "dut", workDir: "/tmp", options: {}, lab });
  }, 120_000);
  afterAll(async () => {
    await lab?.down();
  }, 60_000);

  it("link-down drops the static and default routes; link-up and restore put them back", async () => {
    for (const route of [STATIC, DEFAULT]) {
      const r = await lab.host("dut").exec(["sh", "-c", `ip route add ${route} dev eth1`]);
      expect(r.code, r.stderr).toBe(0);
    }
    const before = await dutRoutes();
    expect(before.sort()).toEqual([DEFAULT, STATIC].sort());

    await adapter.injectFault({ kind: "link-down", interface: "eth1" });
    // The kernel's doing, which the adapter must undo: nothing left on the downed link.
    expect(await dutRoutes(), "routes on eth1 while it is down").toEqual([]);
    await adapter.injectFault({ kind: "link-up", interface: "eth1" });
    expect((await dutRoutes()).sort(), "routes on eth1 after link-up").toEqual(before.sort());

    // Down twice, then restore (every link up): the first record's routes come back.
    await adapter.injectFault({ kind: "link-down", interface: "eth1" });
    await adapter.injectFault({ kind: "link-down", interface: "eth1" });
    expect(await dutRoutes()).toEqual([]);
    await adapter.injectFault({ kind: "restore" });
    expect((await dutRoutes()).sort(), "routes on eth1 after restore").toEqual(before.sort());
    // And the host forwards by them again: the route lookup resolves through eth1.
    const get = await lab.host("dut").exec(["ip", "-4", "route", "get", "198.18.200.7"]);
    expect(get.stdout).toMatch(/via 198\.18\.102\.50 dev eth1/);
  }, 60_000);
});
