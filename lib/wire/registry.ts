import { createHmac, timingSafeEqual } from "node:crypto";
import fc from "fast-check";
import { type ArpPacket, decodeArp, encodeArp } from "./arp.ts";
import { formatIpv6, formatMac } from "./bytes.ts";
import { decodeEthernet, type EthernetFrame, encodeEthernet } from "./ethernet.ts";
import { decodeIcmp, encodeIcmp, type IcmpMessage, icmpHasIdentifier } from "./icmp.ts";
import { decodeNeighborDiscovery, encodeNeighborDiscovery, type NdMessage, type NdOption } from "./icmpv6.ts";
import { decodeIpv4, encodeIpv4, type Ipv4Packet } from "./ipv4.ts";
import { decodeIpv6, encodeIpv6, type Ipv6Packet } from "./ipv6.ts";
import {
  type ConnEntry,
  decodeNatlb,
  encodeNatlb,
  type NatlbBody,
  type NatlbMessage,
  resealNatlb,
  TCP_CT_STATES,
} from "./natlb.ts";
import { decodeLoadReport, encodeLoadReport, type LoadReport } from "./natlb-status.ts";
import type { DecodeResult } from "./result.ts";
import { decodeTcp, encodeTcp, type TcpSegment, tcpFlagsFromByte } from "./tcp.ts";
import { decodeUdp, encodeUdp, type UdpDatagram } from "./udp.ts";
import {
  type Condition,
  decodeVrls,
  encodeVrls,
  type FlowMarker,
  type HandoffMode,
  resealVrls,
  type SequenceEntry,
  type VrlsBody,
  type VrlsMessage,
} from "./vrls.ts";
import { decodeVrrp, encodeVrrp, type Vrrp2Packet, type Vrrp3Packet } from "./vrrp.ts";

/**
 * Every codec of lib/wire with a fast-check arbitrary of valid values. The round-trip and
 * fuzz tests (test/wire-properties.test.ts) iterate this list, so a codec added here is
 * covered without writing new tests. `reseal` re-authenticates mutated bytes so the fuzz
 * test reaches the body parsers of authenticated formats.
 */
export interface CodecEntry<T> {
  name: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): DecodeResult<unknown>;
  arbitrary: fc.Arbitrary<T>;
  reseal?(bytes: Uint8Array): Uint8Array;
  /**
   * Signed formats: true when the MAC in `bytes` verifies under REGISTRY_CONTEXT.key,
   * computed here independently of the decoder; the fuzzer (lib/fuzz) requires every
   * accepted input to pass it.
   */
  verify?(bytes: Uint8Array): boolean;
}

/** Fixed context for codecs that need addresses or keys. */
export const REGISTRY_CONTEXT = {
  src: "198.18.0.1",
  dst: "224.0.0.18",
  key: new TextEncoder().encode("tandem-registry-key"),
  src6: "fe80::200:ff:fe00:1",
  dst6: "ff02::12",
} as const;

// ---------- primitive arbitraries ----------
export const u8 = fc.integer({ min: 0, max: 0xff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
export const ipv4Address = fc.tuple(u8, u8, u8, u8).map((b) => b.join("."));
export const ipv6Address = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIpv6(b));
/** fe80::/64 with a random interface identifier. */
export const linkLocalIpv6 = fc
  .uint8Array({ minLength: 8, maxLength: 8 })
  .map((id) => formatIpv6(Uint8Array.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, ...id])));
export const macAddress = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => formatMac(b));
const bytes = (maxLength: number) => fc.uint8Array({ maxLength });
const options32 = fc
  .integer({ min: 0, max: 10 })
  .chain((n) => fc.uint8Array({ minLength: n * 4, maxLength: n * 4 }));
const etherType = u16.filter((t) => t >= 0x0600 && t !== 0x8100);

const ethernetArb: fc.Arbitrary<EthernetFrame> = fc
  .tuple(
    macAddress,
    macAddress,
    fc.option(
      fc.record({ id: fc.integer({ min: 0, max: 4095 }), priority: fc.integer({ min: 0, max: 7 }) }),
      {
        nil: undefined,
      },
    ),
    etherType,
    bytes(100),
  )
  .map(([dst, src, vlan, type, payload]) =>
    vlan ? { dst, src, vlan, etherType: type, payload } : { dst, src, etherType: type, payload },
  );

