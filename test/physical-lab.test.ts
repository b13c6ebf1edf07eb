import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildManifest,
  type EmulatedLab,
  emulatePhysicalLab,
  formatPrepareReport,
  type Lab,
  LabHostsError,
  namespacesOf,
  prepareHost,
  probeHostFeatures,
  readLabRecords,
  run,
  upLab,
} from "../lib/lab/index.ts";
import { RemoteError, repoRoot } from "../lib/remote/index.ts";
import { ConfigError, loadTopology } from "../lib/topology/index.ts";
import { Capture } from "../lib/traffic/capture.ts";
import { PcapReader } from "../lib/traffic/pcap-reader.ts";
import { isInconclusive } from "../suites/support/evidence.ts";

/**
 * Issue 14: a physical lab whose hosts share nothing with the controller, emulated on
 * this machine (own network and mount namespace per host, sshd on a management network
 * reached by TCP), then used through the inventory backend like real hardware.
 */

const FILE = resolve("test/fixtures/physical-small.yaml");
const HOSTS = ["r1", "a", "b"];

let emu: EmulatedLab;
let lab: Lab;

/** Runs the CLI (dist/cli.mjs) as a user would. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ["bin/tandem.js", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

/** Runs a command inside an emulated host's mount namespace (what its own admin would do). */
function onHostBox(host: string, argv: string[]) {
  const h = emu.hosts[host]!;
  return run(["nsenter", "-t", String(h.holderPid), "-m", "-n", "--", ...argv]);
}

/** Kills every sshd of an emulated host (listener and sessions): the SSH session drops. */
async function killSshd(host: string): Promise<number> {
  const { stdout } = await run(["ip", "netns", "pids", emu.hosts[host]!.namespace]);
  let killed = 0;
  for (const pid of stdout.split(/\s+/).filter(Boolean)) {
    const comm = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
    if (comm.trim() === "sshd") {
      process.kill(Number(pid), "SIGKILL");
      killed++;
    }
  }
  return killed;
}

beforeAll(async () => {
  emu = await emulatePhysicalLab(FILE);
}, 60_000);

afterAll(async () => {
  await lab?.down();
  const prefix = emu?.prefix;
  await emu?.down();
  if (prefix) {
    // Nothing of the emulation is left: namespaces, management links, state.
    expect(await namespacesOf(prefix)).toEqual([]);
    expect((await run(["ip", "-o", "link", "show"])).stdout).not.toContain(`${prefix}-`);
    expect(existsSync(`/run/tandem/${prefix}`)).toBe(false);
  }
});

