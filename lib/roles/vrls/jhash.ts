/**
 * Linux's jhash (Bob Jenkins' lookup3, include/linux/jhash.h) and nftables' bucket
 * scaling (nft_jhash_eval: reciprocal_scale(jhash(data, len, seed), modulus)).
 * Written by hand because the control plane must predict, bit for bit, which
 * bucket the kernel's `jhash ip saddr mod N seed S` puts a packet in (no npm
 * package reproduces the kernel's variant and its reciprocal scaling).
 */

const JHASH_INITVAL = 0xdeadbeef;

function rol32(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function jhash(key: Uint8Array, initval: number): number {
  let length = key.length;
  let a = (JHASH_INITVAL + length + initval) >>> 0;
  let b = a;
  let c = a;
  let k = 0;
  const u32le = (o: number) =>
    ((key[o] ?? 0) | ((key[o + 1] ?? 0) << 8) | ((key[o + 2] ?? 0) << 16) | ((key[o + 3] ?? 0) << 24)) >>> 0;
  while (length > 12) {
    a = (a + u32le(k)) >>> 0;
    b = (b + u32le(k + 4)) >>> 0;
    c = (c + u32le(k + 8)) >>> 0;
    // __jhash_mix
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 4)) >>> 0;
    b = (b + a) >>> 0;
    length -= 12;
    k += 12;
  }
  if (length === 0) return c;
  const byte = (i: number) => key[k + i] ?? 0;
  // The kernel's switch with fall-through, tail bytes in little-endian order.
  if (length >= 12) c = (c + (byte(11) << 24)) >>> 0;
  if (length >= 11) c = (c + (byte(10) << 16)) >>> 0;
  if (length >= 10) c = (c + (byte(9) << 8)) >>> 0;
  if (length >= 9) c = (c + byte(8)) >>> 0;
  if (length >= 8) b = (b + (byte(7) << 24)) >>> 0;
  if (length >= 7) b = (b + (byte(6) << 16)) >>> 0;
  if (length >= 6) b = (b + (byte(5) << 8)) >>> 0;
  if (length >= 5) b = (b + byte(4)) >>> 0;
  if (length >= 4) a = (a + (byte(3) << 24)) >>> 0;
  if (length >= 3) a = (a + (byte(2) << 16)) >>> 0;
  if (length >= 2) a = (a + (byte(1) << 8)) >>> 0;
  a = (a + byte(0)) >>> 0;
  // __jhash_final
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 14)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 11)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 25)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 16)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 4)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 14)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 24)) >>> 0;
  return c;
}

/** nftables: `jhash <data> mod <modulus> seed <seed>` = reciprocal_scale(jhash(...), modulus). */
export function nftJhashBucket(data: Uint8Array, modulus: number, seed: number): number {
  const h = jhash(data, seed >>> 0);
  return Number((BigInt(h) * BigInt(modulus)) >> 32n);
}
