/** IPv4 helpers for the address plan (no dependency needed for these few lines of arithmetic). */
export interface Cidr {
  network: number;
  prefix: number;
}

export function ipToInt(address: string): number {
  const parts = address.split(".").map(Number);
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseCidr(cidr: string): Cidr {
  const [address, len] = cidr.split("/");
  const prefix = Number(len);
  return { network: (ipToInt(address ?? "0.0.0.0") & maskOf(prefix)) >>> 0, prefix };
}

export function cidrContains(cidr: Cidr, address: string): boolean {
  return (ipToInt(address) & maskOf(cidr.prefix)) >>> 0 === cidr.network;
}
