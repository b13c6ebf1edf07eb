import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
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
