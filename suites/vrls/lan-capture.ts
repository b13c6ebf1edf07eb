import { Capture } from "../../lib/traffic/capture.ts";
import { PcapReader } from "../../lib/traffic/pcap-reader.ts";
import {
  decodeEthernet,
  decodeIpv4,
  decodeVrls,
  ETHERTYPE,
  hasVrlsExtension,
  IP_PROTOCOL,
  VRLS_TYPE,
  type VrlsMessage,
} from "../../lib/wire/index.ts";
import type { VrlsLab } from "./lab.ts";

/**
 * The VRLS control traffic a hub port sees, decoded with lib/wire: VRRP-format messages
 * by type (seed Fig. 3 / Fig. 10A-F: 1 advertisement, 2 response, 3 allocation, 4
 * allocation confirmation, 5 sequence number information, 6 review request, 7/8 flow
 * rate request/response) and ICMP information request/reply (Fig. 8B: 15/16).
 */
export interface LanMessage {
  tsMs: number;
  src: string;
  dst: string;
  kind: "vrrp" | "icmp";
  type: number;
  /**
   * VRLS messages (types 2-10): the sender and its sequence number from the extension
   * header (read, not authenticated). They differ from `src` when a message is transferred
   * unchanged (seed Fig. 15 P25: the substitution server passes a backup's response on).
   */
  sender?: string;
  sequence?: number;
}

/** Sender and sequence of a VRLS extension header (docs/wire.md), when the message has one. */
function vrlsHeader(vrrp: Uint8Array): { sender: string; sequence: number } | undefined {
  if (!hasVrlsExtension(vrrp)) return undefined;
  const at = 8 + (vrrp[3] ?? 0) * 4;
  const view = new DataView(vrrp.buffer, vrrp.byteOffset, vrrp.byteLength);
  return {
    sender: `${vrrp[at + 4]}.${vrrp[at + 5]}.${vrrp[at + 6]}.${vrrp[at + 7]}`,
    sequence: view.getUint32(at + 12),
  };
}

export async function readLanMessages(path: string): Promise<{ messages: LanMessage[]; malformed: number }> {
  const messages: LanMessage[] = [];
  let malformed = 0;
  for await (const rec of PcapReader.fromFile(path)) {
    const eth = decodeEthernet(rec.data);
    if (!eth.ok || eth.value.etherType !== ETHERTYPE.ipv4) continue;
    const ip = decodeIpv4(eth.value.payload);
    if (!ip.ok) {
      malformed++;
      continue;
    }
    const p = ip.value;
    const first = p.payload[0];
    if (first === undefined) continue;
    if (p.protocol === IP_PROTOCOL.vrrp) {
      const type = first & 0x0f;
      const h = type === VRLS_TYPE.advertisement ? undefined : vrlsHeader(p.payload);
      messages.push({ tsMs: rec.tsMs, src: p.src, dst: p.dst, kind: "vrrp", type, ...(h ?? {}) });
    } else if (p.protocol === IP_PROTOCOL.icmp)
      messages.push({ tsMs: rec.tsMs, src: p.src, dst: p.dst, kind: "icmp", type: first });
  }
  return { messages, malformed };
}

export function countBy(
  messages: readonly LanMessage[],
  kind: LanMessage["kind"],
  type: number,
  src?: string,
): number {
  return messages.filter((m) => m.kind === kind && m.type === type && (src === undefined || m.src === src))
    .length;
}

