import { isIPv6 } from "node:net";
import { WireDecodeFailure } from "./result.ts";

/**
 * Bounds-checked big-endian reader. Every read checks the remaining length first and
 * signals short input with WireDecodeFailure (caught by guardDecode), so no decoder
 * reads past its buffer or returns garbage from a truncated packet.
 */
export class ByteReader {
  readonly view: DataView;
  offset: number;

  constructor(
    readonly bytes: Uint8Array,
    offset = 0,
    /** Absolute offset of bytes[0] in the caller's buffer, for error messages. */
    readonly base = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  need(n: number, what: string): void {
    if (n < 0 || this.offset + n > this.bytes.length) {
      throw new WireDecodeFailure(
        this.base + this.offset,
        `truncated ${what}: need ${n} bytes, ${this.remaining} left`,
      );
    }
  }

  fail(reason: string, at = this.offset): never {
    throw new WireDecodeFailure(this.base + at, reason);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.offset++);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.offset);
    this.offset += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return v;
  }

  ipv4(what: string): string {
    this.need(4, what);
    const b = this.bytes;
    const o = this.offset;
    this.offset += 4;
    return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
  }

  /** An IPv6 address in RFC 5952 canonical text (lowercase, longest zero run as "::"). */
  ipv6(what: string): string {
    this.need(16, what);
    const s = formatIpv6(this.bytes, this.offset);
    this.offset += 16;
    return s;
  }

  mac(what: string): string {
    this.need(6, what);
    const s = formatMac(this.bytes, this.offset);
    this.offset += 6;
    return s;
  }

  /** A copy of the next n bytes (copies, so decoded values never alias a reused receive buffer). */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  rest(): Uint8Array {
    return this.take(this.remaining, "rest");
  }
}

/** Growable big-endian writer used by every encoder. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.length++, v & 0xff);
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.length, v & 0xffff);
    this.length += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.length, v >>> 0);
    this.length += 4;
    return this;
  }

  u64(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.length, BigInt.asUintN(64, v));
    this.length += 8;
    return this;
  }

  ipv4(address: string): this {
    this.ensure(4);
    if (!writeIpv4(address, this.buf, this.length)) {
      throw new Error(`invalid IPv4 address: ${JSON.stringify(address)}`);
    }
    this.length += 4;
    return this;
  }

  ipv6(address: string): this {
    this.ensure(16);
    this.buf.set(parseIpv6(address), this.length);
    this.length += 16;
    return this;
  }

  mac(address: string): this {
    this.ensure(6);
    this.buf.set(parseMac(address), this.length);
    this.length += 6;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }

  /** Overwrites a 16-bit value already written (checksums, lengths). */
  patchU16(at: number, v: number): this {
    this.view.setUint16(at, v & 0xffff);
    return this;
  }

  /** The bytes written; no copy when the initial size was exact. */
  finish(): Uint8Array {
    return this.length === this.buf.length ? this.buf : this.buf.slice(0, this.length);
  }
}

/**
 * Writes dotted-quad IPv4 into `out` at `offset`; false when the text is not an address.
 * Hand-parsed (no regex, no allocation): encoders call it for every address they write.
 */
export function writeIpv4(address: string, out: Uint8Array, offset: number): boolean {
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= address.length; i++) {
    const c = i < address.length ? address.charCodeAt(i) : 46; // virtual trailing "."
    if (c === 46) {
      if (digits === 0 || value > 255 || part > 3) return false;
      out[offset + part] = value;
      part++;
      digits = 0;
      value = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      value = value * 10 + (c - 48);
      digits++;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** Parses dotted-quad IPv4; throws a clear error (encoders reject bad input loudly). */
export function parseIpv4(address: string): Uint8Array {
  const out = new Uint8Array(4);
  if (!writeIpv4(address, out, 0)) throw new Error(`invalid IPv4 address: ${JSON.stringify(address)}`);
  return out;
}

export function ipv4ToUint32(address: string): number {
  const b = parseIpv4(address);
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export function uint32ToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const MAC_PATTERN = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i;

export function parseMac(address: string): Uint8Array {
  const m = MAC_PATTERN.exec(address);
  if (!m) throw new Error(`invalid MAC address: ${JSON.stringify(address)}`);
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[i] = Number.parseInt(m[i + 1]!, 16);
  return out;
}

export function formatMac(bytes: Uint8Array, offset = 0): string {
  let s = "";
  for (let i = 0; i < 6; i++) {
    const b = bytes[offset + i] ?? 0;
    s += (i ? ":" : "") + (b < 16 ? "0" : "") + b.toString(16);
  }
  return s;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function fromHex(hex: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error(`invalid hex string (${hex.length} chars)`);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/**
 * IPv6 text <-> 16 bytes. Hand-written (node:net only validates): a codec needs the bytes,
 * and RFC 5952 canonical output so decoded addresses compare as strings.
 */
export function parseIpv6(address: string): Uint8Array {
  if (!isIPv6(address) || address.includes("%"))
    throw new Error(`invalid IPv6 address: ${JSON.stringify(address)}`);
  let text = address.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToUint32(v4[1] as string);
    text = `${text.slice(0, v4.index)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill("0"), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[offset + i * 2]! << 8) | bytes[offset + i * 2 + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** RFC 5952 canonical form of any IPv6 text. */
export function canonicalIpv6(address: string): string {
  return formatIpv6(parseIpv6(address));
}
