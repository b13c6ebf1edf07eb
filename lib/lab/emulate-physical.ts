import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { authorizedKeysLine, keyFingerprint, publicKeyBlob, sshdConfig } from "../remote/index.ts";
import { repoRoot } from "../remote/repo-root.ts";
import { type LoadedTopology, loadTopology } from "../topology/load.ts";
import { ipBatch, run } from "./command.ts";
import { mapLimit } from "./limit.ts";
import { namespaceName, newRunPrefix, stateDir } from "./prefix.ts";
import { registerLiveLab, unregisterLiveLab } from "./signals.ts";
import { teardownPrefix } from "./teardown.ts";
import { buildNetwork, type Progress } from "./virtual.ts";

/**
 * An emulated physical lab (issue 14): the hosts of a topology with an `inventory:`
 * built on this machine so that they behave like separate boxes.
 *
 * - Each host is a network namespace (its data links exactly as the virtual backend
 *   builds them) plus its own mount namespace, held by a long-lived holder process
 *   (`unshare --mount`). In it the project checkout (and its parent directory, where
 *   other checkouts live), the controller's /tmp and /run/tandem are covered by empty
 *   tmpfs mounts, and /var/lib/tandem is the host's private disk (a directory of the
 *   run's state dir, bind-mounted before /run/tandem is covered).
 * - sshd is started inside that mount namespace and listens on the host's management
 *   address (the inventory `address`, `port`) on interface `mgmt0`, a veth to the
 *   management bridge `<prefix>-mgmt` in the machine's own namespace, which holds the
 *   controller's address (.1 of the inventory's /24). The controller reaches it by plain
 *   TCP, as it would reach real hardware. The data links never touch that network.
 * - sshd authorizes the inventory's key (its `.pub`) and serves the host key whose
 *   fingerprint the inventory pins (`hostKey`), from `hostKeyFile`.
 *
 * Everything carries the run prefix: namespaces `<prefix>-<host>`, the links
 * `<prefix>-mgmt` and `<prefix>-m<N>` in the machine's namespace, the state dir. The
 * mount namespaces end with their processes; `teardownPrefix` (and `tandem lab sweep`)
 * kill those and remove the rest.
 */

export interface EmulatedHost {
  name: string;
  namespace: string;
  address: string;
  port: number;
  /** The host's private disk as seen from the controller (its /var/lib/tandem). */
  diskPath: string;
  /** The holder process of the host's mount namespace. */
  holderPid: number;
}

export interface EmulatedLab {
  prefix: string;
  file: string;
  /** The controller's address on the management network. */
  controllerAddress: string;
  /** Paths covered by empty tmpfs mounts on every host. */
  hiddenPaths: string[];
  hosts: Record<string, EmulatedHost>;
  /** Removes everything the emulation created; idempotent. */
  down(): Promise<void>;
}

export interface EmulateOptions {
  /** Private host key served by every host; its fingerprint must match the inventory's `hostKey`. */
  hostKeyFile?: string;
  progress?: Progress;
  /** Tear down on SIGINT/SIGTERM of this process (default true). */
  teardownOnSignal?: boolean;
}

/** Where the emulated hosts' private disks are mounted (created once on this machine as an empty mountpoint). */
export const HOST_DISK = "/var/lib/tandem";

export function defaultEmulatedHostKey(): string {
  return join(repoRoot(), "labs", "keys", "emulated-host_ed25519");
}

/** The paths a host must not see: the checkout, its parent (other checkouts), /tmp, /run/tandem. */
export function hiddenPaths(): string[] {
  const checkout = repoRoot();
  const parent = dirname(checkout);
  // Covering the parent covers the checkout too (and a mountpoint inside a tmpfs would not exist).
  return [parent !== "/" ? parent : checkout, "/tmp", "/run/tandem"];
}

