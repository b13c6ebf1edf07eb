import { KERNEL_PROBES } from "../lab/host-features.ts";
import { measureClockOffset, problemOf } from "../lab/physical.ts";
import { buildManifest, preparedDirOf } from "../lab/prepare.ts";
import type { RemoteHost } from "../remote/index.ts";
import { type Check, ON_PATH } from "./doctor.ts";

/**
 * `tandem doctor --lab FILE` (issue 14): the doctor's checks run on every host of a
 * physical lab over SSH. The binaries are the doctor's own list (lib/cli/doctor.ts),
 * less the controller-only ones; the kernel features are tried in a throwaway network
 * namespace made with `unshare --net` on the host (nothing named, nothing left behind).
 */

/** Needed on the controller only (reports, the SSH transport of virtual labs, web UIs). */
const CONTROLLER_ONLY = new Set(["socat", "java (allure-commandline)", "chromium"]);

export interface HostChecks {
  host: string;
  where: string;
  checks: Check[];
}

/** Runs the doctor's checks on one host; never throws (an unreachable host is one failed check). */
export async function doctorHost(remote: RemoteHost, where: string): Promise<HostChecks> {
  const out: HostChecks = { host: remote.name, where, checks: [] };
  const add = (name: string, ok: boolean, detail: string, fix?: string) =>
    out.checks.push({ name, ok, detail, ...(fix ? { fix } : {}) });
  try {
    const clock = await measureClockOffset(remote);
    add("ssh", true, where);
    const offset = Math.abs(clock.offsetMs);
    add(
      "clock offset to the controller",
      offset <= 100,
      `${clock.offsetMs.toFixed(3)} ms (± ${clock.uncertaintyMs.toFixed(3)} ms)`,
      "synchronise the host's clock (chrony or systemd-timesyncd); the analyzer corrects offsets, timing verdicts need them small",
    );
  } catch (error) {
    const p = problemOf(remote.name, error, where);
    add("ssh", false, p.message, p.advice);
    return out;
  }
  const id = await remote.exec(["id", "-u"], { timeoutMs: 10_000 });
  add("running as root", id.stdout.trim() === "0", `uid ${id.stdout.trim()}`, "inventory user: root");

  // One round trip for every binary: found on the login PATH, an executable, non-empty file.
  const binaries = ON_PATH.filter((b) => !CONTROLLER_ONLY.has(b.name));
  const script = binaries
    .map(
      (b, i) =>
        `f=$(command -v ${b.bin} 2>/dev/null); if [ -n "$f" ] && [ -x "$f" ] && [ -s "$f" ]; then echo "${i} $f"; else echo "${i} "; fi`,
    )
    .join("\n");
  const found = await remote.exec(script, { timeoutMs: 20_000 });
  const where_ = new Map<number, string>();
  for (const line of found.stdout.split("\n")) {
    const m = /^(\d+) (.*)$/.exec(line);
    if (m) where_.set(Number(m[1]), m[2]!);
  }
  binaries.forEach((b, i) => {
    const at = where_.get(i);
    add(b.name, Boolean(at), at || `not found (${b.bin} on the PATH)`, `apt-get install ${b.pkg}`);
  });

  const node = await remote.exec("node -p process.versions.node", { timeoutMs: 20_000 });
  const major = Number(node.stdout.trim().split(".")[0]);
  add(
    "node (agents)",
    node.code === 0 && major >= 20,
    node.code === 0 ? node.stdout.trim() : "not found",
    "install Node.js 20 or newer",
  );
  const scapy = await remote.exec(["python3", "-c", "import scapy.all"], { timeoutMs: 30_000 });
  add(
    "python3 scapy",
    scapy.code === 0,
    scapy.code === 0 ? "ok" : lastLine(scapy.stderr),
    "apt-get install python3-scapy",
  );

  // Kernel features, each tried in its own throwaway network namespace.
  for (const probe of KERNEL_PROBES) {
    const r = await remote.exec(["unshare", "--net", "sh", "-c", probe.script], { timeoutMs: 20_000 });
    add(probe.name, r.code === 0, r.code === 0 ? "ok" : lastLine(r.stderr) || `exit ${r.code}`, probe.fix);
  }

  // What `tandem lab prepare` installs: present for this build, and the addons load there.
  const dir = preparedDirOf(buildManifest());
  const addons = await remote.exec(
    `cd ${dir}/agents 2>/dev/null || { echo "not prepared: ${dir} is missing" >&2; exit 3; }; ` +
      `node --input-type=module -e "for (const m of ['tandem-nfqueue','tandem-nftables','tandem-netlink','tandem-rawio']) await import(m)"`,
    { timeoutMs: 30_000 },
  );
  add(
    "prepared agents and addons",
    addons.code === 0,
    addons.code === 0 ? dir : lastLine(addons.stderr),
    "tandem lab prepare FILE",
  );

  const df = await remote.exec("df -Pk /var/lib /tmp | tail -n +2", { timeoutMs: 10_000 });
  const low = df.stdout
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 6 && Number(f[3]) < 200 * 1024)
    .map((f) => `${f[5]}: ${Math.round(Number(f[3]) / 1024)} MB free`);
  add(
    "free disk (/var/lib, /tmp)",
    df.code === 0 && low.length === 0,
    low.join(", ") || "ok",
    "free disk space: prepare needs ~100 MB under /var/lib/tandem, captures need room in /tmp",
  );
  return out;
}

function lastLine(text: string): string {
  return text.trim().split("\n").slice(-1)[0] ?? "";
}

/** Per host: a header and the failed checks (all checks with `verbose`). */
export function formatHostChecks(results: readonly HostChecks[], verbose = false): string {
  const lines: string[] = [];
  for (const r of results) {
    const failed = r.checks.filter((c) => !c.ok);
    lines.push(`${r.host} (${r.where}): ${failed.length === 0 ? "ok" : `${failed.length} problem(s)`}`);
    for (const c of verbose ? r.checks : failed)
      lines.push(
        `  ${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(32)} ${c.ok ? c.detail : `${c.detail} -> ${c.fix}`}`,
      );
  }
  return `${lines.join("\n")}\n`;
}