describe("emulated physical lab", () => {
  it("no host sees the controller's checkout, /tmp or /run/tandem; each is reached by TCP on the management network", async () => {
    const marker = join(tmpdir(), `tandem-controller-only-${process.pid}`);
    await writeFile(marker, "controller");
    try {
      lab = await upLab(FILE);
      expect(lab.backend).toBe("physical");
      for (const h of HOSTS) {
        const host = lab.host(h);
        expect(host.remote.target).toMatchObject({ kind: "tcp", host: emu.hosts[h]!.address });
        const r = await host.exec([
          "sh",
          "-c",
          `test -e ${repoRoot()}; echo checkout=$?; test -e ${marker}; echo tmp=$?; ls -A /run/tandem | wc -l; ` +
            `test -x /usr/bin/node; echo node=$?; echo $SSH_CONNECTION`,
        ]);
        const [checkout, tmp, runTandem, node, connection] = r.stdout.trim().split("\n");
        expect(checkout, `${h}: test -e ${repoRoot()}`).toBe("checkout=1");
        expect(tmp, `${h}: the controller's /tmp`).toBe("tmp=1");
        expect(runTandem, `${h}: entries in /run/tandem`).toBe("0");
        expect(node, `${h}: the system's node is there (so the test can see files)`).toBe("node=0");
        // SSH_CONNECTION = client address, client port, server address, server port.
        const [client, , server] = (connection ?? "").split(" ");
        expect(client).toBe(emu.controllerAddress);
        expect(server).toBe(emu.hosts[h]!.address);
      }
      // Controller side: the checkout is there, the hosts' view of it is not.
      expect(existsSync(repoRoot())).toBe(true);
    } finally {
      await rm(marker, { force: true });
    }
  });

  it("records each host's clock offset measured at lab start", () => {
    const clocks = lab.record.clocks ?? {};
    expect(Object.keys(clocks).sort()).toEqual([...HOSTS].sort());
    for (const h of HOSTS) {
      // One machine, one clock: the offset is within the measurement's own uncertainty plus 1 ms.
      expect(Math.abs(clocks[h]!.offsetMs)).toBeLessThanOrEqual(clocks[h]!.uncertaintyMs + 1);
      expect(clocks[h]!.uncertaintyMs).toBeGreaterThan(0);
    }
  });

  it("prepare is idempotent: a damaged file is found and replaced, the rest left alone", async () => {
    const manifest = buildManifest();
    const dir = lab.record.hosts.a!.preparedDir;
    expect(dir).toBe(`/var/lib/tandem/${manifest.version}`);
    const again = await prepareHost(lab.host("a").remote, manifest);
    expect(again).toMatchObject({ missing: [], uploadedBytes: 0, problems: [] });
    // Damage one addon and remove pktgen, on the host only.
    const addon = "node_modules/tandem-nfqueue/build/Release/tandem_nfqueue.node";
    await lab.host("a").exec(["sh", "-c", `echo junk > ${dir}/${addon}; rm ${dir}/bin/pktgen`]);
    const fixed = await prepareHost(lab.host("a").remote, manifest);
    expect(fixed.missing.sort()).toEqual([addon, "bin/pktgen"].sort());
    expect(fixed.problems).toEqual([]);
    const sums = await lab.host("a").exec(["sh", "-c", `cd ${dir} && sha256sum ${addon} bin/pktgen`]);
    for (const f of manifest.files.filter((x) => x.rel === addon || x.rel === "bin/pktgen"))
      expect(sums.stdout).toContain(`${f.sha256}  ${f.rel}`);
    // The CLI says per host what was there.
    const out = await cli(["lab", "prepare", FILE]);
    expect(out.code, out.stderr).toBe(0);
    for (const h of HOSTS) expect(out.stdout).toContain(`${h}: up to date (${dir})`);
  });

  it("agents run from the prepared directory and load the addons installed there", async () => {
    const dir = lab.record.hosts.r1!.preparedDir!;
    const agent = await lab.host("r1").launchAgent("echo");
    try {
      const cmdline = await lab.host("r1").exec(["cat", `/proc/${agent.pid}/cmdline`]);
      expect(cmdline.stdout.split("\0")).toContain(`${dir}/agents/echo.mjs`);
    } finally {
      await agent.stop();
    }
    const loaded = await lab
      .host("r1")
      .exec([
        "sh",
        "-c",
        `cd ${dir}/agents && node --input-type=module -e "const q = await import('tandem-nfqueue'); const n = await import('tandem-nftables'); console.log(typeof q.openQueue, typeof n.openNftContext, import.meta.resolve('tandem-nftables'))"`,
      ]);
    expect(loaded.stderr).toBe("");
    expect(loaded.stdout).toContain(`file://${dir}/node_modules/tandem-nftables/index.js`);
  });

  it("a capture taken on a host is fetched over SFTP before it is read", async () => {
    const b = lab.host("b").remote;
    const capture = await Capture.start(b, { interface: "eth0", filter: "icmp" });
    const ping = await lab.host("a").exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.32.10"]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    const stats = await capture.stop();
    expect(stats.error).toBeUndefined();
    expect(capture.path).not.toBe(capture.remotePath);
    // The host's file is not on the controller; the fetched copy is.
    expect(existsSync(capture.remotePath)).toBe(false);
    let echoes = 0;
    for await (const p of PcapReader.fromFile(capture.path)) if (p.data.length > 0) echoes++;
    expect(echoes).toBe(stats.captured);
    expect(echoes).toBeGreaterThanOrEqual(6); // 3 requests + 3 replies
    await capture.remove();
    expect(existsSync(capture.path)).toBe(false);
  });

  it("a full disk on a host is said with the host, the room there and what to do", async () => {
    // A 1 MB disk over r1's /var/lib/tandem (its sshd has its keys loaded; our session stays open).
    await onHostBox("r1", ["mount", "-t", "tmpfs", "-o", "size=1m", "small", "/var/lib/tandem"]);
    try {
      const report = await prepareHost(lab.host("r1").remote, buildManifest());
      expect(report.problems).toHaveLength(1);
      expect(report.problems[0]).toMatch(
        /^disk full: \/var\/lib\/tandem\/[0-9a-f]{16} has 1\.0 MB free, \d+\.\d MB are needed; free disk space on the host$/,
      );
      expect(formatPrepareReport(report)).toMatch(/^r1: NOT READY: disk full/);
    } finally {
      await onHostBox("r1", ["umount", "/var/lib/tandem"]);
    }
  });

  it("a host without a kernel feature the roles use ends the lab start, naming the host and the feature", async () => {
    // On a: nft is an empty file (the feature cannot be reached there). The hosts share
    // this machine's kernel, so the program is what can be taken away from one host alone.
    const nft = (await run(["sh", "-c", "command -v nft"])).stdout.trim();
    await onHostBox("a", [
      "sh",
      "-c",
      `: > /var/lib/tandem/empty-nft && mount --bind /var/lib/tandem/empty-nft ${nft}`,
    ]);
    try {
      const before = (await readLabRecords()).length;
      const t0 = performance.now();
      const failure = await upLab(FILE).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(LabHostsError);
      const message = (failure as Error).message;
      expect(message).toMatch(/^lab \S+: 1 host\(s\) not usable; no suite was started:/);
      expect(message).toMatch(
        /\n {2}a: nftables sets with counters: cannot be used: nft not found on the host\n/,
      );
      expect(message).toMatch(
        /what to do: apt-get install nftables on the host \(`tandem doctor --lab FILE` checks every host\)/,
      );
      expect(message).not.toMatch(/\n {2}(r1|b): /);
      expect((await readLabRecords()).length).toBe(before);
      // Said at the start, not by a case later (the whole start, every host probed).
      expect(performance.now() - t0).toBeLessThan(30_000);
    } finally {
      await onHostBox("a", ["umount", nft]);
    }
    // With nft back, the features are all there.
    const features = await probeHostFeatures(lab.host("a").remote);
    expect(features.filter((f) => !f.ok)).toEqual([]);
    expect(features.map((f) => f.name)).toContain("NFQUEUE (iptables-nft)");
  });

  it("doctor --lab names the host and the binary that is missing there", async () => {
    // Hide tcpdump on b only: an empty file over it, inside b's mount namespace.
    await onHostBox("b", [
      "sh",
      "-c",
      ": > /var/lib/tandem/empty && mount --bind /var/lib/tandem/empty /usr/bin/tcpdump",
    ]);
    // (tcpdump comes back after: a lab start refuses a host without it.)
    const out = await cli(["doctor", "--lab", FILE]).finally(() =>
      onHostBox("b", ["umount", "/usr/bin/tcpdump"]),
    );
    const sections = out.stdout.split(/\n(?=\S)/);
    const section = (h: string) => sections.find((s) => s.startsWith(`${h} (`)) ?? "";
    expect(section("b")).toMatch(/FAIL\s+tcpdump\s+not found .*apt-get install tcpdump/);
    expect(section("a")).not.toContain("tcpdump");
    expect(section("r1")).not.toContain("tcpdump");
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/\bb \([^)]*tcpdump/);
  });
});

