// tandem-netlink `Link.rootQdiscs()` (the VRLS flow monitor's buffer overflow source, seed
// Fig. 6 monitor 390, read over rtnetlink instead of a spawned `tc`) against the kernel, in a
// scratch namespace of its own run prefix (removed in afterAll). A root pfifo of limit 0
// drops every packet it is given; what `tc -s -j qdisc show` reports is the reference.
import { Link } from "tandem-netlink";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { teardownPrefix } from "../lib/lab/teardown.ts";

const prefix = newRunPrefix();
const ns = namespaceName(prefix, "qdisc");
const inNs = (argv: string[]) => run(["ip", "netns", "exec", ns, ...argv], { allowFailure: true });

/** Root qdiscs as `tc -s -j qdisc show` reports them: interface name -> { kind, drops }. */
async function tcRoots(): Promise<Map<string, { kind: string; drops: number }>> {
  const r = await inNs(["tc", "-s", "-j", "qdisc", "show"]);
  const list = JSON.parse(r.stdout) as { dev: string; root?: boolean; kind: string; drops: number }[];
  return new Map(list.filter((q) => q.root).map((q) => [q.dev, { kind: q.kind, drops: q.drops }]));
}

beforeAll(async () => {
  await run(["ip", "netns", "add", ns]);
  for (const argv of [
    ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
    ["ip", "link", "set", "v0", "up"],
    ["ip", "link", "set", "v1", "up"],
    ["ip", "addr", "add", "198.18.250.1/24", "dev", "v0"],
    ["ip", "neigh", "add", "198.18.250.2", "lladdr", "02:00:00:00:00:02", "dev", "v0"],
    ["tc", "qdisc", "add", "dev", "v0", "root", "pfifo", "limit", "0"],
  ]) {
    const r = await inNs(argv);
    if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
  }
}, 30_000);
afterAll(async () => {
  await teardownPrefix(prefix);
}, 30_000);

describe("Link.rootQdiscs: root qdisc drops over rtnetlink", () => {
  it("reports every root qdisc with the kind and drop count tc reports", async () => {
    // Every echo request is refused at the qdisc (ping: "No buffer space available", exit 1).
    const ping = await inNs(["ping", "-c", "5", "-i", "0.01", "-W", "0.2", "198.18.250.2"]);
    expect(ping.stderr).toMatch(/No buffer space available/);
    const link = new Link({ netns: ns });
    try {
      const roots = link.rootQdiscs();
      const tc = await tcRoots();
      const byName = new Map(roots.map((q) => [q.index, q]));
      expect([...tc.keys()].sort()).toEqual(["v0", "v1"]);
      for (const dev of tc.keys()) {
        const q = byName.get(link.info(dev).index);
        expect(q, dev).toBeDefined();
        expect({ kind: q?.kind, drops: q?.drops }).toEqual(tc.get(dev));
      }
      // The five echo requests (and whatever else IPv6 sent) were dropped at v0's qdisc.
      expect(byName.get(link.info("v0").index)?.drops ?? 0).toBeGreaterThanOrEqual(5);
      expect(roots).toHaveLength(tc.size);
    } finally {
      link.close();
    }
  });

  it("a closed Link says so", () => {
    const link = new Link({ netns: ns });
    link.close();
    expect(() => link.rootQdiscs()).toThrow(/closed/);
  });
});