const arpArb: fc.Arbitrary<ArpPacket> = fc.record({
  operation: u16,
  senderMac: macAddress,
  senderIp: ipv4Address,
  targetMac: macAddress,
  targetIp: ipv4Address,
});

const ipv4Arb: fc.Arbitrary<Ipv4Packet> = fc.record({
  tos: u8,
  identification: u16,
  dontFragment: fc.boolean(),
  moreFragments: fc.boolean(),
  fragmentOffset: fc.integer({ min: 0, max: 0x1fff }),
  ttl: u8,
  protocol: u8,
  src: ipv4Address,
  dst: ipv4Address,
  options: options32,
  payload: bytes(100),
});

const ipv6Arb: fc.Arbitrary<Ipv6Packet> = fc.record({
  trafficClass: u8,
  flowLabel: fc.integer({ min: 0, max: 0xfffff }),
  nextHeader: u8,
  hopLimit: u8,
  src: ipv6Address,
  dst: ipv6Address,
  payload: bytes(100),
});

const ndOptionArb: fc.Arbitrary<NdOption> = fc.record({
  type: u8,
  value: fc
    .integer({ min: 1, max: 4 })
    .chain((k) => fc.uint8Array({ minLength: 8 * k - 2, maxLength: 8 * k - 2 })),
});
const ndArb: fc.Arbitrary<NdMessage> = fc.oneof(
  fc.record({
    type: fc.constant(135 as const),
    code: u8,
    target: ipv6Address,
    options: fc.array(ndOptionArb, { maxLength: 4 }),
  }),
  fc.record({
    type: fc.constant(136 as const),
    code: u8,
    router: fc.boolean(),
    solicited: fc.boolean(),
    override: fc.boolean(),
    target: ipv6Address,
    options: fc.array(ndOptionArb, { maxLength: 4 }),
  }),
);

const udpArb: fc.Arbitrary<UdpDatagram> = fc.record({ srcPort: u16, dstPort: u16, payload: bytes(100) });

const tcpArb: fc.Arbitrary<TcpSegment> = fc.record({
  srcPort: u16,
  dstPort: u16,
  seq: u32,
  ack: u32,
  flags: u8.map(tcpFlagsFromByte),
  window: u16,
  urgentPointer: u16,
  options: options32,
  payload: bytes(100),
});

const icmpArb: fc.Arbitrary<IcmpMessage> = fc
  .tuple(u8, u8, u16, u16, u32, bytes(64))
  .map(([type, code, identifier, sequence, rest, data]) =>
    icmpHasIdentifier(type)
      ? { type, code, identifier, sequence, data }
      : { type, code, restOfHeader: rest, data },
  );

const vrrp3Arb: fc.Arbitrary<Vrrp3Packet> = fc.record({
  version: fc.constant(3 as const),
  type: fc.integer({ min: 0, max: 15 }),
  vrid: u8,
  priority: u8,
  maxAdverIntCs: fc.integer({ min: 0, max: 0x0fff }),
  addresses: fc.array(ipv4Address, { maxLength: 12 }),
  extension: bytes(64),
});

/** VRRPv3 over IPv6: 16-byte addresses, the first link-local (RFC 9568 5.2.9). */
const vrrp3v6Arb: fc.Arbitrary<Vrrp3Packet> = fc.record({
  version: fc.constant(3 as const),
  type: fc.integer({ min: 0, max: 15 }),
  vrid: u8,
  priority: u8,
  maxAdverIntCs: fc.integer({ min: 0, max: 0x0fff }),
  addresses: fc
    .tuple(linkLocalIpv6, fc.array(ipv6Address, { maxLength: 6 }))
    .map(([ll, rest]) => [ll, ...rest]),
  family: fc.constant(6 as const),
  extension: bytes(64),
});