/** "allocationConfirmation" -> "allocation confirmation", by type number. */
const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(VRLS_TYPE).map(([name, type]) => [
    type,
    name.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`),
  ]),
);

/**
 * The capture as a readable message listing for the evidence: every VRRP/VRLS message
 * decoded and authenticated with lib/wire (decodeVrls, the virtual router's key), one
 * line each with the fields that matter for the sequence (review: rates and overflows;
 * allocation: assignments per member). Advertisements and responses are left out unless
 * `all`. A message that fails to decode is listed with the decoder's reason.
 */
export async function describeLanMessages(
  path: string,
  key: string,
  options: { originMs?: number; all?: boolean } = {},
): Promise<string> {
  const lines: string[] = [];
  const keyBytes = new TextEncoder().encode(key);
  for await (const rec of PcapReader.fromFile(path)) {
    const eth = decodeEthernet(rec.data);
    if (!eth.ok || eth.value.etherType !== ETHERTYPE.ipv4) continue;
    const ip = decodeIpv4(eth.value.payload);
    if (!ip.ok || ip.value.protocol !== IP_PROTOCOL.vrrp) continue;
    const type = (ip.value.payload[0] ?? 0) & 0x0f;
    if (!options.all && (type === VRLS_TYPE.advertisement || type === VRLS_TYPE.response)) continue;
    const t = ((rec.tsMs - (options.originMs ?? 0)) / 1000).toFixed(3);
    const head = `${t.padStart(9)} s  ${ip.value.src.padEnd(12)} -> ${ip.value.dst.padEnd(12)} type ${type} ${TYPE_NAMES[type] ?? "?"}`;
    const m = decodeVrls(ip.value.payload, { key: keyBytes });
    if (!m.ok) {
      lines.push(`${head}  (undecodable: ${m.error.reason})`);
      continue;
    }
    const transferred =
      m.value.sender !== ip.value.src
        ? `  [transferred: ${m.value.sender}'s message #${m.value.sequence}]`
        : "";
    lines.push(`${head}  ${summarize(m.value)}${transferred}`);
  }
  return `${lines.join("\n")}\n`;
}

function summarize(m: VrlsMessage): string {
  switch (m.type) {
    case VRLS_TYPE.allocation: {
      const per: Record<string, number> = {};
      for (const a of m.assignments) per[a.router] = (per[a.router] ?? 0) + a.conditions.length;
      return `serial ${m.allocationSerial} mode ${m.mode}, conditions per router ${JSON.stringify(per)}`;
    }
    case VRLS_TYPE.allocationConfirmation:
      return `serial ${m.allocationSerial} accepted ${m.accepted} done ${m.done ?? false}`;
    case VRLS_TYPE.reviewRequest:
      return `rateExceeded ${m.rateExceeded} overflowExceeded ${m.overflowExceeded} total ${m.totalRateBps} bit/s, ${m.overflowCount} overflows per ${m.timeUnitMs} ms`;
    case VRLS_TYPE.flowRateRequest:
      return `serial ${m.allocationSerial}, ${m.conditions.length} conditions asked`;
    case VRLS_TYPE.flowRateResponse: {
      const total = m.rates.reduce((a, r) => a + Number(r.rateBps), 0);
      return `serial ${m.allocationSerial}, ${m.rates.length} conditions, total ${total} bit/s, ${m.overflowCount} overflows per ${m.timeUnitMs} ms`;
    }
    case VRLS_TYPE.registration:
    case VRLS_TYPE.registrationAck:
      return `role ${m.role} registered ${m.registeredAddress}`;
    default:
      return `epoch ${m.masterEpoch}`;
  }
}

/**
 * When `member` announced its own hand-offs done: the time of its first allocation
 * confirmation (type 4) with the "done" flag, decoded with lib/wire, at or after `fromMs`.
 */
export async function firstOwnDone(
  path: string,
  key: string,
  member: string,
  fromMs: number,
): Promise<number | undefined> {
  const keyBytes = new TextEncoder().encode(key);
  for await (const rec of PcapReader.fromFile(path)) {
    if (rec.tsMs < fromMs) continue;
    const eth = decodeEthernet(rec.data);
    if (!eth.ok || eth.value.etherType !== ETHERTYPE.ipv4) continue;
    const ip = decodeIpv4(eth.value.payload);
    if (!ip.ok || ip.value.protocol !== IP_PROTOCOL.vrrp || ip.value.src !== member) continue;
    const m = decodeVrls(ip.value.payload, { key: keyBytes });
    if (m.ok && m.value.type === VRLS_TYPE.allocationConfirmation && m.value.done) return rec.tsMs;
  }
  return undefined;
}

/**
 * The two captures a scenario judges by: the hub seen from a LAN end system's port (control
 * messages, decoded with lib/wire) and the far side seen from the server (forwarded
 * datagrams of the scenario's flows, attributed by source MAC).
 */
export async function startScenarioCaptures(
  v: VrlsLab,
  scenario: string,
  options: { lanFilter: string; farPorts: readonly number[] },
): Promise<{ lan: Capture; far: Capture }> {
  const lab = v.lab;
  const lan = await Capture.start(lab.host(v.hubWatch.host).remote, {
    interface: v.hubWatch.iface,
    filter: options.lanFilter,
    snapLength: 2048,
    path: `/tmp/tandem-vrls-${lab.prefix}-${scenario}-lan.pcap`,
  });
  const far = await Capture.start(lab.host(v.server.host).remote, {
    interface: v.server.iface,
    filter: `udp and (${options.farPorts.map((p) => `dst port ${p}`).join(" or ")})`,
    snapLength: 64,
    path: `/tmp/tandem-vrls-${lab.prefix}-${scenario}-far.pcap`,
  });
  return { lan, far };
}
