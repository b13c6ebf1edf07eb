import { decodeIpv4, encodeIpv4, IP_PROTOCOL } from "../lib/wire/ipv4.ts";
import { decodeVrls, encodeVrls, type VrlsMessage } from "../lib/wire/vrls.ts";
import { decodeVrrp, encodeVrrp, vrrpChecksumMatches } from "../lib/wire/vrrp.ts";

/**
 * `tandem bench wire`: how many messages per second one core encodes and decodes.
 * - VRRP advertisement: RFC 5798 v3 advert with 2 addresses, encoded to an IPv4 packet
 *   (header + pseudo-header checksums) and decoded back (IPv4, VRRP, checksum verified).
 * - Allocation: VRLS type 3 (Fig. 10A) assigning 3 routers x 8 conditions, encoded with
 *   its HMAC-SHA256 trailer and RFC checksum, then decoded and authenticated.
 */
export interface WireBenchResult {
  vrrp_adv_msgs_per_s: number;
  allocation_msgs_per_s: number;
}

const SRC = "198.18.1.2";
const DST = "224.0.0.18";
const KEY = new TextEncoder().encode("bench-key-0123456789");

const ALLOCATION: VrlsMessage = {
  vrid: 51,
  priority: 200,
  maxAdverIntCs: 100,
  addresses: ["198.18.1.1"],
  sender: SRC,
  senderIncarnation: 1_700_000_000,
  sequence: 1,
  masterEpoch: 7,
  inReplyTo: 0,
  type: 3,
  allocationSerial: 42,
  mode: "exactly-once",
  timerDelayMs: 0,
  assignments: [2, 3, 4].map((r) => ({
    router: `198.18.1.${r}`,
    conditions: Array.from({ length: 8 }, (_, i) => ({
      kind: "prefix" as const,
      address: `198.18.${10 + r}.${i * 32}`,
      prefixLength: 27,
    })),
  })),
};

function vrrpAdvertRoundTrip(i: number): void {
  const payload = encodeVrrp(
    {
      version: 3,
      type: 1,
      vrid: 51,
      priority: i & 0xff,
      maxAdverIntCs: 100,
      addresses: ["198.18.1.1", "198.18.1.254"],
      extension: new Uint8Array(0),
    },
    { src: SRC, dst: DST },
  );
  const bytes = encodeIpv4({ src: SRC, dst: DST, ttl: 255, protocol: IP_PROTOCOL.vrrp, payload });
  const ip = decodeIpv4(bytes);
  if (!ip.ok || !ip.value.checksumValid) throw new Error("bench: IPv4 decode failed");
  const v = decodeVrrp(ip.value.payload);
  if (!v.ok || v.value.priority !== (i & 0xff)) throw new Error("bench: VRRP decode failed");
  if (!vrrpChecksumMatches(ip.value.payload, { src: ip.value.src, dst: ip.value.dst })) {
    throw new Error("bench: VRRP checksum failed");
  }
}

function allocationRoundTrip(i: number): void {
  const bytes = encodeVrls({ ...ALLOCATION, sequence: i }, { key: KEY, src: SRC, dst: DST });
  const m = decodeVrls(bytes, { key: KEY, src: SRC, dst: DST });
  if (!m.ok || m.value.sequence !== i) throw new Error("bench: allocation decode failed");
}

/** Runs `fn` for about `ms` after a warm-up; returns calls per second. */
function rate(fn: (i: number) => void, ms = 1500): number {
  for (let i = 0; i < 2000; i++) fn(i);
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let k = 0; k < 500; k++) fn(n++);
    elapsed = process.hrtime.bigint() - start;
  }
  return Math.round((n * 1e9) / Number(elapsed));
}

export async function runWireBench(): Promise<WireBenchResult> {
  return {
    vrrp_adv_msgs_per_s: rate(vrrpAdvertRoundTrip),
    allocation_msgs_per_s: rate(allocationRoundTrip),
  };
}

export function printWireBench(result: WireBenchResult): void {
  const allocationBytes = encodeVrls(ALLOCATION, { key: KEY, src: SRC, dst: DST }).length;
  const rows: Array<[string, string]> = [
    ["VRRPv3 advert (2 addresses), encode + decode + checksums", `${result.vrrp_adv_msgs_per_s} msg/s`],
    [
      `VRLS allocation (3 routers x 8 conditions, ${allocationBytes} B), encode + decode + HMAC`,
      `${result.allocation_msgs_per_s} msg/s`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Runnable directly: `node --experimental-strip-types bench/wire.ts` (Node >= 22.6) or through `tandem bench wire`.
if (import.meta.url === `file://${process.argv[1]}`) {
  printWireBench(await runWireBench());
}