const vrrp2Arb: fc.Arbitrary<Vrrp2Packet> = fc.record({
  version: fc.constant(2 as const),
  type: fc.integer({ min: 0, max: 15 }),
  vrid: u8,
  priority: u8,
  authType: u8,
  adverIntSeconds: u8,
  addresses: fc.array(ipv4Address, { maxLength: 12 }),
  authData: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  extension: bytes(64),
});

// ---------- VRLS ----------
export const conditionArb: fc.Arbitrary<Condition> = fc.oneof(
  fc.record({
    kind: fc.constant("prefix" as const),
    address: ipv4Address,
    prefixLength: fc.integer({ min: 0, max: 32 }),
  }),
  fc
    .tuple(fc.constantFrom("src" as const, "src+dst" as const), fc.integer({ min: 1, max: 0xffff }), fc.nat())
    .map(([hashInput, bucketCount, n]) => ({
      kind: "bucket" as const,
      hashInput,
      bucketCount,
      bucket: n % bucketCount,
    })),
);
const conditions = fc.array(conditionArb, { maxLength: 6 });
const modeArb = fc.constantFrom<HandoffMode>("timer", "sequence-number", "exactly-once");
const sequenceEntryArb: fc.Arbitrary<SequenceEntry> = fc.oneof(
  conditionArb.map((condition) => ({ condition, found: false as const })),
  fc.record({
    condition: conditionArb,
    found: fc.constant(true as const),
    src: ipv4Address,
    dst: ipv4Address,
    srcPort: u16,
    dstPort: u16,
    tcpSeq: u32,
  }),
);
const markerArb: fc.Arbitrary<FlowMarker> = fc.record({
  protocol: u8,
  src: ipv4Address,
  dst: ipv4Address,
  srcPort: u16,
  dstPort: u16,
  packetId: u64,
  packetCount: u64,
});
const partsArb = fc
  .tuple(fc.integer({ min: 1, max: 0xffff }), fc.nat())
  .map(([parts, n]) => ({ parts, part: n % parts }));

const vrlsBodyArb: fc.Arbitrary<VrlsBody> = fc.oneof(
  fc.record({ type: fc.constant(1 as const), allocationSerial: u32, mode: modeArb, memberCount: u16 }),
  fc.record({
    type: fc.constant(2 as const),
    allocationSerial: u32,
    state: fc.constantFrom("idle" as const, "working" as const, "fault" as const),
  }),
  fc.record({
    type: fc.constant(3 as const),
    allocationSerial: u32,
    mode: modeArb,
    timerDelayMs: u16,
    assignments: fc.array(
      fc.record(
        { router: ipv4Address, previousRouter: ipv4Address, conditions },
        { requiredKeys: ["router", "conditions"] },
      ),
      { maxLength: 4 },
    ),
  }),
  fc
    .tuple(
      fc.record(
        {
          type: fc.constant(4 as const),
          allocationSerial: u32,
          accepted: fc.boolean(),
          done: fc.constant(true as const),
          conditions,
        },
        { requiredKeys: ["type", "allocationSerial", "accepted", "conditions"] },
      ),
      // The held-packets extension (flags bit 1): each names a condition by its index.
      fc.array(fc.record({ index: fc.nat(), packetId: u64 }), { maxLength: 4 }),
    )
    .map(([body, held]) =>
      held.length === 0 || body.conditions.length === 0
        ? body
        : {
            ...body,
            held: held.map((h) => ({
              conditionIndex: h.index % body.conditions.length,
              packetId: h.packetId,
            })),
          },
    ),
  fc
    .tuple(u32, partsArb, fc.array(sequenceEntryArb, { maxLength: 5 }), fc.array(markerArb, { maxLength: 5 }))
    .map(([allocationSerial, p, sequences, markers]) => ({
      type: 5 as const,
      allocationSerial,
      ...p,
      sequences,
      markers,
    })),
  fc.record({
    type: fc.constant(6 as const),
    rateExceeded: fc.boolean(),
    overflowExceeded: fc.boolean(),
    totalRateBps: u64,
    overflowCount: u32,
    timeUnitMs: u32,
  }),
  fc.record({ type: fc.constant(7 as const), allocationSerial: u32, conditions }),
  fc.record({
    type: fc.constant(8 as const),
    allocationSerial: u32,
    timeUnitMs: u32,
    overflowCount: u32,
    rates: fc.array(fc.record({ condition: conditionArb, rateBps: u64, overflows: u32 }), { maxLength: 5 }),
  }),
  fc.record({
    type: fc.constant(9 as const),
    role: fc.constantFrom("router" as const, "coordinator" as const),
    registeredAddress: ipv4Address,
    priority: u8,
  }),
  fc.record({
    type: fc.constant(10 as const),
    accepted: fc.boolean(),
    role: fc.constantFrom("router" as const, "coordinator" as const),
    registeredAddress: ipv4Address,
  }),
);

