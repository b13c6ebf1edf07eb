import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type RemoteHost, repoRoot, shellQuote } from "../remote/index.ts";

/**
 * `tandem lab prepare` (issue 14): what a physical host needs from the controller,
 * installed over SSH/SFTP into a versioned directory `/var/lib/tandem/<version>/`:
 *
 *   agents/<name>.mjs                       the agent bundles (dist/agents)
 *   node_modules/tandem-<x>/{package.json,index.js,build/Release/tandem_<x>.node}
 *                                           the native addons, where the bundles' bare
 *                                           imports ("tandem-nfqueue") resolve from agents/
 *   bin/pktgen                              the native UDP generator
 *   scapy/bridge.py                         the scapy helper
 *
 * The native pieces are the controller's own builds, copied: this serves hosts of the
 * controller's architecture (checked: `uname -m`), which is the case of the emulated
 * lab; a host of another architecture is reported, not served (building on the host is
 * not implemented). The version is a hash of every file's path and content, so a new
 * build gets a new directory and a host never runs a mix. Idempotent: files whose
 * SHA-256 already matches are left alone.
 */

export const PREPARED_ROOT = "/var/lib/tandem";
export const ADDONS = ["nfqueue", "nftables", "netlink", "rawio"] as const;

export interface ManifestFile {
  /** Path inside the versioned directory. */
  rel: string;
  local: string;
  sha256: string;
  size: number;
  mode: number;
}

export interface Manifest {
  version: string;
  files: ManifestFile[];
}

function fileEntry(rel: string, local: string, mode: number): ManifestFile {
  if (!existsSync(local))
    throw new Error(`prepare: ${local} is missing on the controller (run \`npm run build\` / \`npm ci\`)`);
  const data = readFileSync(local);
  return { rel, local, mode, size: data.length, sha256: createHash("sha256").update(data).digest("hex") };
}

/** Everything a host needs, from this checkout's build. */
export function buildManifest(root = repoRoot()): Manifest {
  const files: ManifestFile[] = [];
  const agents = join(root, "dist", "agents");
  for (const name of readdirSync(agents).sort()) {
    if (name.endsWith(".mjs") && statSync(join(agents, name)).isFile())
      files.push(fileEntry(`agents/${name}`, join(agents, name), 0o644));
  }
  for (const addon of ADDONS) {
    const dir = join(root, "native", addon);
    const pkg = `node_modules/tandem-${addon}`;
    files.push(fileEntry(`${pkg}/package.json`, join(dir, "package.json"), 0o644));
    files.push(fileEntry(`${pkg}/index.js`, join(dir, "index.js"), 0o644));
    files.push(
      fileEntry(
        `${pkg}/build/Release/tandem_${addon}.node`,
        join(dir, "build", "Release", `tandem_${addon}.node`),
        0o755,
      ),
    );
  }
  files.push(fileEntry("bin/pktgen", join(root, "native", "pktgen", "build", "pktgen"), 0o755));
  files.push(fileEntry("scapy/bridge.py", join(root, "lib", "scapy-bridge", "bridge.py"), 0o644));
  const hash = createHash("sha256");
  for (const f of files) hash.update(`${f.rel}\0${f.sha256}\0${f.mode}\n`);
  return { version: hash.digest("hex").slice(0, 16), files };
}

export function preparedDirOf(manifest: Manifest): string {
  return `${PREPARED_ROOT}/${manifest.version}`;
}

/** What preparing one host found and did. */
export interface PrepareReport {
  host: string;
  dir: string;
  /** Files absent on the host or with other content, before this run. */
  missing: string[];
  /** Bytes uploaded to fix them. */
  uploadedBytes: number;
  /** Prerequisites the host lacks that prepare cannot install (node, architecture). */
  problems: string[];
}

const NODE_ARCH: Record<string, string> = { x64: "x86_64", arm64: "aarch64", arm: "armv7l" };

