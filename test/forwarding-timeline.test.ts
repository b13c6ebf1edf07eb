import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { timelineSpec } from "../lib/traffic/chart.ts";
import { forwardingTimeline } from "../lib/traffic/forwarding-timeline.ts";
import { writePcap } from "../lib/traffic/pcap-reader.ts";
import { ETHERTYPE, encodeEthernet, encodeIpv4, IP_PROTOCOL } from "../lib/wire/index.ts";
import { moveEvents } from "../suites/natlb/timeline.ts";

/**
 * The natlb charts' pieces without a lab: packets per second towards the server per
 * forwarding MAC (lib/traffic/forwarding-timeline.ts), a failover's events from the
 * times the device reports (suites/natlb/timeline.ts) and the label rows of the chart.
 */
const dir = mkdtempSync(join(tmpdir(), "tandem-fwd-timeline-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LBA = "02:00:00:00:3a:32";
const LBB = "02:00:00:00:3b:32";
const SERVER = "198.18.10.11";
const T0 = 1_700_000_000_000;

function frame(src: string, dst: string): Uint8Array {
  const ip = encodeIpv4({
    src: "203.0.113.7",
    dst,
    protocol: IP_PROTOCOL.udp,
    ttl: 63,
    payload: new Uint8Array(8),
  });
  return encodeEthernet({ dst: "02:00:00:00:5a:01", src, etherType: ETHERTYPE.ipv4, payload: ip }, true);
}

describe("forwardingTimeline", () => {
  it("counts packets towards the server per sending MAC, names them, pads to the capture's span", async () => {
    const records = [
      // lba: 100 packets in the first second, one every 10 ms
      ...Array.from({ length: 100 }, (_, i) => ({ tsMs: T0 + i * 10, data: frame(LBA, SERVER) })),
      // to another address: not counted
      { tsMs: T0 + 5, data: frame(LBA, "198.18.10.12") },
    ];
    const path = join(dir, "a.pcap");
    writeFileSync(path, writePcap(records));
    const { timeline, names } = await forwardingTimeline(
      path,
      SERVER,
      { lba: LBA, lbb: LBB },
      {
        span: { fromMs: T0, toMs: T0 + 2000 },
      },
    );
    expect(names).toEqual({ [LBA]: "lba", [LBB]: "lbb" });
    expect(timeline.binMs).toBe(50);
    expect(timeline.startMs).toBe(T0);
    expect(timeline.series[LBA]!.length).toBe(41);
    expect(timeline.series[LBA]!.reduce((a, b) => a + b, 0)).toBe(100);
    expect(timeline.series[LBA]!.slice(0, 20)).toEqual(new Array(20).fill(5));
    expect(timeline.series[LBA]!.slice(20)).toEqual(new Array(21).fill(0));
    // lbb sent nothing: a flat line at 0, not missing from the chart
    expect(timeline.series[LBB]).toEqual(new Array(41).fill(0));
  });
});

describe("moveEvents", () => {
  const move = {
    id: "m1",
    outcome: "completed",
    steps: ["transition", "route", "entries", "end"],
    startedAt: T0 + 700,
    stepTimes: [
      { step: "transition", atMs: T0 + 702 },
      { step: "route", atMs: T0 + 705 },
      { step: "entries", atMs: T0 + 748 },
      { step: "end", atMs: T0 + 756 },
    ],
    entriesMoved: 1250,
    totalMs: 56,
    raw: {},
  };

  it("a failover: takeover at the move's start, each step at its end, the entries as the table-copy recovery", () => {
    expect(moveEvents(move, "198.51.100.11 to lba", { failover: true })).toEqual([
      { atMs: T0 + 700, label: "takeover: 198.51.100.11 to lba", kind: "takeover" },
      { atMs: T0 + 702, label: "step 1: transition mode", kind: "vip-move" },
      { atMs: T0 + 705, label: "step 2: route (GARP)", kind: "vip-move" },
      { atMs: T0 + 748, label: "step 3: 1250 entries from the servers' copies", kind: "table-copy" },
      { atMs: T0 + 756, label: "step 4: end of transition", kind: "vip-move" },
    ]);
  });

  it("a device that reports no times gets only what the suite saw", () => {
    const { startedAt: _s, stepTimes: _t, ...untimed } = move;
    const fallback = [{ atMs: T0 + 900, label: "failover reported", kind: "takeover" as const }];
    expect(moveEvents(untimed, "x", { failover: true, fallback })).toEqual(fallback);
  });
});

describe("chart labels", () => {
  it("events milliseconds apart get their own label rows; a label at the right edge ends at its rule", () => {
    const timeline = { binMs: 50, startMs: T0, series: { [LBA]: new Array(40).fill(5) } };
    const events = [
      ...moveEvents(
        {
          id: "m1",
          outcome: "completed",
          steps: [],
          entriesMoved: 3,
          totalMs: 5,
          raw: {},
          startedAt: T0 + 1000,
          stepTimes: [
            { step: "transition", atMs: T0 + 1001 },
            { step: "route", atMs: T0 + 1002 },
          ],
        },
        "v to lba",
        { failover: true },
      ),
      { atMs: T0 + 1990, label: "last", kind: "other" as const },
    ];
    const spec = JSON.stringify(timelineSpec(timeline, { events }));
    const rows = (label: string) =>
      JSON.parse(spec.match(new RegExp(`(\\{[^{}]*"label":"${label}"[^{}]*\\})`))![1]!);
    const a = rows("takeover: v to lba");
    const b = rows("step 1: transition mode");
    const c = rows("step 2: route \\(GARP\\)");
    expect(new Set([a.row, b.row, c.row]).size).toBe(3);
    expect(rows("last").align).toBe("right");
  });
});
