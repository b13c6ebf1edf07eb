import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { planLab } from "../lib/lab/netns-plan.ts";
import { ConfigError, loadTopology, parseTopologyText } from "../lib/topology/index.ts";

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("topology files", () => {
  it("every lab file in labs/ validates", () => {
    const files = readdirSync("labs").filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const f of files) {
      const { topology } = loadTopology(`labs/${f}`);
      expect(Object.keys(topology.hosts).length).toBeGreaterThan(2);
    }
  });

  it("a schema error names the file, the path, the line and the value", () => {
    const e = errorOf(() => loadTopology("test/fixtures/bad-topology.yaml"));
    expect(e.message).toContain("test/fixtures/bad-topology.yaml:8:");
    expect(e.message).toContain("hosts.h1.interfaces.eth0.addresses[0]");
    expect(e.message).toContain('"198.18.1.300/24"');
  });

  it("cross-reference errors carry lines too: unknown segment, address outside the plan", () => {
    const text = [
      "lab: x",
      "addressPlan: { lan: 198.18.1.0/24 }",
      "segments:",
      "  lan: {}",
      "hosts:",
      "  h2:",
      "    interfaces:",
      "      eth0: { segment: nowhere, addresses: [198.18.1.2/24] }",
      "  h3:",
      "    interfaces:",
      "      eth0: { segment: lan, addresses: [203.0.113.5/24] }",
    ].join("\n");
    const e = errorOf(() => parseTopologyText(text, "x.yaml"));
    const byPath = new Map(e.issues.map((i) => [i.path, i]));
    expect(byPath.get("hosts.h2.interfaces.eth0.segment")?.line).toBe(8);
    expect(byPath.get("hosts.h2.interfaces.eth0.segment")?.value).toBe("nowhere");
    expect(byPath.get("hosts.h3.interfaces.eth0.addresses[0]")?.line).toBe(11);
    expect(byPath.get("hosts.h3.interfaces.eth0.addresses[0]")?.message).toMatch(
      /outside the lab's address plan/,
    );
  });

  it("unknown fields, YAML syntax errors and duplicate addresses are reported, not crashed on", () => {
    expect(errorOf(() => parseTopologyText("lab: x\nhosts: {}\nbogus: 1\n")).message).toMatch(
      /unknown field\(s\): bogus/,
    );
    expect(errorOf(() => parseTopologyText("lab: x\nhosts: [\n")).message).toMatch(
      /<inline>:\d+:\d+: .*YAML syntax/,
    );
    const dup =
      "lab: x\nsegments: { s: {} }\nhosts:\n  a: { interfaces: { eth0: { segment: s, addresses: [198.18.0.1/24] } } }\n  b: { interfaces: { eth0: { segment: s, addresses: [198.18.0.1/24] } } }\n";
    expect(errorOf(() => parseTopologyText(dup)).message).toMatch(
      /hosts\.b\.interfaces\.eth0\.addresses\[0\]: address already used by a\.eth0/,
    );
  });

  it("links must join existing interfaces that are on no segment", () => {
    const text = "lab: x\nhosts:\n  a: { interfaces: { eth0: {} } }\nlinks:\n  - { a: a.eth0, b: c.eth0 }\n";
    const e = errorOf(() => parseTopologyText(text));
    expect(
      e.issues.some((i) => i.path === "links[0].b" && /no host named "c"/.test(i.message) && i.line === 5),
    ).toBe(true);
  });
});

