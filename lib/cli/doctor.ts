import { accessSync, constants, existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { run } from "../lab/command.ts";
import { newRunPrefix } from "../lab/prefix.ts";
import { teardownPrefix } from "../lab/teardown.ts";
import { agentBundlePath, repoRoot } from "../remote/repo-root.ts";
import { doctorLab } from "./doctor-lab.ts";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What to install (Debian package) or do when it fails. */
  fix?: string;
}

/**
 * Tools the lab spawns by name (lib/lab/command.ts: spawn without a shell, so PATH decides
 * which one runs): the doctor looks them up on the same PATH.
 */
export const ON_PATH: { name: string; bin: string; pkg: string }[] = [
  { name: "ip (iproute2)", bin: "ip", pkg: "iproute2" },
  { name: "nft", bin: "nft", pkg: "nftables" },
  { name: "iptables (nf_tables)", bin: "iptables", pkg: "iptables" },
  { name: "conntrack", bin: "conntrack", pkg: "conntrack" },
  { name: "sshd", bin: "sshd", pkg: "openssh-server" },
  { name: "socat", bin: "socat", pkg: "socat" },
  { name: "tcpdump", bin: "tcpdump", pkg: "tcpdump" },
  { name: "tcpreplay", bin: "tcpreplay", pkg: "tcpreplay" },
  { name: "keepalived", bin: "keepalived", pkg: "keepalived" },
  { name: "vtysh", bin: "vtysh", pkg: "frr" },
];

/** Tools the code runs by absolute path (or a path an environment variable sets). */
async function fixedPaths(): Promise<{ name: string; path: string; pkg: string }[]> {
  // Imported here, not at the top: the CLI loads this module on every start and
  // browser.ts pulls in playwright-core.
  const { CHROMIUM_PATH } = await import("../report/browser.ts");
  const { PYTHON } = await import("../scapy-bridge/bridge.ts");
  return [
    { name: "frr vrrpd", path: "/usr/lib/frr/vrrpd", pkg: "frr" },
    { name: "frr zebra", path: "/usr/lib/frr/zebra", pkg: "frr" },
    { name: "python3", path: PYTHON, pkg: "python3" },
    { name: "chromium", path: CHROMIUM_PATH, pkg: "chromium" },
    {
      // allure-commandline's launcher runs $JAVA_HOME/bin/java (lib/report/allure.ts sets the default)
      name: "java (allure-commandline)",
      path: join(process.env.JAVA_HOME ?? "/usr/lib/jvm/default-java", "bin", "java"),
      pkg: "default-jre-headless",
    },
  ];
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The first executable `bin` in the PATH directories (what spawn(bin) runs), or undefined. */
export function findOnPath(bin: string, path = process.env.PATH ?? ""): string | undefined {
  return path
    .split(":")
    .filter(Boolean)
    .map((d) => join(d, bin))
    .find(executable);
}

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

/**
 * Addons are resolved from the checkout's package.json (repoRoot(): TANDEM_ROOT or the
 * nearest tandem package.json above this module), i.e. from <checkout>/node_modules, where
 * the agent bundles (dist/agents) also find them. A path spelled relative to the source file
 * ("../../node_modules") pointed one folder above the checkout in the bundle (issue 17).
 */
function checkoutRequire(): NodeJS.Require {
  return createRequire(join(repoRoot(), "package.json"));
}

/** A native addon: installed where the checkout resolves it, built, and loadable (its shared libraries present). */
async function addonCheck(pkg: string, binary: string, what: string, fix: string): Promise<Check> {
  const name = `${what} addon (${pkg})`;
  let entry: string;
  try {
    entry = checkoutRequire().resolve(pkg);
  } catch {
    return { name, ok: false, detail: `${pkg} is not installed in ${join(repoRoot(), "node_modules")}`, fix };
  }
  const built = join(dirname(entry), "build", "Release", binary);
  if (!existsSync(built)) return { name, ok: false, detail: `not built (${built} is missing)`, fix };
  try {
    await import(pathToFileURL(entry).href);
  } catch (e) {
    const message = (e as Error).message.split("\n")[0] ?? "";
    return { name, ok: false, detail: `does not load: ${message}`, fix };
  }
  return { name, ok: true, detail: built, fix };
}

/** The CLI and agent bundles (scripts/build.mjs): one per lib/** /NAME.agent.ts. */
function bundleCheck(): Check {
  const root = repoRoot();
  const fix = "npm run build (or npm ci, which builds)";
  const agents: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith(".agent.ts")) agents.push(e.name.slice(0, -".agent.ts".length));
    }
  };
  if (existsSync(join(root, "lib"))) walk(join(root, "lib"));
  const wanted = [join(root, "dist", "cli.mjs"), ...agents.sort().map((a) => agentBundlePath(a))];
  const missing = wanted.filter((f) => !existsSync(f));
  return {
    name: "bundles (dist/)",
    ok: missing.length === 0,
    detail: missing.length === 0 ? `${wanted.length} bundles` : `missing ${missing.join(", ")}`,
    fix,
  };
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
    const entry = checkoutRequire().resolve("tandem-nftables");
    const { openNftContext } = (await import(pathToFileURL(entry).href)) as typeof import("tandem-nftables");
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
    else
      checks.push({
        name: "nft owner tables (libnftables)",
        ok: false,
        detail: "not tried: the nftables addon does not load",
        fix: "see the nftables addon check",
      });
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
    // Without a working `ip` nothing was created; teardown cannot run either.
    if (checks[0]?.ok) await teardownPrefix(prefix);
  }
  return checks;
}

