// The hand-written jhash (lib/roles/vrls/jhash.ts) against the kernel: nftables computes
// `jhash ... mod N seed S` for packets from many source addresses and records each result
// in a dynamic set; every bucket must equal what bucketOf() predicts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, runInNamespace } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { bucketOf } from "../lib/roles/vrls/conditions.ts";

const prefix = newRunPrefix();
const ns = namespaceName(prefix, "jhash");

// 200 sources spread over two /24s and a few odd ones; destinations vary for src+dst.
const sources = [
  ...Array.from({ length: 120 }, (_, i) => `198.18.${1 + (i % 2)}.${((i * 7) % 254) + 1}`),
  ...Array.from({ length: 80 }, (_, i) => `198.19.${i * 3}.${255 - i}`),
];
const dst = (i: number) => `203.0.113.${((i * 13) % 250) + 1}`;

beforeAll(async () => {
  await run(["ip", "netns", "add", ns]);
  await runInNamespace(ns, ["ip", "link", "set", "lo", "up"]);
});
afterAll(async () => {
  await run(["ip", "netns", "del", ns], { allowFailure: true });
});

describe("jhash.ts agrees with the kernel's nft jhash", () => {
  it("src and src+dst buckets, several moduli and seeds", async () => {
    const cases = [
      { over: "src" as const, of: 16, seed: 0 },
      { over: "src" as const, of: 7, seed: 0xdeadbeef },
      { over: "src+dst" as const, of: 64, seed: 5 },
    ];
    const rules = cases.map((c, k) => {
      const input = c.over === "src" ? "ip saddr" : "ip saddr . ip daddr";
      const key = c.over === "src" ? "ipv4_addr . mark" : "ipv4_addr . ipv4_addr . mark";
      const elem = c.over === "src" ? "ip saddr . meta mark" : "ip saddr . ip daddr . meta mark";
      return {
        set: `set seen${k} { type ${key}; size 65535; }`,
        rule: `  udp dport 9 meta mark set jhash ${input} mod ${c.of} seed 0x${c.seed.toString(16)}\n  udp dport 9 add @seen${k} { ${elem} }`,
      };
    });
    await runInNamespace(ns, ["nft", "-f", "-"], {
      input: `table ip jh {\n${rules.map((r) => r.set).join("\n")}\nchain out {\n  type filter hook output priority 0; policy accept;\n${rules.map((r) => r.rule).join("\n")}\n}\n}\n`,
    });
    // One UDP packet per (source, destination) through a raw socket (any source address).
    const py = `
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for line in sys.stdin:
    src, dst = line.split()
    udp = struct.pack("!HHHH", 4000, 9, 8, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(ip + udp, (dst, 0))
`;
    await runInNamespace(ns, ["ip", "route", "add", "default", "dev", "lo"]);
    await runInNamespace(ns, ["/usr/bin/python3", "-c", py], {
      input: sources.map((s, i) => `${s} ${dst(i)}\n`).join(""),
    });
    for (const [k, c] of cases.entries()) {
      const out = await runInNamespace(ns, ["nft", "-j", "list", "set", "ip", "jh", `seen${k}`]);
      const set = (
        JSON.parse(out.stdout).nftables as { set?: { elem?: { concat: (string | number)[] }[] } }[]
      ).find((x) => x.set)?.set;
      const elems = set?.elem ?? [];
      expect(elems.length).toBe(sources.length);
      for (const e of elems) {
        const parts = e.concat;
        const src = String(parts[0]);
        const d = c.over === "src" ? "0.0.0.0" : String(parts[1]);
        const kernelBucket = Number(parts[parts.length - 1]);
        expect(
          bucketOf(c.over, src, d, c.of, c.seed),
          `${c.over} ${src} ${d} mod ${c.of} seed ${c.seed}`,
        ).toBe(kernelBucket);
      }
    }
  });
});