describe("IPv6 in topology files (issue 16)", () => {
  const lab = (hostsYaml: string, head = "") =>
    `lab: x\n${head}segments: { s: {} }\nhosts:\n${hostsYaml}\n  z: { interfaces: { eth0: { segment: s, addresses: [198.18.0.9/24] } } }\n`;

  it("accepts IPv6 addresses and routes in 2001:db8::/32 and fe80::/10 beside IPv4", () => {
    const { topology } = parseTopologyText(
      lab(
        [
          "  a:",
          "    interfaces: { eth0: { segment: s, addresses: [198.18.0.1/24, 2001:db8:0:1::1/64, fe80::1/64] } }",
          "    routes: [{ to: 2001:db8:99::/48, via: 2001:db8:0:1::2 }, { to: default6, via: fe80::2, dev: eth0 }]",
        ].join("\n"),
        "addressPlan: { v4: 198.18.0.0/24, v6: 2001:db8::/32 }\n",
      ),
    );
    expect(topology.hosts.a?.interfaces.eth0?.addresses).toEqual([
      "198.18.0.1/24",
      "2001:db8:0:1::1/64",
      "fe80::1/64",
    ]);
    expect(topology.hosts.a?.routes[1]?.to).toBe("default6");
  });

  it("rejects IPv6 outside the lab's space, bad syntax and prefix lengths, with file, path, line and value", () => {
    const text = lab(
      [
        "  a:",
        "    interfaces:",
        "      eth0: { segment: s, addresses: [2001:4860::1/64, 2001:db8::1/129, 2001:db8:::1/64] }",
      ].join("\n"),
    );
    const e = errorOf(() => parseTopologyText(text, "v6.yaml"));
    const byPath = new Map(e.issues.map((i) => [i.path, i]));
    const at = "hosts.a.interfaces.eth0.addresses";
    expect(byPath.get(`${at}[0]`)).toMatchObject({ line: 6, value: "2001:4860::1/64" });
    expect(byPath.get(`${at}[0]`)?.message).toMatch(/2001:db8::\/32 or fe80::\/10/);
    expect(byPath.get(`${at}[1]`)?.message).toMatch(/expected an IPv6 address with prefix length/);
    expect(byPath.get(`${at}[2]`)?.value).toBe("2001:db8:::1/64");
    expect(e.message).toContain("v6.yaml:6:");
  });

  it("cross-checks: plan per family, duplicates in any spelling, gateway family, ipv6: false", () => {
    const text = lab(
      [
        "  a:",
        "    interfaces: { eth0: { segment: s, addresses: [2001:db8:0:1::1/64] } }",
        "    routes: [{ to: 2001:db8:99::/48, via: 198.18.0.2 }]",
        "  b:",
        "    ipv6: false",
        "    interfaces: { eth0: { segment: s, addresses: [2001:db8:0:0::1/64, fe80::1/64] } }",
        "  c:",
        "    interfaces: { eth0: { segment: s, addresses: [2001:0db8:0000::1/64, 2001:db8:2::1/64] } }",
      ].join("\n"),
      "addressPlan: { v6: 2001:db8::/48 }\n",
    );
    const e = errorOf(() => parseTopologyText(text, "v6.yaml"));
    const messages = e.issues.map((i) => `${i.path}@${i.line}: ${i.message}`);
    expect(messages).toContain(
      "hosts.a.routes[0].via@7: gateway is IPv4 but the route's destination is IPv6",
    );
    expect(messages).toContain(
      "hosts.b.interfaces.eth0.addresses[0]@10: IPv6 address on a host with `ipv6: false`",
    );
    expect(messages).toContain("hosts.c.interfaces.eth0.addresses[0]@12: address already used by b.eth0");
    expect(messages).toContain(
      "hosts.c.interfaces.eth0.addresses[1]@12: address is outside the lab's address plan (2001:db8::/48)",
    );
    // Link-local fe80::1 on b is allowed outside the plan; a's 2001:db8:0:1::1 is inside /48.
    expect(messages.filter((m) => m.includes("hosts.a.interfaces"))).toEqual([]);
  });

  it("plans IPv6 only for the hosts that use it: quiet (no DAD, RS, RA) and forwarding when asked", () => {
    const { topology } = parseTopologyText(
      lab(
        [
          "  a:",
          "    forwarding: true",
          "    interfaces: { eth0: { segment: s, addresses: [2001:db8::1/64] } }",
          "    routes: [{ to: default6, dev: eth0 }]",
        ].join("\n"),
      ),
    );
    const plan = planLab(topology, "tdzzzzz");
    const a = plan.sysctls.get("a") ?? [];
    expect(a).toContain("net.ipv6.conf.all.disable_ipv6=0");
    expect(a).toContain("net.ipv6.conf.eth0.accept_dad=0");
    expect(a).toContain("net.ipv6.conf.eth0.router_solicitations=0");
    expect(a).toContain("net.ipv6.conf.all.forwarding=1");
    expect(plan.sysctls.get("z")).toContain("net.ipv6.conf.all.disable_ipv6=1");
    expect(plan.hostCommands.get("a")).toContain("address add 2001:db8::1/64 dev eth0 nodad");
    expect(plan.hostCommands.get("a")).toContain("route add ::/0 dev eth0");
  });
});
