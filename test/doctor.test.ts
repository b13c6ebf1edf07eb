import { execFile } from "node:child_process";
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findOnPath } from "../lib/cli/doctor.ts";

/**
 * `tandem doctor`, run as the user runs it (node bin/tandem.js doctor --json), on this
 * healthy machine and on the same machine with one thing taken away for real:
 * - a tool the lab spawns by name: a PATH that lacks it (symlinks to every other tool);
 * - a tool run by absolute path, or python3's scapy: a private mount namespace
 *   (unshare -m) in which the file is covered by a non-executable empty file / the
 *   package directory by an empty tmpfs;
 * - addons, bundles and allure: a checkout (TANDEM_ROOT) whose node_modules / dist lack
 *   one of them, hold an unbuilt addon, or an addon binary that does not load;
 * - root: the doctor run as nobody (setpriv).
 * Each check must pass on the healthy run and fail on the run made to break it.
 * Not covered for real: veth and bridge failing (the kernel here has both and modules
 * cannot be unloaded on a shared machine); they fail with `ip` missing only.
 */
interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const ROOT = join(import.meta.dirname, "..");
const CLI = join(ROOT, "bin", "tandem.js");
const tmp = mkdtempSync(join(tmpdir(), "tandem-doctor-"));

function doctor(
  argv: string[] = [process.execPath, CLI, "doctor", "--json"],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; checks: Map<string, Check>; stderr: string }> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(file!, args, { env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? ((error as { code?: number }).code ?? 1) : 0;
      try {
        const checks = JSON.parse(stdout) as Check[];
        resolve({ code, checks: new Map(checks.map((c) => [c.name, c])), stderr });
      } catch {
        reject(new Error(`doctor printed no JSON (exit ${code}):\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** Names of the checks that failed. */
const failed = (checks: Map<string, Check>) => [...checks.values()].filter((c) => !c.ok).map((c) => c.name);

const TOOLS: Record<string, string> = {
  ip: "ip (iproute2)",
  nft: "nft",
  iptables: "iptables (nf_tables)",
  conntrack: "conntrack",
  sshd: "sshd",
  socat: "socat",
  tcpdump: "tcpdump",
  tcpreplay: "tcpreplay",
  keepalived: "keepalived",
  vtysh: "vtysh",
};

/** A PATH directory with every tool but `without` (symlinks to what the real PATH finds). */
function pathWithout(without: string): string {
  const dir = join(tmp, `path-no-${without}`);
  mkdirSync(dir, { recursive: true });
  for (const bin of Object.keys(TOOLS)) {
    if (bin === without) continue;
    const real = findOnPath(bin);
    if (!real) throw new Error(`${bin} is not on PATH here`);
    symlinkSync(real, join(dir, bin));
  }
  return dir;
}

let healthy: Map<string, Check>;

beforeAll(async () => {
  const r = await doctor();
  healthy = r.checks;
  expect(r.code, failed(r.checks).join(", ")).toBe(0);
}, 60_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("a healthy machine: every check passes, exit 0", () => {
  expect(failed(healthy)).toEqual([]);
  expect(healthy.size).toBeGreaterThanOrEqual(30);
  expect(healthy.get("NFQUEUE addon (tandem-nfqueue)")?.detail).toBe(
    join(ROOT, "native", "nfqueue", "build", "Release", "tandem_nfqueue.node"),
  );
});

describe("a tool missing from PATH fails its check (and the kernel probe that needs it)", () => {
  const alsoFails: Record<string, string[]> = {
    ip: [
      "network namespaces",
      "veth",
      "bridge",
      "nftables sets with counters",
      "nft owner tables (libnftables)",
      "NFQUEUE (iptables-nft)",
      "conntrack in a namespace",
    ],
    // the owner-table probe lists tables with a spawned nft
    nft: ["nftables sets with counters", "nft owner tables (libnftables)"],
    iptables: ["NFQUEUE (iptables-nft)"],
    conntrack: ["conntrack in a namespace"],
  };
  for (const [bin, name] of Object.entries(TOOLS)) {
    test(bin, async () => {
      const r = await doctor(undefined, { ...process.env, PATH: pathWithout(bin) });
      expect(r.code).toBe(1);
      expect(failed(r.checks).sort()).toEqual([name, ...(alsoFails[bin] ?? [])].sort());
      expect(r.checks.get(name)?.detail).toBe(`${bin} is not on PATH`);
      expect(r.stderr).toContain("to fix: apt-get install");
    });
  }
});

describe("a file taken away in a private mount namespace", () => {
  const blank = join(tmp, "blank");
  writeFileSync(blank, "");
  chmodSync(blank, 0o644);
  const cases: [string, string, string[]][] = [
    ["/usr/lib/frr/vrrpd", "file", ["frr vrrpd"]],
    ["/usr/lib/frr/zebra", "file", ["frr zebra"]],
    ["/usr/bin/python3", "file", ["python3", "python3 scapy"]],
    ["/usr/bin/chromium", "file", ["chromium"]],
    ["/usr/lib/python3/dist-packages/scapy", "dir", ["python3 scapy"]],
  ];
  for (const [path, kind, names] of cases) {
    test(path, async () => {
      const cover = kind === "file" ? `mount --bind ${blank} ${path}` : `mount -t tmpfs none ${path}`;
      const r = await doctor([
        "unshare",
        "-m",
        "sh",
        "-c",
        `${cover} && exec ${process.execPath} ${CLI} doctor --json`,
      ]);
      expect(r.code).toBe(1);
      expect(failed(r.checks).sort()).toEqual([...names].sort());
    });
  }

  test("JAVA_HOME without a java", async () => {
    const r = await doctor(undefined, { ...process.env, JAVA_HOME: join(tmp, "no-jre") });
    expect(failed(r.checks)).toEqual(["java (allure-commandline)"]);
    expect(r.code).toBe(1);
  });
});

describe("a checkout (TANDEM_ROOT) lacking an addon build, a bundle or allure", () => {
  /** A checkout sharing lib/ with this one; dist and node_modules entries are links, edited per case. */
  function checkout(name: string, edit: (dir: string) => void): string {
    const dir = join(tmp, `checkout-${name}`);
    mkdirSync(join(dir, "node_modules"), { recursive: true });
    cpSync(join(ROOT, "package.json"), join(dir, "package.json"));
    symlinkSync(join(ROOT, "lib"), join(dir, "lib"));
    mkdirSync(join(dir, "dist", "agents"), { recursive: true });
    symlinkSync(join(ROOT, "dist", "cli.mjs"), join(dir, "dist", "cli.mjs"));
    for (const a of readdirSync(join(ROOT, "dist", "agents")))
      symlinkSync(join(ROOT, "dist", "agents", a), join(dir, "dist", "agents", a));
    for (const m of [
      "allure-commandline",
      "tandem-nfqueue",
      "tandem-rawio",
      "tandem-netlink",
      "tandem-nftables",
    ])
      symlinkSync(join(ROOT, "node_modules", m), join(dir, "node_modules", m));
    edit(dir);
    return dir;
  }
  /** Replaces node_modules/PKG by a copy of its package without build/ (or with `binary` as its build). */
  function unbuilt(dir: string, pkg: string, binary?: { file: string; bytes: string }): void {
    const target = join(dir, "node_modules", pkg);
    rmSync(target);
    mkdirSync(target);
    for (const f of ["package.json", "index.js"]) cpSync(join(ROOT, "node_modules", pkg, f), join(target, f));
    if (binary) {
      mkdirSync(join(target, "build", "Release"), { recursive: true });
      writeFileSync(join(target, "build", "Release", binary.file), binary.bytes);
    }
  }
  const run = (dir: string) => doctor(undefined, { ...process.env, TANDEM_ROOT: dir });

  test("the healthy copy passes (the links stand for a real checkout)", async () => {
    const r = await run(checkout("same", () => {}));
    expect(failed(r.checks)).toEqual([]);
    expect(r.code).toBe(0);
  });

  const addons: [string, string, string][] = [
    ["tandem-nfqueue", "tandem_nfqueue.node", "NFQUEUE addon (tandem-nfqueue)"],
    ["tandem-rawio", "tandem_rawio.node", "raw socket addon (tandem-rawio)"],
    ["tandem-netlink", "tandem_netlink.node", "conntrack/rtnetlink addon (tandem-netlink)"],
    ["tandem-nftables", "tandem_nftables.node", "nftables addon (tandem-nftables)"],
  ];
  for (const [pkg, binary, name] of addons) {
    const extra = pkg === "tandem-nftables" ? ["nft owner tables (libnftables)"] : [];
    test(`${pkg}: not built, not loadable, not installed`, async () => {
      const notBuilt = await run(checkout(`${pkg}-unbuilt`, (d) => unbuilt(d, pkg)));
      expect(failed(notBuilt.checks).sort()).toEqual([name, ...extra].sort());
      expect(notBuilt.checks.get(name)?.detail).toMatch(/^not built \(.*build\/Release\/.* is missing\)$/);
      const garbage = await run(
        checkout(`${pkg}-garbage`, (d) => unbuilt(d, pkg, { file: binary, bytes: "not an ELF file" })),
      );
      expect(failed(garbage.checks).sort()).toEqual([name, ...extra].sort());
      expect(garbage.checks.get(name)?.detail).toMatch(/^does not load: /);
      const absent = await run(checkout(`${pkg}-absent`, (d) => rmSync(join(d, "node_modules", pkg))));
      expect(absent.checks.get(name)?.detail).toMatch(/is not installed in /);
      expect(absent.code).toBe(1);
    });
  }

  test("an agent bundle missing", async () => {
    const r = await run(checkout("no-bundle", (d) => rmSync(join(d, "dist", "agents", "vrls-router.mjs"))));
    expect(failed(r.checks)).toEqual(["bundles (dist/)"]);
    expect(r.checks.get("bundles (dist/)")?.detail).toContain("vrls-router.mjs");
  });

  test("allure-commandline missing", async () => {
    const r = await run(checkout("no-allure", (d) => rmSync(join(d, "node_modules", "allure-commandline"))));
    expect(failed(r.checks)).toEqual(["allure-commandline"]);
  });
});

test("not root: the root check and every kernel check fail (kernel ones not tried)", async () => {
  const r = await doctor([
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    process.execPath,
    CLI,
    "doctor",
    "--json",
  ]);
  expect(r.code).toBe(1);
  expect(failed(r.checks).sort()).toEqual(
    [
      "running as root",
      "network namespaces",
      "veth",
      "bridge",
      "nftables sets with counters",
      "nft owner tables (libnftables)",
      "NFQUEUE (iptables-nft)",
      "conntrack in a namespace",
    ].sort(),
  );
  expect(r.checks.get("veth")?.detail).toBe("not tried: needs root");
});
