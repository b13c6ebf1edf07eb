// Shared by test/remote.test.ts and test/agent.test.ts: a private sshd on loopback (the
// machine's own namespace; also what the physical backend is tested against) and a
// throwaway network namespace carrying the run prefix, always removed.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import {
  type LabKeyFiles,
  RemoteHost,
  type SshdHandle,
  startSshd,
  writeLabKeys,
} from "../lib/remote/index.ts";

export interface LoopbackSshd {
  dir: string;
  keys: LabKeyFiles;
  sshd: SshdHandle;
  host(options?: { name?: string; privateKey?: string; hostPublicKey?: string }): RemoteHost;
  dispose(): Promise<void>;
}

export async function loopbackSshd(): Promise<LoopbackSshd> {
  const dir = await mkdtemp(join(tmpdir(), "tandem-remote-"));
  const keys = await writeLabKeys(dir);
  const sshd = await startSshd({
    dir,
    listenAddress: "127.0.0.1",
    port: 0,
    hostKeyPath: keys.hostKeyPath,
    authorizedKeysPath: keys.authorizedKeysPath,
  });
  const opened: RemoteHost[] = [];
  return {
    dir,
    keys,
    sshd,
    host(options = {}) {
      const host = new RemoteHost({
        name: options.name ?? "loop",
        target: { kind: "tcp", host: "127.0.0.1", port: sshd.port },
        privateKey: options.privateKey ?? keys.client.privateKey,
        hostPublicKey: options.hostPublicKey ?? keys.host.publicKey,
      });
      opened.push(host);
      return host;
    },
    async dispose() {
      for (const host of opened) host.close();
      await sshd.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestNamespace {
  prefix: string;
  namespace: string;
  dir: string;
  keys: LabKeyFiles;
  sshd: SshdHandle;
  host(): RemoteHost;
  dispose(): Promise<void>;
}

/** A namespace `<prefix>-NAME` with lo up and sshd on 127.0.0.1:22 inside it. */
export async function namespaceWithSshd(hostName: string): Promise<TestNamespace> {
  const prefix = newRunPrefix();
  const namespace = namespaceName(prefix, hostName);
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  const opened: RemoteHost[] = [];
  let sshd: SshdHandle | undefined;
  const dispose = async () => {
    for (const host of opened) host.close();
    await sshd?.stop().catch(() => undefined);
    // Only this prefix's namespace: kill what still runs in it, then delete it.
    const pids = await run(["ip", "netns", "pids", namespace], { allowFailure: true });
    for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    }
    await run(["ip", "netns", "del", namespace], { allowFailure: true });
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run(["ip", "netns", "add", namespace]);
    await run(["ip", "-n", namespace, "link", "set", "lo", "up"]);
    const keys = await writeLabKeys(dir);
    sshd = await startSshd({
      dir,
      namespace,
      listenAddress: "127.0.0.1",
      port: 22,
      hostKeyPath: keys.hostKeyPath,
      authorizedKeysPath: keys.authorizedKeysPath,
    });
    const started = sshd;
    return {
      prefix,
      namespace,
      dir,
      keys,
      sshd: started,
      host() {
        const host = new RemoteHost({
          name: hostName,
          target: { kind: "namespace", namespace },
          privateKey: keys.client.privateKey,
          hostPublicKey: keys.host.publicKey,
        });
        opened.push(host);
        return host;
      },
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

export async function namespaceExists(namespace: string): Promise<boolean> {
  const { stdout } = await run(["ip", "netns", "list"]);
  return stdout.split("\n").some((line) => line.split(" ")[0] === namespace);
}

/** True while a process with this pid exists (zombies count as gone). */
export async function processAlive(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return status !== "" && !/^State:\s+Z/m.test(status);
}

export async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
