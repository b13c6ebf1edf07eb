import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { run } from "../lab/command.ts";
import { newRunPrefix } from "../lab/prefix.ts";
import { teardownPrefix } from "../lab/teardown.ts";
import { doctorLab } from "./doctor-lab.ts";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What to install (Debian package) or do when it fails. */
  fix?: string;
}

export const BINARIES: { name: string; path: string[]; pkg: string }[] = [
  { name: "ip (iproute2)", path: ["/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip"], pkg: "iproute2" },
  { name: "nft", path: ["/usr/sbin/nft"], pkg: "nftables" },
  { name: "iptables (nf_tables)", path: ["/usr/sbin/iptables"], pkg: "iptables" },
  { name: "conntrack", path: ["/usr/sbin/conntrack"], pkg: "conntrack" },
  { name: "sshd", path: ["/usr/sbin/sshd"], pkg: "openssh-server" },
  { name: "socat", path: ["/usr/bin/socat"], pkg: "socat" },
  { name: "tcpdump", path: ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"], pkg: "tcpdump" },
  { name: "tcpreplay", path: ["/usr/bin/tcpreplay"], pkg: "tcpreplay" },
  { name: "keepalived", path: ["/usr/sbin/keepalived"], pkg: "keepalived" },
  { name: "frr vrrpd", path: ["/usr/lib/frr/vrrpd"], pkg: "frr" },
  { name: "vtysh", path: ["/usr/bin/vtysh"], pkg: "frr" },
  { name: "java (allure-commandline)", path: ["/usr/bin/java"], pkg: "default-jre-headless" },
  { name: "chromium", path: ["/usr/bin/chromium"], pkg: "chromium" },
  { name: "python3", path: ["/usr/bin/python3"], pkg: "python3" },
];

async function probe(name: string, argv: string[], fix: string): Promise<Check> {
  const r = await run(argv, { allowFailure: true, timeoutMs: 10_000 }).catch((e: Error) => ({
    code: 127,
    stdout: "",
    stderr: e.message,
  }));
  return {
    name,
    ok: r.code === 0,
    detail: r.code === 0 ? "ok" : (r.stderr.trim().split("\n").slice(-1)[0] ?? "failed"),
    fix,
  };
}

// Packages are resolved the way Node resolves them from this module: from the bundle
// (dist/cli.mjs) that is <checkout>/node_modules, one folder up; from lib/cli/doctor.ts
// (tests, tsx) the same folder, found by walking up. A path spelled relative to the source
// file ("../../node_modules") pointed one folder above the checkout in the bundle.
const resolveFromHere = createRequire(import.meta.url);

/** A native addon: installed where this module resolves it, built, and loadable (its shared libraries present). */
async function addonCheck(
  name: string,
  pkg: string,
  binary: string,
  load: () => Promise<unknown>,
  fix: string,
): Promise<Check> {
  let entry: string;
  try {
    entry = resolveFromHere.resolve(pkg);
  } catch {
    return { name, ok: false, detail: `${pkg} is not installed (not found from ${import.meta.url})`, fix };
  }
  const built = join(dirname(entry), "build", "Release", binary);
  if (!existsSync(built)) return { name, ok: false, detail: `not built (${built} is missing)`, fix };
  try {
    await load();
  } catch (e) {
    const message = (e as Error).message.split("\n")[0] ?? "";
    return { name, ok: false, detail: `does not load: ${message}`, fix };
  }
  return { name, ok: true, detail: built, fix };
}

/**
 * Owner tables through the addon: created in the namespace by a libnftables context, seen by
 * a spawned nft, and gone once the context is closed (Linux >= 5.12: NFT_TABLE_F_OWNER).
 */
async function ownerTableCheck(ns: string): Promise<Check> {
  const name = "nft owner tables (libnftables)";
  const fix = "Linux >= 5.12 and nftables >= 0.9.9 (table flag owner)";
  const listed = async () =>
    (await run(["ip", "netns", "exec", ns, "nft", "list", "tables"], { allowFailure: true })).stdout.includes(
      "table ip tddoctor",
    );
  try {
    const { openNftContext } = await import("tandem-nftables");
    const ctx = openNftContext({ netns: ns });
    const r = ctx.run("add table ip tddoctor { flags owner; }");
    const made = r.code === 0 && (await listed());
    ctx.close();
    if (!made) return { name, ok: false, detail: r.error.trim() || "table not created", fix };
    if (await listed()) return { name, ok: false, detail: "the table outlived its context", fix };
    return { name, ok: true, detail: "ok", fix };
  } catch (e) {
    return { name, ok: false, detail: (e as Error).message.split("\n")[0] ?? "failed", fix };
  }
}

/** Kernel features, tried for real in a throwaway namespace. */
async function kernelChecks(nftablesAddon: boolean): Promise<Check[]> {
  const prefix = newRunPrefix();
  const ns = `${prefix}-doctor`;
  const checks: Check[] = [];
  try {
    checks.push(
      await probe("network namespaces", ["ip", "netns", "add", ns], "a kernel with CONFIG_NET_NS and root"),
    );
    if (!checks[0]?.ok) return checks;
    checks.push(
      await probe(
        "veth",
        ["ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        "CONFIG_VETH",
      ),
    );
    checks.push(
      await probe(
        "bridge",
        ["ip", "-n", ns, "link", "add", "b0", "type", "bridge", "ageing_time", "0"],
        "CONFIG_BRIDGE",
      ),
    );
    checks.push(
      await probe(
        "nftables sets with counters",
        ["ip", "netns", "exec", ns, "nft", "add table inet t; add set inet t s { type ipv4_addr; counter; }"],
        "CONFIG_NF_TABLES (and nftables >= 0.9.9)",
      ),
    );
    if (nftablesAddon) checks.push(await ownerTableCheck(ns));
    checks.push(
      await probe(
        "NFQUEUE (iptables-nft)",
        [
          "ip",
          "netns",
          "exec",
          ns,
          "iptables",
          "-A",
          "OUTPUT",
          "-m",
          "mark",
          "--mark",
          "1",
          "-j",
          "NFQUEUE",
          "--queue-num",
          "7",
        ],
        "CONFIG_NETFILTER_XT_TARGET_NFQUEUE and the iptables package",
      ),
    );
    checks.push(
      await probe(
        "conntrack in a namespace",
        ["ip", "netns", "exec", ns, "conntrack", "-L"],
        "CONFIG_NF_CONNTRACK_NETLINK",
      ),
    );
  } finally {
    await teardownPrefix(prefix);
  }
  return checks;
}

export async function runDoctor(): Promise<Check[]> {
  const checks: Check[] = [];
  const root = process.getuid?.() === 0;
  checks.push({
    name: "running as root",
    ok: root,
    detail: root ? "ok" : "not root",
    fix: "run as root (labs create namespaces)",
  });
  for (const b of BINARIES) {
    const found = b.path.find((p) => existsSync(p));
    checks.push({
      name: b.name,
      ok: Boolean(found),
      detail: found ?? "not found",
      fix: `apt-get install ${b.pkg}`,
    });
  }
  checks.push(
    await probe(
      "python3 scapy",
      ["/usr/bin/python3", "-c", "import scapy.all"],
      "apt-get install python3-scapy",
    ),
  );
  checks.push(
    await addonCheck(
      "NFQUEUE addon (tandem-nfqueue)",
      "tandem-nfqueue",
      "tandem_nfqueue.node",
      () => import("tandem-nfqueue"),
      "apt-get install libnetfilter-queue-dev libmnl-dev; npm ci",
    ),
  );
  checks.push(
    await addonCheck(
      "raw socket addon (tandem-rawio)",
      "tandem-rawio",
      "tandem_rawio.node",
      () => import("tandem-rawio"),
      "apt-get install build-essential; npm ci",
    ),
  );
  const nftables = await addonCheck(
    "nftables addon (tandem-nftables)",
    "tandem-nftables",
    "tandem_nftables.node",
    () => import("tandem-nftables"),
    "apt-get install libnftables-dev; npm ci",
  );
  checks.push(nftables);
  if (root) checks.push(...(await kernelChecks(nftables.ok)));
  return checks;
}

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check root, kernel features and tools; say what to install")
    .option("--json", "JSON output")
    .option("--lab <file>", "run the checks on every host of a physical lab (inventory) over SSH")
    .action(async (opts: { json?: boolean; lab?: string }) => {
      if (opts.lab) return doctorLab(opts.lab, opts.json ?? false);
      const checks = await runDoctor();
      if (opts.json) process.stdout.write(`${JSON.stringify(checks)}\n`);
      else {
        for (const c of checks) {
          process.stdout.write(
            `${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(32)} ${c.ok ? "" : `${c.detail} -> ${c.fix}`}\n`,
          );
        }
      }
      const failed = checks.filter((c) => !c.ok);
      if (failed.length > 0) {
        const pkgs = [
          ...new Set(failed.map((c) => c.fix).filter((f) => f?.startsWith("apt-get install"))),
        ].map((f) => f?.slice(16));
        if (pkgs.length > 0) process.stderr.write(`to fix: apt-get install ${pkgs.join(" ")}\n`);
        process.exitCode = 1;
      }
    });
}
