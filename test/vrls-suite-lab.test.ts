import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Lab } from "../lib/lab/index.ts";
import { loadTopology, parseTopologyText } from "../lib/topology/load.ts";
import { deviceHosts } from "../suites/support/fixture.ts";
import { VrlsLab } from "../suites/vrls/lab.ts";
import { ReferenceVrls } from "../vendor-adapters/reference/vrls-control.ts";
import { loadCliTemplate } from "../vendor-adapters/ssh-cli/template.ts";
import { parseCapabilities } from "../vendor-adapters/types.ts";

// The vrls suite reads its lab from the lab file: members (the hosts marked device: true
// that the virtual router names, by priority), end systems on the members' hub and behind
// other routers, the far-side server, addresses and far-side MACs. Pure data: the lab is
// not brought up (the model reads nothing from it at construction).
function model(file: string): VrlsLab {
  const loaded = loadTopology(file);
  const noLab = {} as Lab;
  const vrls = new ReferenceVrls(noLab, () => loaded, false);
  return new VrlsLab(noLab, loaded, vrls);
}

describe("vrls suite: the lab model comes from the lab file", () => {
  it("Fig. 7: two members, four end systems on hub 2, two behind router C", () => {
    const v = model("labs/vrls-fig7.yaml");
    expect(v.members.map((m) => [m.host, m.address, m.farIface, m.farMac])).toEqual([
      ["ra", "198.18.1.2", "eth1", "02:00:00:00:64:02"],
      ["rb", "198.18.1.3", "eth1", "02:00:00:00:64:03"],
    ]);
    expect(v.lanEndSystems.map((e) => e.host)).toEqual(["es1", "es2", "es3", "es4"]);
    expect(v.remoteEndSystems.map((e) => [e.host, e.address])).toEqual([
      ["es5", "198.18.2.11"],
      ["es6", "198.18.2.12"],
    ]);
    expect(v.server).toEqual({ host: "server", iface: "eth0", address: "198.18.100.10" });
    expect(v.description.substitutionServer).toBeUndefined();
    expect(deviceHosts(loadTopology("labs/vrls-fig7.yaml"))).toEqual(["ra", "rb"]);
  });

  it("the three-member lab: other names and addresses, a substitution server", () => {
    const v = model("labs/vrls-tri.yaml");
    expect(v.members.map((m) => [m.host, m.address, m.priority])).toEqual([
      ["m1", "198.19.40.21", 220],
      ["m2", "198.19.40.22", 150],
      ["m3", "198.19.40.23", 90],
    ]);
    expect(v.master.host).toBe("m1");
    expect(v.backups.map((m) => m.host)).toEqual(["m2", "m3"]);
    expect(v.lanEndSystems.map((e) => e.address)).toEqual([
      "198.19.40.101",
      "198.19.40.102",
      "198.19.40.103",
    ]);
    expect(v.remoteEndSystems.map((e) => e.host)).toEqual(["pc4", "pc5", "pc6"]);
    expect(v.server.address).toBe("198.19.160.10");
    expect(v.extraServerAddresses[0]).toBe("198.19.160.100");
    expect(v.description.substitutionServer).toBe("subst");
    expect(v.hostOf("198.19.40.22")).toBe("m2");
  });

  it("a member not marked device: true is an error naming the file and host", () => {
    const text = readFileSync("labs/vrls-fig7.yaml", "utf8").replace(/( {2}rb:\n) {4}device: true\n/, "$1");
    const loaded = parseTopologyText(text, "edited-fig7.yaml");
    const vrls = new ReferenceVrls({} as Lab, () => loaded, false);
    expect(() => new VrlsLab({} as Lab, loaded, vrls)).toThrow(
      /edited-fig7\.yaml: hosts\.rb is a member of vr1 but not marked device: true/,
    );
  });
});

describe("capabilities are one list", () => {
  it("a name not on it is an error naming where it comes from", () => {
    expect([...parseCapabilities(["vrls", "vrls-review"], "x")]).toEqual(["vrls", "vrls-review"]);
    expect(() => parseCapabilities(["vrls", "vrls-reveiw"], "adapter acme")).toThrow(
      /adapter acme: unknown capability "vrls-reveiw"/,
    );
  });
});

describe("ssh-cli templates name capabilities from the same list", () => {
  it("a typo is an error naming the file and line", () => {
    const dir = mkdtempSync(join(tmpdir(), "tandem-tpl-"));
    const file = join(dir, "typo.yaml");
    const text = readFileSync("vendor-adapters/ssh-cli/templates/frr-vtysh.yaml", "utf8").replace(
      "vrrp-preempt-off,",
      "vrrp-preempt-of,",
    );
    writeFileSync(file, text);
    const line = text.split("\n").findIndex((l) => l.includes("vrrp-preempt-of")) + 1;
    try {
      expect(() => loadCliTemplate(file)).toThrow(new RegExp(`${file}:${line}.*capabilities`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("suite labs mark their device hosts", () => {
  it("every lab file a suite is certified on names its device hosts (device: true)", () => {
    const labs: Record<string, string[]> = {
      "labs/vrrp-dut.yaml": ["dut"],
      "labs/vrrp-dut-physical.yaml": ["dut"],
      "labs/vrls-fig7.yaml": ["ra", "rb"],
      "labs/vrls-fig7-physical.yaml": ["ra", "rb"],
      "labs/vrls-fig7x3.yaml": ["ra", "rb", "rd"],
      "labs/vrls-fig14.yaml": ["ra", "rb"],
      "labs/vrls-tri.yaml": ["m1", "m2", "m3"],
      "labs/natlb-fig3.yaml": ["lba", "lbb"],
      "labs/natlb-fig3-physical.yaml": ["lba", "lbb"],
      "labs/natlb-fig13.yaml": ["lba", "lbb"],
    };
    for (const [file, hosts] of Object.entries(labs))
      expect(deviceHosts(loadTopology(file)), file).toEqual(hosts);
  });
});
