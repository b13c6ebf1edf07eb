// Wire formats: pure codecs (bytes in, typed values out, and back). Layouts: docs/wire.md.
export * from "./bytes.ts";
export * from "./checksum.ts";
export * from "./ipv4.ts";
export * from "./result.ts";
export * from "./vrls.ts";
export * from "./vrrp.ts";
export * from "./vrrp-validate.ts";
