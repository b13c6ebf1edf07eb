import { type RemoteHost, shellQuote } from "../remote/index.ts";

/**
 * What every host of a physical lab must offer before a lab starts on it (issue 14): the
 * kernel features the roles use, each tried in a throwaway network namespace made with
 * `unshare --net` on the host (nothing named, nothing left behind), and the programs
 * that reach them. `tandem doctor --lab FILE` reports the same probes; `upLab` refuses
 * to start a lab where one fails, naming the host and the feature.
 */
export interface KernelProbe {
  name: string;
  /** The program the probe (and the roles) reach the feature through. */
  bin: string;
  script: string;
  fix: string;
}

export const KERNEL_PROBES: readonly KernelProbe[] = [
  { name: "veth", bin: "ip", script: "ip link add v0 type veth peer name v1", fix: "CONFIG_VETH" },
  {
    name: "bridge",
    bin: "ip",
    script: "ip link add b0 type bridge ageing_time 0",
    fix: "CONFIG_BRIDGE",
  },
  {
    name: "nftables sets with counters",
    bin: "nft",
    script: "nft 'add table inet t; add set inet t s { type ipv4_addr; counter; }'",
    fix: "CONFIG_NF_TABLES (and nftables >= 0.9.9)",
  },
  {
    name: "NFQUEUE (iptables-nft)",
    bin: "iptables",
    script: "iptables -A OUTPUT -m mark --mark 1 -j NFQUEUE --queue-num 7",
    fix: "CONFIG_NETFILTER_XT_TARGET_NFQUEUE and the iptables package",
  },
  {
    name: "conntrack in a namespace",
    bin: "conntrack",
    script: "conntrack -L",
    fix: "CONFIG_NF_CONNTRACK_NETLINK",
  },
];

/** Programs a lab host needs besides the probes' own: captures are taken on any host. */
const ALSO_NEEDED = [{ bin: "tcpdump", pkg: "tcpdump" }];

const PACKAGE: Record<string, string> = {
  ip: "iproute2",
  nft: "nftables",
  iptables: "iptables",
  conntrack: "conntrack",
};

export interface FeatureResult {
  /** The feature (probe name) or program. */
  name: string;
  ok: boolean;
  detail: string;
  fix: string;
}

/**
 * One round trip: each program looked up (found on the login PATH, an executable,
 * non-empty file: an empty file over a binary runs as an empty script and "succeeds"),
 * then each probe run where its program is there. Never throws for a missing feature;
 * a lost session throws (the caller names the host).
 */
export async function probeHostFeatures(remote: RemoteHost): Promise<FeatureResult[]> {
  const bins = [...new Set([...KERNEL_PROBES.map((p) => p.bin), ...ALSO_NEEDED.map((b) => b.bin)])];
  const lines = [
    ...bins.map(
      (b) =>
        `f=$(command -v ${b} 2>/dev/null); if [ -n "$f" ] && [ -x "$f" ] && [ -s "$f" ]; then echo "B ${b} $f"; else echo "B ${b} "; fi`,
    ),
    ...KERNEL_PROBES.map(
      (p, i) =>
        `e=$(unshare --net sh -c ${shellQuote(p.script)} 2>&1 >/dev/null); echo "K ${i} $? $(printf %s "$e" | tail -n 1)"`,
    ),
  ];
  const r = await remote.execOrThrow(lines.join("\n"), { timeoutMs: 30_000 });
  const found = new Map<string, string>();
  const probes = new Map<number, { code: number; last: string }>();
  for (const line of r.stdout.split("\n")) {
    const b = /^B (\S+) ?(.*)$/.exec(line);
    if (b) found.set(b[1]!, b[2]!.trim());
    const k = /^K (\d+) (\d+) ?(.*)$/.exec(line);
    if (k) probes.set(Number(k[1]), { code: Number(k[2]), last: k[3]!.trim() });
  }
  const out: FeatureResult[] = [];
  KERNEL_PROBES.forEach((p, i) => {
    const at = found.get(p.bin);
    const run = probes.get(i);
    if (!at)
      out.push({
        name: p.name,
        ok: false,
        detail: `cannot be used: ${p.bin} not found on the host`,
        fix: `apt-get install ${PACKAGE[p.bin] ?? p.bin}`,
      });
    else if (run?.code !== 0)
      out.push({
        name: p.name,
        ok: false,
        detail: `not available: \`${p.script}\` in a new network namespace failed (${run?.last || `exit ${run?.code ?? "?"}`})`,
        fix: `a kernel with ${p.fix}`,
      });
    else out.push({ name: p.name, ok: true, detail: "ok", fix: p.fix });
  });
  for (const b of ALSO_NEEDED) {
    const at = found.get(b.bin);
    out.push({
      name: b.bin,
      ok: Boolean(at),
      detail: at || `not found (${b.bin} on the PATH)`,
      fix: `apt-get install ${b.pkg}`,
    });
  }
  return out;
}