describe("inventory errors", () => {
  it("a refused key and a wrong host key each name the host and what to do", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tandem-inv14-"));
    try {
      await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(dir, "other")]);
      const text = (await readFile(FILE, "utf8"))
        .replaceAll("../../labs/keys/", `${resolve("labs/keys")}/`)
        .replace(/(r1: \{[^}]*key: )[^,]+/, `$1${join(dir, "other")}`)
        .replace(/(a: \{[^}]*hostKey: )"[^"]+"/, '$1"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"');
      const file = join(dir, "bad.yaml");
      await writeFile(file, text);
      const failure = await upLab(file).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(LabHostsError);
      const message = (failure as Error).message;
      expect(message).toMatch(/r1: authentication to r1 failed: .* did not accept the key for user root/);
      expect(message).toMatch(/what to do: install the inventory key's public half/);
      expect(message).toMatch(/a: authentication to a failed: host key .* does not match/);
      expect(message).toMatch(
        /what to do: the host at root@198\.19\.208\.12:22 is not the one the inventory pins/,
      );
      expect(message).not.toMatch(/\n {2}b: /);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("bad inventory entries get file, path and line", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tandem-inv14-"));
    try {
      const file = join(dir, "inv.yaml");
      await writeFile(
        file,
        [
          "lab: p",
          "hosts:",
          "  a: {}",
          "  b: {}",
          "inventory:",
          "  a: { address: 192.0.2.1, port: 70000, key: k }",
          "  b: { address: 192.0.2.2, key: nokey, hostKey: md5:xx }",
        ].join("\n"),
      );
      await writeFile(join(dir, "k"), "");
      const error = (() => {
        try {
          loadTopology(file);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toContain(`${file}:6:`);
      expect(message).toMatch(/inventory\.a\.port: .*\(value: 70000\)/);
      expect(message).toContain(`${file}:7:`);
      expect(message).toMatch(/inventory\.b\.hostKey: expected a host key fingerprint/);
      // Once the schema holds, the cross-checks: a missing key file, a shared address.
      await writeFile(
        file,
        [
          "lab: p",
          "hosts:",
          "  a: {}",
          "  b: {}",
          "inventory:",
          "  a: { address: 192.0.2.1, key: k }",
          "  b: { address: 192.0.2.1, key: nokey }",
        ].join("\n"),
      );
      expect(() => loadTopology(file)).toThrow(
        new RegExp(`${file}:7:\\d+: inventory\\.b\\.address: 192\\.0\\.2\\.1:22 is also host a`),
      );
      expect(() => loadTopology(file)).toThrow(/inventory\.b\.key: private key file .*nokey not found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("dropped session (last: it kills a host's sshd)", () => {
  it("a dropped SSH session mid-case is an inconclusive error naming the host; a lab without it does not start", async () => {
    const agent = await lab.host("b").launchAgent("echo");
    const call = agent.call("sleep", { ms: 30_000 }).catch((e: unknown) => e);
    expect(await killSshd("b")).toBeGreaterThan(0);
    const error = (await call) as Error;
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.message).toContain(" b ");
    expect(isInconclusive(error), error.message).toBe(true);
    // Starting the lab again: b is unreachable, nothing starts, no record is left.
    const before = (await readLabRecords()).length;
    const failure = await upLab(FILE).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(LabHostsError);
    const message = (failure as Error).message;
    expect(message).toMatch(/b: host b unreachable: ECONNREFUSED connecting to 198\.19\.208\.13:22/);
    expect(message).toMatch(/what to do: check that the host is powered, that sshd listens/);
    expect(message).not.toMatch(/\n {2}a: /);
    expect((await readLabRecords()).length).toBe(before);
  });
});
