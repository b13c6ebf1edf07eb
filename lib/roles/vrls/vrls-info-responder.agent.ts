/**
 * End-system responder for ICMP information requests (type 15 -> reply type 16, RFC 792,
 * seed Figs. 8A/8B). Linux stopped answering type 15 long ago, so the lab starts this
 * agent on end systems when discovery by ICMP is wanted; discovery also works without it
 * (the master learns sources passively from the traffic it sees).
 */
import { agentArgs, log, serveAgent } from "../../remote/agent-runtime.ts";
import { decodeIcmp, encodeIcmp, ICMP_TYPE } from "../../wire/icmp.ts";
import { decodeIpv4, encodeIpv4, IP_PROTOCOL } from "../../wire/ipv4.ts";
import { RawIo } from "./rawio.ts";

const args = agentArgs<{ interface?: string } | undefined>();
const iface = args?.interface ?? "eth0";
const counters = { requests: 0, replies: 0, malformed: 0 };
const requesters: Record<string, number> = {};

const io = await RawIo.open({
  interface: iface,
  listen: ["icmp"],
  onLog: (l) => log(l),
  onIcmp: (packet) => {
    const ip = decodeIpv4(packet);
    if (!ip.ok || ip.value.protocol !== IP_PROTOCOL.icmp) return;
    const icmp = decodeIcmp(ip.value.payload);
    if (!icmp.ok || !icmp.value.checksumValid) {
      counters.malformed++;
      return;
    }
    const m = icmp.value;
    if (m.type !== ICMP_TYPE.informationRequest || m.identifier === undefined) return;
    counters.requests++;
    requesters[ip.value.src] = (requesters[ip.value.src] ?? 0) + 1;
    // RFC 792: the reply swaps the addresses; ours replaces a broadcast destination.
    const reply = encodeIcmp({
      type: ICMP_TYPE.informationReply,
      code: 0,
      identifier: m.identifier,
      sequence: m.sequence ?? 0,
      data: m.data,
    });
    io.sendIp(
      encodeIpv4({ src: io.address, dst: ip.value.src, protocol: IP_PROTOCOL.icmp, ttl: 64, payload: reply }),
    );
    counters.replies++;
  },
});
log(`ICMP information responder on ${iface} (${io.address})`);

serveAgent({
  name: "vrls-info-responder",
  methods: { stats: () => ({ ...counters, requesters, address: io.address, rawio: io.stats() }) },
  onShutdown: () => io.close(),
});