export async function emulatePhysicalLab(
  source: string | LoadedTopology,
  options: EmulateOptions = {},
): Promise<EmulatedLab> {
  const loaded = typeof source === "string" ? loadTopology(source) : source;
  const inventory = loaded.topology.inventory;
  if (!inventory) throw new Error(`${loaded.file}: no inventory: section; nothing to emulate`);
  const hostNames = Object.keys(loaded.topology.hosts);
  const missing = hostNames.filter((h) => !inventory[h]);
  if (missing.length > 0)
    throw new Error(`${loaded.file}: inventory: no entry for host(s) ${missing.join(", ")}`);

  // The management network: one /24 holding every inventory address.
  const subnets = new Set<string>();
  for (const [h, e] of Object.entries(inventory)) {
    const m = /^(198\.1[89]\.\d{1,3})\.(\d{1,3})$/.exec(e.address);
    if (!m || Number(m[2]) < 2 || Number(m[2]) > 254)
      throw new Error(
        `${loaded.file}: inventory.${h}.address: an emulated host needs an IPv4 address in 198.18.0.0/15 (not .0, .1 or .255) (value: ${JSON.stringify(e.address)})`,
      );
    subnets.add(m[1]!);
  }
  if (subnets.size !== 1)
    throw new Error(
      `${loaded.file}: inventory: an emulated lab puts every host in one management /24; found ${[...subnets].map((s) => `${s}.0/24`).join(", ")}`,
    );
  const net = [...subnets][0]!;
  const controllerAddress = `${net}.1`;
  const inUse = await run(["ip", "-4", "-o", "addr", "show", "to", `${net}.0/24`]);
  if (inUse.stdout.trim())
    throw new Error(
      `management network ${net}.0/24 is already in use on this machine (${inUse.stdout.trim().split(/\s+/)[1]}); is this lab already emulated? (\`tandem lab sweep --prefix <prefix>\` removes a leftover)`,
    );

  const hostKeyFile = options.hostKeyFile ?? defaultEmulatedHostKey();
  const hostPublic = readFileSync(`${hostKeyFile}.pub`, "utf8");
  const hostFingerprint = keyFingerprint(publicKeyBlob(hostPublic));
  for (const [h, e] of Object.entries(inventory)) {
    if (e.hostKey && e.hostKey !== hostFingerprint)
      throw new Error(
        `${loaded.file}: inventory.${h}.hostKey: ${e.hostKey} is not the fingerprint of ${hostKeyFile} (${hostFingerprint})`,
      );
    if (!existsSync(`${e.key}.pub`))
      throw new Error(`${loaded.file}: inventory.${h}.key: ${e.key}.pub not found (sshd authorizes it)`);
  }

  const prefix = newRunPrefix();
  const dir = stateDir(prefix);
  const progress = options.progress ?? (() => {});
  const bridge = `${prefix}-mgmt`;
  if (options.teardownOnSignal !== false) registerLiveLab(prefix, () => teardownPrefix(prefix));
  const hosts: Record<string, EmulatedHost> = {};
  const hidden = hiddenPaths();
  try {
    await buildNetwork(loaded.topology, prefix, progress);
    await mkdir(HOST_DISK, { recursive: true, mode: 0o755 });
    // Management network: a bridge in the machine's namespace (the controller's side).
    const rootCommands = [
      `link add ${bridge} type bridge`,
      `addr add ${controllerAddress}/24 dev ${bridge}`,
      `link set ${bridge} up`,
    ];
    hostNames.forEach((h, i) => {
      rootCommands.push(
        `link add ${prefix}-m${i} type veth peer name mgmt0 netns ${namespaceName(prefix, h)}`,
        `link set ${prefix}-m${i} master ${bridge} up`,
      );
    });
    await ipBatch(undefined, rootCommands);
    // No IPv6 chatter (router solicitations, MLD) on the management links.
    for (const link of [bridge, ...hostNames.map((_, i) => `${prefix}-m${i}`)])
      await writeFile(`/proc/sys/net/ipv6/conf/${link}/disable_ipv6`, "1").catch(() => undefined);

    let started = 0;
    await mapLimit(hostNames, 8, async (h) => {
      const e = inventory[h]!;
      const ns = namespaceName(prefix, h);
      await ipBatch(ns, [`addr add ${e.address}/24 dev mgmt0`, "link set mgmt0 up", "link set lo up"]);
      const disk = join(dir, "hosts", h, "disk");
      const sshDir = join(disk, "sshd");
      await mkdir(sshDir, { recursive: true, mode: 0o700 });
      await copyFile(hostKeyFile, join(sshDir, "host_ed25519"));
      await run(["chmod", "600", join(sshDir, "host_ed25519")]);
      await writeFile(
        join(sshDir, "authorized_keys"),
        authorizedKeysLine(await readFile(`${e.key}.pub`, "utf8")),
        { mode: 0o600 },
      );
      // Paths as the host sees them (its disk is mounted at HOST_DISK).
      const inHost = `${HOST_DISK}/sshd`;
      await writeFile(
        join(sshDir, "sshd_config"),
        sshdConfig({
          listenAddress: e.address,
          port: e.port,
          hostKeyPath: `${inHost}/host_ed25519`,
          authorizedKeysPath: `${inHost}/authorized_keys`,
          pidPath: `${inHost}/sshd.pid`,
        }),
      );
      const log = join(sshDir, "sshd.log");
      await writeFile(log, "");
      const holderLog = join(dir, "hosts", h, "holder.log");
      const script = [
        "set -e",
        // Not even the holder's working directory may lead back into the checkout (/proc/PID/cwd).
        "cd /",
        'disk="$1"; shift',
        // Nothing of ours propagates back to the machine.
        "mount --make-rprivate /",
        `mount --bind "$disk" ${HOST_DISK}`,
        'for p in "$@"; do mount -t tmpfs -o mode=0755,size=512m tandem-hidden "$p"; done',
        "chmod 1777 /tmp",
        `/usr/sbin/sshd -f ${inHost}/sshd_config -E ${inHost}/sshd.log`,
        "exec sleep infinity",
      ].join("\n");
      const fd = openSync(holderLog, "a");
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(
          "ip",
          ["netns", "exec", ns, "unshare", "--mount", "--", "sh", "-c", script, "holder", disk, ...hidden],
          { stdio: ["ignore", fd, fd], detached: true, cwd: "/" },
        );
      } finally {
        closeSync(fd);
      }
      child.unref();
      await waitForLog(log, holderLog, child, `sshd of emulated host ${h} (${e.address}:${e.port})`);
      hosts[h] = {
        name: h,
        namespace: ns,
        address: e.address,
        port: e.port,
        diskPath: disk,
        holderPid: child.pid!,
      };
      progress("hosts (mount namespace + sshd)", ++started, hostNames.length);
    });
    await writeFile(
      join(dir, "emulation.json"),
      JSON.stringify({ file: loaded.file, controllerAddress, hosts, hiddenPaths: hidden }, null, 2),
    );
  } catch (error) {
    unregisterLiveLab(prefix);
    await teardownPrefix(prefix);
    throw error;
  }
  let downed: Promise<void> | undefined;
  return {
    prefix,
    file: loaded.file,
    controllerAddress,
    hiddenPaths: hidden,
    hosts,
    down() {
      downed ??= (async () => {
        unregisterLiveLab(prefix);
        await teardownPrefix(prefix);
      })();
      return downed;
    },
  };
}

/** Resolves once sshd logs "Server listening"; fails with the holder's last words if it exits. */
async function waitForLog(
  sshdLog: string,
  holderLog: string,
  child: ReturnType<typeof spawn>,
  what: string,
): Promise<void> {
  let exited: number | null | undefined;
  child.on("exit", (code) => {
    exited = code;
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const log = await readFile(sshdLog, "utf8").catch(() => "");
    if (/Server listening on /.test(log)) return;
    if (exited !== undefined || Date.now() > deadline) {
      const words = `${await readFile(holderLog, "utf8").catch(() => "")}\n${log}`.trim();
      throw new Error(
        `${what} ${exited !== undefined ? `: holder exited (code ${exited})` : "did not listen within 10 s"}: ${words.split("\n").slice(-5).join(" | ")}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
