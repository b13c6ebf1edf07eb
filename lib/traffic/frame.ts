import { decodeStreamHeader, type StreamHeader } from "./stream-header.ts";

/**
 * Just enough of Ethernet/IPv4/UDP to find a stream header in a captured frame and the
 * MAC that sent the frame. A deliberately small stand-in: lib/wire owns the full codecs;
 * the analyzer only needs these few fields and must not allocate per frame.
 */
export interface TaggedFrame {
  /** Source MAC as "aa:bb:cc:dd:ee:ff" (the forwarding router on the far segment). */
  srcMac: string;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  header: StreamHeader;
}

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_LINUX_SLL = 113;

export type FrameDecode = { ok: true; value: TaggedFrame } | { ok: false; reason: string };

const macCache = new Map<number, string>();

function macAt(data: Uint8Array, offset: number): string {
  // Cache by the 48-bit value: a lab has a handful of MACs and millions of frames.
  const key = (data[offset]! * 2 ** 40 +
    data[offset + 1]! * 2 ** 32 +
    data[offset + 2]! * 2 ** 24 +
    data[offset + 3]! * 2 ** 16 +
    data[offset + 4]! * 2 ** 8 +
    data[offset + 5]!) as number;
  let mac = macCache.get(key);
  if (mac === undefined) {
    const parts: string[] = [];
    for (let i = 0; i < 6; i++) parts.push(data[offset + i]!.toString(16).padStart(2, "0"));
    mac = parts.join(":");
    macCache.set(key, mac);
  }
  return mac;
}

function ipAt(data: Uint8Array, offset: number): string {
  return `${data[offset]}.${data[offset + 1]}.${data[offset + 2]}.${data[offset + 3]}`;
}

/** Finds the stream header of a UDP datagram in a link-layer frame; never throws. */
export function decodeTaggedFrame(data: Uint8Array, linkType = LINKTYPE_ETHERNET): FrameDecode {
  let l3: number;
  let etherType: number;
  let srcMac: string;
  if (linkType === LINKTYPE_ETHERNET) {
    if (data.length < 14) return { ok: false, reason: "short ethernet header" };
    srcMac = macAt(data, 6);
    etherType = (data[12]! << 8) | data[13]!;
    l3 = 14;
    if (etherType === 0x8100 && data.length >= 18) {
      etherType = (data[16]! << 8) | data[17]!;
      l3 = 18;
    }
  } else if (linkType === LINKTYPE_LINUX_SLL) {
    if (data.length < 16) return { ok: false, reason: "short SLL header" };
    srcMac = macAt(data, 6);
    etherType = (data[14]! << 8) | data[15]!;
    l3 = 16;
  } else {
    return { ok: false, reason: `unsupported link type ${linkType}` };
  }
  if (etherType !== 0x0800) return { ok: false, reason: "not IPv4" };
  if (data.length < l3 + 20) return { ok: false, reason: "short IPv4 header" };
  const versionIhl = data[l3]!;
  const ihl = (versionIhl & 0x0f) * 4;
  if (versionIhl >> 4 !== 4 || ihl < 20) return { ok: false, reason: "bad IPv4 version/IHL" };
  if (data[l3 + 9] !== 17) return { ok: false, reason: "not UDP" };
  const fragment = ((data[l3 + 6]! & 0x1f) << 8) | data[l3 + 7]!;
  if (fragment !== 0) return { ok: false, reason: "non-first fragment" };
  const l4 = l3 + ihl;
  if (data.length < l4 + 8) return { ok: false, reason: "short UDP header" };
  const header = decodeStreamHeader(data, l4 + 8);
  if (!header.ok) return { ok: false, reason: header.error.reason };
  return {
    ok: true,
    value: {
      srcMac,
      srcIp: ipAt(data, l3 + 12),
      dstIp: ipAt(data, l3 + 16),
      srcPort: (data[l4]! << 8) | data[l4 + 1]!,
      dstPort: (data[l4 + 2]! << 8) | data[l4 + 3]!,
      header: header.value,
    },
  };
}