/** The kernel checks, reported as failed (not silently left out) when the doctor is not root. */
const KERNEL_CHECKS = [
  "network namespaces",
  "veth",
  "bridge",
  "nftables sets with counters",
  "nft owner tables (libnftables)",
  "NFQUEUE (iptables-nft)",
  "conntrack in a namespace",
];

export async function runDoctor(): Promise<Check[]> {
  const checks: Check[] = [];
  const root = process.getuid?.() === 0;
  checks.push({
    name: "running as root",
    ok: root,
    detail: root ? "ok" : `uid ${process.getuid?.()}`,
    fix: "run as root (labs create namespaces)",
  });
  for (const b of ON_PATH) {
    const found = findOnPath(b.bin);
    checks.push({
      name: b.name,
      ok: Boolean(found),
      detail: found ?? `${b.bin} is not on PATH`,
      fix: `apt-get install ${b.pkg}`,
    });
  }
  for (const b of await fixedPaths()) {
    const ok = executable(b.path);
    checks.push({
      name: b.name,
      ok,
      detail: ok ? b.path : `${b.path} is missing or not executable`,
      fix: `apt-get install ${b.pkg}`,
    });
  }
  const { PYTHON } = await import("../scapy-bridge/bridge.ts");
  const { allureBinary } = await import("../report/allure.ts");
  checks.push(
    await probe("python3 scapy", [PYTHON, "-c", "import scapy.all"], "apt-get install python3-scapy"),
  );
  const allure = allureBinary();
  checks.push({
    name: "allure-commandline",
    ok: executable(allure),
    detail: executable(allure) ? allure : `${allure} is missing`,
    fix: "npm ci",
  });
  checks.push(bundleCheck());
  checks.push(
    await addonCheck(
      "tandem-nfqueue",
      "tandem_nfqueue.node",
      "NFQUEUE",
      "apt-get install libnetfilter-queue-dev libmnl-dev; npm ci",
    ),
  );
  checks.push(
    await addonCheck(
      "tandem-rawio",
      "tandem_rawio.node",
      "raw socket",
      "apt-get install build-essential; npm ci",
    ),
  );
  checks.push(
    await addonCheck(
      "tandem-netlink",
      "tandem_netlink.node",
      "conntrack/rtnetlink",
      "apt-get install libnetfilter-conntrack-dev libmnl-dev; npm ci",
    ),
  );
  const nftables = await addonCheck(
    "tandem-nftables",
    "tandem_nftables.node",
    "nftables",
    "apt-get install libnftables-dev; npm ci",
  );
  checks.push(nftables);
  const kernel = root ? await kernelChecks(nftables.ok) : [];
  checks.push(...kernel);
  // Every kernel check appears: one that could not be tried counts as failed, with the reason.
  for (const name of KERNEL_CHECKS.filter((n) => !kernel.some((k) => k.name === n)))
    checks.push({
      name,
      ok: false,
      detail: root ? "not tried: no network namespace" : "not tried: needs root",
      fix: root ? "see the network namespaces check" : "run as root",
    });
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
            `${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(44)} ${c.ok ? "" : `${c.detail} -> ${c.fix}`}\n`,
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
