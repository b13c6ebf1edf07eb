import { rm } from "node:fs/promises";
import type { Lab } from "../../lib/lab/index.ts";
import { Capture, type CaptureStats } from "../../lib/traffic/capture.ts";
import { renderTimelineSvg } from "../../lib/traffic/chart.ts";
import { neighborSolicitationFrame } from "../../lib/wire/index.ts";
import type { VendorAdapter, VrrpInstanceConfig } from "../../vendor-adapters/types.ts";
import type { CaseContext } from "../support/requirement.ts";
import { advertFrame, arpRequestFrame, echoRequestFrame, udpFrame } from "./frames.ts";
import { advertTimeline, type Observed, readObserved } from "./observed.ts";
import type { FrameSpeaker } from "./speaker.ts";

/**
 * The address family this run certifies (issue 16): `tandem certify --family ipv6` sets
 * TANDEM_FAMILY=ipv6 and picks labs/vrrp-dut-v6.yaml; default IPv4 on labs/vrrp-dut.yaml.
 */
export const FAMILY: 4 | 6 = process.env.TANDEM_FAMILY === "ipv6" ? 6 : 4;

/** The vrrp suite's lab plan (labs/vrrp-dut.yaml or labs/vrrp-dut-v6.yaml) and the DUT's default configuration. */
export interface Plan {
  family: 4 | 6;
  vrid: number;
  /** The virtual address the cases probe (ARP/ND, echo, forwarding): IPv4 VIP, IPv6 global virtual address. */
  vip: string;
  /** Every virtual address in advertisement order (IPv6: the link-local virtual address first). */
  vips: readonly string[];
  /** Prefix length of the virtual addresses as configured. */
  vipPrefix: number;
  vmac: string;
  /** Where the DUT's advertisements come from (IPv6: its link-local address). */
  dutIp: string;
  dutMac: string;
  /** Where the tester's advertisements come from (IPv6: its link-local address, greater than the DUT's). */
  testerIp: string;
  /** The tester's source for datagrams and echo requests (IPv6: its global address). */
  testerData: string;
  testerMac: string;
  sinkIp: string;
  sinkPort: number;
  /** Where advertisements go: 224.0.0.18 or ff02::12. */
  multicast: string;
  priority: number;
  intervalMs: number;
}

const PLAN4: Plan = {
  family: 4,
  vrid: 7,
  vip: "198.18.2.1",
  vips: ["198.18.2.1"],
  vipPrefix: 24,
  vmac: "00:00:5e:00:01:07",
  dutIp: "198.18.2.2",
  dutMac: "02:00:00:00:02:02",
  testerIp: "198.18.2.10",
  testerData: "198.18.2.10",
  testerMac: "02:00:00:00:02:0a",
  sinkIp: "198.18.102.10",
  sinkPort: 9999,
  multicast: "224.0.0.18",
  priority: 100,
  intervalMs: 1000,
};

const PLAN6: Plan = {
  ...PLAN4,
  family: 6,
  vip: "2001:db8:2::1",
  vips: ["fe80::7", "2001:db8:2::1"],
  vipPrefix: 64,
  vmac: "00:00:5e:00:02:07",
  dutIp: "fe80::2",
  testerIp: "fe80::ffff:ffff:ffff:a",
  testerData: "2001:db8:2::a",
  sinkIp: "2001:db8:102::a",
  multicast: "ff02::12",
};

export const PLAN: Plan = FAMILY === 6 ? PLAN6 : PLAN4;

export const NAMES: Record<string, string> = { [PLAN.dutIp]: "dut", [PLAN.testerIp]: "tester" };

export function dutConfig(over: Partial<VrrpInstanceConfig> = {}): VrrpInstanceConfig {
  return {
    interface: "eth0",
    vrid: PLAN.vrid,
    priority: PLAN.priority,
    advertIntervalMs: PLAN.intervalMs,
    preempt: true,
    version: 3,
    virtualAddresses: PLAN.vips.map((a) => `${a}/${PLAN.vipPrefix}`),
    ...(FAMILY === 6 ? { family: 6 as const } : {}),
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
    addresses: [...PLAN.vips],
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
  /** Sends an ARP request (IPv6: a Neighbor Solicitation) for the VIP; returns the send time. */
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
    filter: FAMILY === 6 ? "vrrp or arp or udp or icmp or ip6" : "vrrp or arp or udp or icmp",
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
    arpForVip: () =>
      speaker.send(
        FAMILY === 6
          ? neighborSolicitationFrame({ mac: PLAN.testerMac, src: PLAN.testerData, target: PLAN.vip })
          : arpRequestFrame(PLAN.testerMac, PLAN.testerIp, PLAN.vip),
      ),
    udpViaVmac: (count) =>
      speaker.send(
        ...Array.from({ length: count }, (_, seq) =>
          udpFrame({
            srcMac: PLAN.testerMac,
            dstMac: PLAN.vmac,
            srcIp: PLAN.testerData,
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
            srcIp: PLAN.testerData,
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
    (a) => isFrom(a.ip.src, ip) && a.vrrp.type === 1 && a.tsMs >= fromMs && a.tsMs <= toMs,
  );
}

/**
 * Whether an advertisement's source is `ip`. IPv6: the DUT sends from a link-local address
 * of its own choosing (the lab's fe80::2 or the kernel's EUI-64 one), so on this two-speaker
 * hub every advertisement not from the tester is the DUT's.
 */
function isFrom(src: string, ip: string): boolean {
  if (FAMILY === 6 && ip === PLAN.dutIp) return src !== PLAN.testerIp;
  return src === ip;
}

export function otherTypesFrom(r: ScenarioResult, ip: string): Record<number, number> {
  const out: Record<number, number> = {};
  for (const a of r.tester.adverts)
    if (isFrom(a.ip.src, ip) && a.vrrp.type !== 1) out[a.vrrp.type] = (out[a.vrrp.type] ?? 0) + 1;
  return out;
}