/** Checks and installs the manifest on one host; idempotent. */
export async function prepareHost(remote: RemoteHost, manifest: Manifest): Promise<PrepareReport> {
  const dir = preparedDirOf(manifest);
  const report: PrepareReport = { host: remote.name, dir, missing: [], uploadedBytes: 0, problems: [] };
  const probe = await remote.exec(
    "uname -m; command -v node >/dev/null 2>&1 && node -p process.versions.node || echo none",
    { timeoutMs: 20_000 },
  );
  const [arch, nodeVersion] = probe.stdout.trim().split("\n");
  const want = NODE_ARCH[process.arch] ?? process.arch;
  if (arch !== want)
    report.problems.push(
      `architecture ${arch} differs from the controller's ${want}: the native pieces are copies of the controller's build; build them on the host (not implemented)`,
    );
  if (!nodeVersion || nodeVersion === "none")
    report.problems.push("node is not installed (agents need Node.js 20 or newer on PATH)");
  else if (Number(nodeVersion.split(".")[0]) < 20)
    report.problems.push(`node ${nodeVersion} is too old (agents need Node.js 20 or newer)`);
  if (report.problems.length > 0) return report;

  // One command lists what is there: "<sha256>  <rel>" per present file.
  const rels = manifest.files.map((f) => f.rel);
  const listed = await remote.exec(
    `cd ${shellQuote(dir)} 2>/dev/null && sha256sum -- ${rels.map(shellQuote).join(" ")} 2>/dev/null; true`,
    { timeoutMs: 60_000 },
  );
  const present = new Map<string, string>();
  for (const line of listed.stdout.split("\n")) {
    const m = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (m) present.set(m[2]!, m[1]!);
  }
  const stale = manifest.files.filter((f) => present.get(f.rel) !== f.sha256);
  report.missing = stale.map((f) => f.rel);
  if (stale.length > 0) {
    // A full disk is said before an upload fails half-way: free space where the files go.
    const needed = stale.reduce((sum, f) => sum + f.size, 0);
    const df = await remote.exec(
      `mkdir -p ${shellQuote(dir)} 2>/dev/null; df -Pk ${shellQuote(dir)} 2>/dev/null || df -Pk ${PREPARED_ROOT}`,
      { timeoutMs: 20_000 },
    );
    const availableKiB = Number(df.stdout.trim().split("\n").at(-1)?.trim().split(/\s+/)[3]);
    if (Number.isFinite(availableKiB) && availableKiB * 1024 < needed * 1.1) {
      report.problems.push(
        `disk full: ${dir} has ${(availableKiB / 1024).toFixed(1)} MB free, ${(needed / 1048576).toFixed(1)} MB are needed; free disk space on the host`,
      );
      return report;
    }
    const dirs = [...new Set(stale.map((f) => `${dir}/${f.rel.split("/").slice(0, -1).join("/")}`))];
    await remote.execOrThrow(["mkdir", "-p", ...dirs], { timeoutMs: 20_000 });
    for (const f of stale) {
      // Upload beside and rename: an agent starting meanwhile never runs a half-written file.
      const target = `${dir}/${f.rel}`;
      const temporary = `${target}.${randomBytes(4).toString("hex")}.part`;
      await remote.upload(f.local, temporary, f.mode);
      await remote.execOrThrow(["mv", "-f", temporary, target], { timeoutMs: 20_000 });
      report.uploadedBytes += f.size;
    }
    const recheck = await remote.exec(
      `cd ${shellQuote(dir)} && sha256sum -- ${stale.map((f) => shellQuote(f.rel)).join(" ")}`,
      { timeoutMs: 60_000 },
    );
    for (const f of stale) {
      if (!recheck.stdout.includes(`${f.sha256}  ${f.rel}`))
        report.problems.push(`${f.rel}: content differs after upload (disk full? ${recheck.stderr.trim()})`);
    }
  }
  return report;
}

/** One line per host: what was missing and how it was fixed. */
export function formatPrepareReport(r: PrepareReport): string {
  if (r.problems.length > 0) return `${r.host}: NOT READY: ${r.problems.join("; ")}`;
  if (r.missing.length === 0) return `${r.host}: up to date (${r.dir})`;
  const shown =
    r.missing.slice(0, 4).join(", ") + (r.missing.length > 4 ? `, ... (${r.missing.length})` : "");
  return `${r.host}: missing ${shown}; uploaded ${r.missing.length} file(s), ${r.uploadedBytes} bytes, over SFTP to ${r.dir}`;
}
