// Seeded faults (issue 13): the fault list, suites/faults.yaml against the catalogue in both
// directions, and the state-machine switches of the reference VRRP router (pure reducer).
import { describe, expect, it } from "vitest";
import { loadCatalogue } from "../lib/certify/catalogue.ts";
import { casePattern, judgeFault } from "../lib/certify/faults.ts";
import { casesForFault, loadFaults, parseFaultsText } from "../lib/certify/faults-catalogue.ts";
import { SUITE_CASES } from "../lib/certify/suites.ts";
import type { CertificationSummary } from "../lib/certify/summary.ts";
import { parseFaultOption, SEEDED_FAULTS } from "../lib/roles/seeded-faults.ts";
import { initialVrrpState, step, type VrrpEvent, type VrrpState } from "../lib/roles/vrls/vrrp-state.ts";
import { ConfigError } from "../lib/topology/errors.ts";

const catalogue = loadCatalogue();
const faults = loadFaults(undefined, catalogue);

describe("suites/faults.yaml against the catalogue and the fault switches", () => {
  it("every MUST requirement of vrrp, vrls and natlb has a fault that must break it, or a stated exemption", () => {
    const covered = new Set(faults.faults.flatMap((f) => f.expect));
    const exempt = new Set(faults.exemptions.map((e) => e.requirement));
    const uncovered = catalogue.requirements
      .filter((r) => r.level === "MUST" && !r.retired && !covered.has(r.id) && !exempt.has(r.id))
      .map((r) => r.id);
    expect(uncovered, "MUST requirements no seeded fault breaks").toEqual([]);
    // An exemption is for a requirement no fault covers, and stays rare.
    expect(faults.exemptions.filter((e) => covered.has(e.requirement))).toEqual([]);
  });

  it("every fault names an existing switch and existing requirements of its suite; every switch has an entry", () => {
    for (const f of faults.faults) {
      expect(Object.keys(SEEDED_FAULTS), f.name).toContain(f.name);
      for (const id of f.expect) {
        const r = catalogue.requirements.find((x) => x.id === id);
        expect(r?.suite, `${f.name}: ${id}`).toBe(f.suite);
      }
    }
    expect(Object.keys(SEEDED_FAULTS).filter((n) => !faults.faults.some((f) => f.name === n))).toEqual([]);
  });

  it("a fault's run covers the cases of its expected requirements plus the smoke set", () => {
    const f = faults.faults.find((x) => x.name === "vrrp-backup-ignores-pri0")!;
    expect(casesForFault(catalogue, faults, f)).toEqual([
      "vrrp.adv-format",
      "vrrp.pri0-backup",
      "vrrp.tmr-master-down",
    ]);
    for (const f of faults.faults)
      for (const c of casesForFault(catalogue, faults, f)) expect(SUITE_CASES[f.suite][c], c).toBeDefined();
    // The vitest -t pattern selects exactly those titles.
    const re = new RegExp(casePattern(["vrrp.pri0-backup", "vrrp.adv-format"]));
    expect(re.test("vrrp: timers > [vrrp.pri0-backup] a backup that hears priority 0")).toBe(true);
    expect(re.test("[vrrp.pri0-master] a master that hears priority 0")).toBe(false);
    expect(re.test("[vrrp.adv-formatX] other")).toBe(false);
  });

  it("reports a bad entry with file, path, line and value", () => {
    const text = [
      "version: 1",
      "smoke: { vrrp: [vrrp.adv-format] }",
      "faults:",
      "  - { name: vrrp-adv-ttl-254, suite: vrrp, expect: [VRRP-ADV-001] }",
      "  - { name: vrrp-no-such-thing, suite: vrrp, expect: [VRRP-ADV-001] }",
      "  - { name: vrrp-no-garp, suite: vrrp, expect: [VRRP-ADV-099, VRLS-RESP-001] }",
      "  - { name: vrrp-adv-ttl-254, suite: vrrp, expect: [VRRP-ADV-001] }",
    ].join("\n");
    let error: unknown;
    try {
      parseFaultsText(text, catalogue, "bad-faults.yaml");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const m = (error as Error).message;
    expect(m).toMatch(
      /^bad-faults\.yaml:5:\d+: faults\[1\]\.name: no such fault switch .*\(value: "vrrp-no-such-thing"\)/m,
    );
    expect(m).toMatch(
      /^bad-faults\.yaml:6:\d+: faults\[2\]\.expect\[0\]: requirement not in .*\(value: "VRRP-ADV-099"\)/m,
    );
    expect(m).toMatch(
      /^bad-faults\.yaml:6:\d+: faults\[2\]\.expect\[1\]: requirement of suite vrls, not vrrp/m,
    );
    expect(m).toMatch(
      /^bad-faults\.yaml:7:\d+: faults\[3\]\.name: fault listed twice \(first at faults\[0\]\)/m,
    );
    expect(() =>
      parseFaultsText(
        "version: 1\nsmoke: {}\nfaults:\n  - { name: vrrp-no-garp, suite: vrrp, expect: [] }\n",
        catalogue,
        "e.yaml",
      ),
    ).toThrow(/e\.yaml:4:\d+: faults\[0\]\.expect: a fault must name at least one requirement/);
  });

  it("--dut-option fault= takes a comma-separated list of known names and names a bad one", () => {
    expect(parseFaultOption(undefined)).toEqual([]);
    expect(parseFaultOption("vrrp-no-garp, vrrp-adv-slow")).toEqual(["vrrp-no-garp", "vrrp-adv-slow"]);
    expect(() => parseFaultOption("vrrp-no-garp,nope")).toThrow(
      /--dut-option fault=vrrp-no-garp,nope: unknown fault "nope" \(known: .*vrrp-no-garp/,
    );
  });

  it("judges a fault run: caught, missed, collateral, and the failing case per requirement", () => {
    const f = faults.faults.find((x) => x.name === "vrrp-skew-omitted")!;
    const summary = {
      requirements: [
        { id: "VRRP-TMR-002", verdict: "fail", cases: ["vrrp.tmr-master-down"] },
        { id: "VRRP-TMR-003", verdict: "pass", cases: ["vrrp.pri0-backup", "vrrp.tmr-master-down"] },
        { id: "VRRP-ADV-001", verdict: "fail", cases: ["vrrp.adv-format"] },
      ],
      cases: [
        { id: "vrrp.tmr-master-down", verdict: "fail" },
        { id: "vrrp.adv-format", verdict: "fail" },
      ],
    } as unknown as CertificationSummary;
    const j = judgeFault(f, summary);
    expect(j).toMatchObject({
      verdict: "missed",
      caught: ["VRRP-TMR-002"],
      missed: ["VRRP-TMR-003"],
      collateral: ["VRRP-ADV-001"],
      failingCase: { "VRRP-TMR-002": "vrrp.tmr-master-down", "VRRP-ADV-001": "vrrp.adv-format" },
    });
  });
});

// ---- the VRRP state-machine switches (vrrp-state.ts), on the pure reducer
const params = (priority: number, address: string, faultList: string[], preempt = true) => ({
  vrid: 7,
  priority,
  advertIntervalCs: 100,
  preempt,
  primaryAddress: address,
  virtualAddresses: ["198.18.2.1"],
  faults: faultList,
});
function run(state: VrrpState, events: VrrpEvent[]) {
  let s = state;
  const actions = [];
  for (const e of events) {
    const r = step(s, e);
    s = r.state;
    actions.push(...r.actions);
  }
  return { state: s, actions };
}
const adv = (now: number, priority: number, from = "198.18.2.10", maxAdverIntCs = 100): VrrpEvent => ({
  type: "advertisement",
  now,
  from,
  priority,
  maxAdverIntCs,
});
const master = (f: string[], priority = 100, address = "198.18.2.2") =>
  run(initialVrrpState(params(priority, address, f)), [
    { type: "startup", now: 0 },
    { type: "tick", now: 4000 },
  ]).state;

describe("seeded faults in the VRRP state machine (each changes only its behaviour)", () => {
  it("vrrp-start-as-master, vrrp-skew-omitted, vrrp-takeover-silent", () => {
    expect(
      step(initialVrrpState(params(100, "198.18.2.2", [])), { type: "startup", now: 0 }).state.name,
    ).toBe("backup");
    expect(
      step(initialVrrpState(params(100, "198.18.2.2", ["vrrp-start-as-master"])), { type: "startup", now: 0 })
        .state.name,
    ).toBe("master");
    const backup = (f: string[]) =>
      step(initialVrrpState(params(100, "198.18.2.2", f)), { type: "startup", now: 0 }).state;
    expect(backup([]).masterDownDeadline).toBeCloseTo(3609.375);
    expect(backup(["vrrp-skew-omitted"]).masterDownDeadline).toBe(3000);
    const takeover = (f: string[]) => step(backup(f), { type: "tick", now: 3610 }).actions.map((a) => a.type);
    expect(takeover([])).toContain("sendAdvertisement");
    expect(takeover(["vrrp-takeover-silent"])).not.toContain("sendAdvertisement");
  });

  it("a master: vrrp-ignore-higher, vrrp-yield-to-lower, vrrp-tie-break-inverted, vrrp-master-ignores-pri0", () => {
    expect(step(master([]), adv(4100, 200)).state.name).toBe("backup");
    expect(step(master(["vrrp-ignore-higher"]), adv(4100, 200)).state.name).toBe("master");
    expect(step(master([]), adv(4100, 50)).state.name).toBe("master");
    expect(step(master(["vrrp-yield-to-lower"]), adv(4100, 50)).state.name).toBe("backup");
    expect(step(master([]), adv(4100, 100, "198.18.2.10")).state.name).toBe("backup");
    expect(step(master(["vrrp-tie-break-inverted"]), adv(4100, 100, "198.18.2.10")).state.name).toBe(
      "master",
    );
    expect(step(master([]), adv(4100, 0)).actions.map((a) => a.type)).toEqual(["sendAdvertisement"]);
    expect(step(master(["vrrp-master-ignores-pri0"]), adv(4100, 0)).actions).toEqual([]);
    expect(step(master([]), { type: "shutdown", now: 4100 }).actions[0]).toMatchObject({ priority: 0 });
    expect(
      step(master(["vrrp-no-resign"]), { type: "shutdown", now: 4100 }).actions.map((a) => a.type),
    ).toEqual(["transition"]);
  });

  it("a backup: preemption switches, vrrp-backup-ignores-pri0, vrrp-learned-interval-ignored; vrrp-adv-slow", () => {
    const b = (f: string[], preempt = true) =>
      step(initialVrrpState(params(100, "198.18.2.2", f, preempt)), { type: "startup", now: 0 }).state;
    // Preempt on: a priority-50 master is ignored (the Master_Down_Timer keeps running).
    expect(step(b([]), adv(100, 50)).state.masterDownDeadline).toBeCloseTo(3609.375);
    expect(step(b(["vrrp-preempt-ignored"]), adv(100, 50)).state.masterDownDeadline).toBeCloseTo(3709.375);
    expect(step(b([], false), adv(100, 50)).state.masterDownDeadline).toBeCloseTo(3709.375);
    expect(step(b(["vrrp-preempt-forced"], false), adv(100, 50)).state.masterDownDeadline).toBeCloseTo(
      3609.375,
    );
    expect(step(b([]), adv(100, 0)).state.masterDownDeadline).toBeCloseTo(709.375);
    expect(step(b(["vrrp-backup-ignores-pri0"]), adv(100, 0)).state.masterDownDeadline).toBeCloseTo(3609.375);
    expect(step(b([]), adv(100, 200, "198.18.2.10", 200)).state.masterAdverIntCs).toBe(200);
    expect(
      step(b(["vrrp-learned-interval-ignored"]), adv(100, 200, "198.18.2.10", 200)).state.masterAdverIntCs,
    ).toBe(100);
    expect(master([]).adverDeadline).toBe(4000 + 1000);
    expect(master(["vrrp-adv-slow"]).adverDeadline).toBe(4000 + 1500);
  });
});