export const vrlsMessageArb: fc.Arbitrary<VrlsMessage> = fc
  .tuple(
    fc.record({
      vrid: u8,
      priority: u8,
      maxAdverIntCs: fc.integer({ min: 0, max: 0x0fff }),
      addresses: fc.array(ipv4Address, { maxLength: 4 }),
      sender: ipv4Address,
      senderIncarnation: u32,
      sequence: u32,
      masterEpoch: u32,
      inReplyTo: u32,
    }),
    vrlsBodyArb,
  )
  .map(([envelope, body]) => ({ ...envelope, ...body }));

// ---------- NAT-LB ----------
const endpointArb = fc.record({ address: ipv4Address, port: u16 });
export const connEntryArb: fc.Arbitrary<ConnEntry> = fc
  .tuple(
    fc.record({
      protocol: u8,
      tcpState: fc.constantFrom(...TCP_CT_STATES),
      status: u16,
      client: endpointArb,
      vip: endpointArb,
      server: endpointArb,
      timeoutSeconds: u32,
      mark: u32,
      flowControl: fc.record({
        origSeq: u32,
        replySeq: u32,
        origWindow: u16,
        replyWindow: u16,
        origWscale: u8,
        replyWscale: u8,
      }),
      removed: fc.boolean(),
    }),
    fc.option(endpointArb, { nil: undefined }),
  )
  .map(([base, internal]) => (internal ? { ...base, internal } : base));
const entries = fc.array(connEntryArb, { maxLength: 5 });
const balancerId = u32;

const natlbBodyArb: fc.Arbitrary<NatlbBody> = fc.oneof(
  fc.record({
    type: fc.constant(1 as const),
    vip: ipv4Address,
    from: balancerId,
    to: balancerId,
    enter: fc.boolean(),
  }),
  fc.record({
    type: fc.constant(2 as const),
    vip: ipv4Address,
    from: balancerId,
    to: balancerId,
    method: fc.constantFrom("garp" as const, "vrrp" as const),
  }),
  fc
    .tuple(ipv4Address, balancerId, balancerId, partsArb, entries)
    .map(([vip, from, to, p, list]) => ({ type: 3 as const, vip, from, to, ...p, entries: list })),
  fc.record({
    type: fc.constant(4 as const),
    vip: ipv4Address,
    from: balancerId,
    to: balancerId,
    entriesTransferred: u32,
  }),
  fc
    .tuple(balancerId, fc.constantFrom("full" as const, "delta" as const), u32, partsArb, entries)
    .map(([balancer, kind, generation, p, list]) => ({
      type: 5 as const,
      balancer,
      kind,
      generation,
      ...p,
      entries: list,
    })),
  fc.record({
    type: fc.constant(6 as const),
    inReplyTo: u64,
    status: fc.constantFrom("ok" as const, "failed" as const),
    detail: u32,
  }),
);

export const natlbMessageArb: fc.Arbitrary<NatlbMessage> = fc
  .tuple(fc.record({ sender: balancerId, sequence: u64, moveId: u32 }), natlbBodyArb)
  .map(([header, body]) => ({ ...header, ...body }));

const { src, dst, key } = REGISTRY_CONTEXT;
const vrlsOptions = { key, src, dst };

