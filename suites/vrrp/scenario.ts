import { rm } from "node:fs/promises";
import type { Lab } from "../../lib/lab/index.ts";
import { Capture, type CaptureStats } from "../../lib/traffic/capture.ts";
import { renderTimelineSvg } from "../../lib/traffic/chart.ts";
import type { VendorAdapter, VrrpInstanceConfig } from "../../vendor-adapters/types.ts";
import type { CaseContext } from "../support/requirement.ts";
import { advertFrame, arpRequestFrame, echoRequestFrame, udpFrame } from "./frames.ts";
import { advertTimeline, type Observed, readObserved } from "./observed.ts";
import type { FrameSpeaker } from "./speaker.ts";

/** The vrrp suite's lab plan (labs/vrrp-dut.yaml) and the DUT's default configuration. */
export const PLAN = {
  vrid: 7,
  vip: "198.18.2.1",
  vmac: "00:00:5e:00:01:07",
  dutIp: "198.18.2.2",
  dutMac: "02:00:00:00:02:02",
  testerIp: "198.18.2.10",
  testerMac: "02:00:00:00:02:0a",
  sinkIp: "198.18.102.10",
  sinkPort: 9999,
  priority: 100,
  intervalMs: 1000,
} as const;

export const NAMES: Record<string, string> = { [PLAN.dutIp]: "dut", [PLAN.testerIp]: "tester" };

export function dutConfig(over: Partial<VrrpInstanceConfig> = {}): VrrpInstanceConfig {
  return {
    interface: "eth0",
    vrid: PLAN.vrid,
    priority: PLAN.priority,
    advertIntervalMs: PLAN.intervalMs,
    preempt: true,
    version: 3,
    virtualAddresses: [`${PLAN.vip}/24`],
    ...over,
  };
}

/** RFC 5798 6.1: Skew_Time and Master_Down_Interval in ms. */
export function skewMs(priority: number, masterIntervalMs: number): number {
  return ((256 - priority) * masterIntervalMs) / 256;
}
export function masterDownMs(priority: number, masterIntervalMs: number): number {
  return 3 * masterIntervalMs + skewMs(priority, masterIntervalMs);
}

export function testerAdvert(
  priority: number,
  over: Partial<Parameters<typeof advertFrame>[0]> = {},
): Uint8Array {
  return advertFrame({
    srcMac: PLAN.testerMac,
    srcIp: PLAN.testerIp,
    vrid: PLAN.vrid,
    priority,
    addresses: [PLAN.vip],
    interval: 100,
    ...over,
  });
}

export interface Mark {
  atMs: number;
  label: string;
}

export interface Driver {
  speaker: FrameSpeaker;
  adapter: VendorAdapter;
  mark(label: string): number;
  sleep(ms: number): Promise<void>;
  startDut(): Promise<number>;
  /** Sends an ARP request for the VIP; returns the send time. */
  arpForVip(): Promise<number>;
  /** Sends `count` UDP datagrams to the sink through the virtual MAC. */
  udpViaVmac(count: number): Promise<number>;
  /** Sends `count` ICMP echo requests to the VIP (L2: the virtual MAC), 100 ms apart; returns the first send time. */
  pingVip(count: number, identifier: number): Promise<number>;
}

export interface ScenarioResult {
  name: string;
  tester: Observed;
  sink: Observed;
  testerPcap: string;
  sinkPcap: string;
  /** tcpdump's closing statistics of both captures (cases judge only complete ones). */
  captures: CaptureStats[];
  marks: Mark[];
  /** Named times (ms since epoch) the script recorded. */
  at: Record<string, number>;
}

/**
 * One run of the DUT against a scripted tester: deploy + captures (tester's LAN side,
 * sink's far side), the script, then teardown of the daemon. Cases assert on the result.
 */
