import { PcapReader } from "../../lib/traffic/pcap-reader.ts";
import { decodeEthernet, decodeIpv4, ETHERTYPE, IP_PROTOCOL } from "../../lib/wire/index.ts";

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
    if (p.protocol === IP_PROTOCOL.vrrp)
      messages.push({ tsMs: rec.tsMs, src: p.src, dst: p.dst, kind: "vrrp", type: first & 0x0f });
    else if (p.protocol === IP_PROTOCOL.icmp)
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
