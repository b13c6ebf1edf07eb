// Issue 16: the reference over IPv6 in labs/vrrp-dut-v6.yaml, driven through its adapter
// and observed by the tester's own kernel (real Neighbor Discovery, no crafted frames):
// as master the DUT holds the virtual addresses on its macvlan and the tester resolves
// 2001:db8:2::1 to the virtual MAC 00:00:5e:00:02:07 and gets echo replies from it; the
// adapter reads the state back; after the agent is killed (SIGKILL, nothing cleans up) the
// guard that outlives it drops what reaches the macvlan, so the tester's NS for the virtual
// address goes unanswered although the address is still configured there.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { waitUntil } from "../lib/remote/wait.ts";
import { ReferenceAdapter } from "../vendor-adapters/reference/index.ts";

const VIP = "2001:db8:2::1";

describe("reference adapter: VRRPv3 over IPv6 on the lab (NS answers, state, crash)", () => {
  let lab: Lab;
  let adapter: ReferenceAdapter;
  const tester = (cmd: string) => lab.host("tester").exec(["sh", "-c", cmd]);
  /** The tester's neighbour entry for the VIP after one echo request (its kernel sends the NS). */
  const resolve = async () => {
    await tester(`ip -6 neigh flush dev eth0; ping -6 -c 1 -W 1 ${VIP} >/dev/null 2>&1; true`);
    const ping = await tester(`ping -6 -c 1 -W 1 ${VIP}`);
    const neigh = (await tester(`ip -6 neigh show ${VIP} dev eth0`)).stdout.trim();
    return { replied: ping.code === 0, neigh };
  };

  beforeAll(async () => {
    lab = await upLab("labs/vrrp-dut-v6.yaml", { name: `r6${process.pid}` });
    adapter = new ReferenceAdapter({ hosts: {}, primary: "dut", workDir: "/tmp", options: {}, lab });
  }, 120_000);
  afterAll(async () => {
    await adapter?.dispose();
    await lab?.down();
  }, 60_000);

  it("declares vrrp-ipv6 on a lab without a vrls: section and refuses IPv4 there, naming the section", async () => {
    expect(adapter.capabilities.has("vrrp-ipv6")).toBe(true);
    await adapter.deploy({
      vrrp: [
        {
          interface: "eth0",
          vrid: 7,
          priority: 100,
          advertIntervalMs: 1000,
          preempt: true,
          version: 3,
          virtualAddresses: ["198.18.2.1/24"],
        },
      ],
    });
    await expect(adapter.start()).rejects.toThrow(/vrls: section/);
  });

  it("as master: NS answered with the virtual MAC, echo answered; after SIGKILL: no answer, the address still on the macvlan", async () => {
    await adapter.deploy({
      vrrp: [
        {
          interface: "eth0",
          vrid: 7,
          priority: 255,
          advertIntervalMs: 1000,
          preempt: true,
          version: 3,
          virtualAddresses: ["fe80::7/64", `${VIP}/64`],
          family: 6,
        },
      ],
    });
    await adapter.start();
    // The address owner is master at once; its addresses land on the macvlan right after.
    await waitUntil(
      async () =>
        (await lab.host("dut").exec(["ip", "-6", "addr", "show", "dev", "vrrp6r-7"])).stdout.includes(VIP),
      { timeoutMs: 5000, what: "the VIP on the DUT's macvlan" },
    );
    expect((await adapter.readState()).vrrp).toEqual([{ vrid: 7, state: "master" }]);
    const master = await resolve();
    expect(master.replied, "echo reply from the VIP of a live master").toBe(true);
    expect(master.neigh, "the tester's neighbour entry for the VIP").toMatch(/lladdr 00:00:5e:00:02:07 /);

    await adapter.stop("crash");
    const left = (await lab.host("dut").exec(["ip", "-6", "addr", "show", "dev", "vrrp6r-7"])).stdout;
    expect(left, "a killed agent cleans nothing up: the VIP is still there").toContain(VIP);
    const dead = await resolve();
    expect(dead.replied, "echo reply after the agent was killed").toBe(false);
    expect(dead.neigh, "the tester's neighbour entry after the agent was killed").not.toMatch(/lladdr/);
  }, 60_000);
});