export async function runScenario(
  name: string,
  lab: Lab,
  adapter: VendorAdapter,
  speaker: FrameSpeaker,
  config: VrrpInstanceConfig,
  script: (d: Driver, at: Record<string, number>) => Promise<void>,
): Promise<ScenarioResult> {
  const tester = lab.host("tester").remote;
  const sink = lab.host("sink").remote;
  const stamp = `${lab.prefix}-${name}`;
  const testerPcap = `/tmp/tandem-vrrp-${stamp}-lan.pcap`;
  const sinkPcap = `/tmp/tandem-vrrp-${stamp}-far.pcap`;
  await rm(testerPcap, { force: true });
  await rm(sinkPcap, { force: true });
  const lan = await Capture.start(tester, {
    interface: "eth0",
    filter: "vrrp or arp or udp or icmp",
    snapLength: 256,
    path: testerPcap,
  });
  const far = await Capture.start(sink, {
    interface: "eth0",
    filter: `udp dst port ${PLAN.sinkPort}`,
    snapLength: 128,
    path: sinkPcap,
  });
  const marks: Mark[] = [];
  const at: Record<string, number> = {};
  const driver: Driver = {
    speaker,
    adapter,
    mark(label) {
      const t = Date.now();
      marks.push({ atMs: t, label });
      return t;
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    async startDut() {
      await adapter.deploy({ vrrp: [config] });
      const t = driver.mark("DUT started");
      await adapter.start();
      return t;
    },
    arpForVip: () => speaker.send(arpRequestFrame(PLAN.testerMac, PLAN.testerIp, PLAN.vip)),
    udpViaVmac: (count) =>
      speaker.send(
        ...Array.from({ length: count }, (_, seq) =>
          udpFrame({
            srcMac: PLAN.testerMac,
            dstMac: PLAN.vmac,
            srcIp: PLAN.testerIp,
            dstIp: PLAN.sinkIp,
            dstPort: PLAN.sinkPort,
            seq,
          }),
        ),
      ),
    async pingVip(count, identifier) {
      let first = 0;
      for (let sequence = 1; sequence <= count; sequence++) {
        const t = await speaker.send(
          echoRequestFrame({
            srcMac: PLAN.testerMac,
            dstMac: PLAN.vmac,
            srcIp: PLAN.testerIp,
            dstIp: PLAN.vip,
            identifier,
            sequence,
          }),
        );
        first ||= t;
        if (sequence < count) await driver.sleep(100);
      }
      return first;
    },
  };
  let captures: CaptureStats[];
  try {
    await script(driver, at);
    await driver.sleep(200); // the last frames reach the captures
  } finally {
    captures = [await lan.stop(), await far.stop()];
    await adapter.stop("crash").catch(() => undefined);
  }
  return {
    name,
    // capture.path: the controller's copy (fetched over SFTP from a physical host).
    tester: await readObserved(lan.path),
    sink: await readObserved(far.path),
    testerPcap: lan.path,
    sinkPcap: far.path,
    captures,
    marks,
    at,
  };
}

/** Attaches the scenario's evidence: both captures, the advertisement timeline chart and the measurements. */
export async function attachScenario(
  ctx: CaseContext,
  r: ScenarioResult,
  measured: Record<string, unknown>,
): Promise<void> {
  await ctx.attachFile(`capture LAN (${r.name})`, r.testerPcap, "application/vnd.tcpdump.pcap");
  await ctx.attachFile(`capture far side (${r.name})`, r.sinkPcap, "application/vnd.tcpdump.pcap");
  const adverts = r.tester.adverts;
  if (adverts.length > 0) {
    const svg = await renderTimelineSvg(advertTimeline(adverts, NAMES, 250), {
      title: `VRRP advertisements by sender (${r.name})`,
      events: r.marks,
      originMs: Math.min(adverts[0]!.tsMs, r.marks[0]?.atMs ?? Number.POSITIVE_INFINITY),
      width: 700,
      height: 220,
    });
    await ctx.attachText("advertisement timeline", svg, "image/svg+xml", "timeline.svg");
  }
  await ctx.attachText(
    "measurements",
    JSON.stringify({ ...measured, captures: r.captures }, null, 2),
    "application/json",
    "measurements.json",
  );
}

/**
 * Advertisements (RFC 5798: type 1 only) from `ip` in a time window. Other VRRP-format
 * types from the DUT (a VRLS member's type 2-10 extension messages) are not advertisements;
 * they are kept in the capture and listed by `otherTypesFrom`.
 */
export function advertsFrom(r: ScenarioResult, ip: string, fromMs = 0, toMs = Number.POSITIVE_INFINITY) {
  return r.tester.adverts.filter(
    (a) => a.ip.src === ip && a.vrrp.type === 1 && a.tsMs >= fromMs && a.tsMs <= toMs,
  );
}

export function otherTypesFrom(r: ScenarioResult, ip: string): Record<number, number> {
  const out: Record<number, number> = {};
  for (const a of r.tester.adverts)
    if (a.ip.src === ip && a.vrrp.type !== 1) out[a.vrrp.type] = (out[a.vrrp.type] ?? 0) + 1;
  return out;
}