/** HMAC-SHA256 trailer (last 32 bytes) over everything before it, with the bytes at `zeroed` taken as 0. */
function trailerMacVerifies(bytes: Uint8Array, zeroed: readonly number[] = []): boolean {
  if (bytes.length < 32) return false;
  const signed = bytes.slice(0, bytes.length - 32);
  for (const i of zeroed) if (i < signed.length) signed[i] = 0;
  return timingSafeEqual(
    createHmac("sha256", key).update(signed).digest(),
    bytes.subarray(bytes.length - 32),
  );
}

const loadReportArb: fc.Arbitrary<LoadReport> = fc.record({
  sender: balancerId,
  sequence: u64,
  balancer: balancerId,
  invalidRejected: u64,
  vips: fc.array(
    fc.record({ vip: ipv4Address, owned: fc.boolean(), transition: fc.boolean(), packets: u64, bytes: u64 }),
    { maxLength: 6 },
  ),
});

function entry<T>(e: CodecEntry<T>): CodecEntry<unknown> {
  return e as CodecEntry<unknown>;
}

export const CODECS: readonly CodecEntry<unknown>[] = [
  entry({
    name: "ethernet",
    encode: (v) => encodeEthernet(v),
    decode: decodeEthernet,
    arbitrary: ethernetArb,
  }),
  entry({ name: "arp", encode: encodeArp, decode: decodeArp, arbitrary: arpArb }),
  entry({ name: "ipv4", encode: encodeIpv4, decode: (b) => decodeIpv4(b), arbitrary: ipv4Arb }),
  entry({ name: "ipv6", encode: encodeIpv6, decode: decodeIpv6, arbitrary: ipv6Arb }),
  entry({ name: "udp", encode: (v) => encodeUdp(v, src, dst), decode: decodeUdp, arbitrary: udpArb }),
  entry({ name: "tcp", encode: (v) => encodeTcp(v, src, dst), decode: decodeTcp, arbitrary: tcpArb }),
  entry({ name: "icmp", encode: encodeIcmp, decode: decodeIcmp, arbitrary: icmpArb }),
  entry({
    name: "icmpv6-nd",
    encode: (v) => encodeNeighborDiscovery(v, REGISTRY_CONTEXT.src6, REGISTRY_CONTEXT.dst6),
    decode: decodeNeighborDiscovery,
    arbitrary: ndArb,
  }),
  entry({ name: "vrrp-v2", encode: (v) => encodeVrrp(v), decode: decodeVrrp, arbitrary: vrrp2Arb }),
  entry({
    name: "vrrp-v3",
    encode: (v) => encodeVrrp(v, { src, dst }),
    decode: decodeVrrp,
    arbitrary: vrrp3Arb,
  }),
  entry({
    name: "vrrp-v3-ipv6",
    encode: (v) => encodeVrrp(v, { src: REGISTRY_CONTEXT.src6, dst: REGISTRY_CONTEXT.dst6 }),
    decode: (b) => decodeVrrp(b, 6),
    arbitrary: vrrp3v6Arb,
  }),
  entry({
    name: "vrls",
    encode: (v) => encodeVrls(v, vrlsOptions),
    decode: (b) => decodeVrls(b, vrlsOptions),
    arbitrary: vrlsMessageArb,
    reseal: (b) => resealVrls(b, vrlsOptions),
    // The VRLS HMAC is computed with the VRRP checksum field (bytes 6-7) taken as zero.
    verify: (b) => trailerMacVerifies(b, [6, 7]),
  }),
  entry({
    name: "natlb-control",
    encode: (v) => encodeNatlb(v, key),
    decode: (b) => decodeNatlb(b, key),
    arbitrary: natlbMessageArb,
    reseal: (b) => resealNatlb(b, key),
    verify: (b) => trailerMacVerifies(b),
  }),
  entry({
    name: "natlb-load-report",
    encode: (v) => encodeLoadReport(v, key),
    decode: (b) => decodeLoadReport(b, key),
    arbitrary: loadReportArb,
    reseal: (b) => resealNatlb(b, key),
    verify: (b) => trailerMacVerifies(b),
  }),
];
