// Wire formats: pure codecs (bytes in, typed values out, and back). Layouts: docs/wire.md.

export * from "./arp.ts";
export * from "./bytes.ts";
export * from "./checksum.ts";
export * from "./ethernet.ts";
export * from "./icmp.ts";
export * from "./icmpv6.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./natlb.ts";
export * from "./replay.ts";
export * from "./result.ts";
export * from "./tcp.ts";
export * from "./udp.ts";
export * from "./vrls.ts";
export * from "./vrrp.ts";
export * from "./vrrp-validate.ts";
