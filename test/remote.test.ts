import { createHash, randomBytes } from "node:crypto";
import { readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthFailedError,
  freeLocalPort,
  generateKeyPair,
  HostUnreachableError,
  RemoteCommandError,
  RemoteError,
  RemoteHost,
  RemoteTimeoutError,
  SshdStartError,
  sshdConfig,
  startSshd,
  stopSshdByPid,
} from "../lib/remote/index.ts";
import {
  type LoopbackSshd,
  loopbackSshd,
  namespaceExists,
  namespaceWithSshd,
  processAlive,
  waitUntil,
} from "./remote-fixture.ts";

let lab: LoopbackSshd;
let host: RemoteHost;

beforeAll(async () => {
  lab = await loopbackSshd();
  host = lab.host();
});
afterAll(async () => {
  await lab?.dispose();
});

describe("keys and sshd", () => {
  it("writes OpenSSH ed25519 keys with mode 0600 and an authorized_keys line", async () => {
    const key = await readFile(lab.keys.clientKeyPath, "utf8");
    expect(key).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(await readFile(lab.keys.authorizedKeysPath, "utf8")).toMatch(
      /^ssh-ed25519 AAAA\S+ tandem-client\n$/,
    );
    expect((await stat(lab.keys.clientKeyPath)).mode & 0o777).toBe(0o600);
    expect((await stat(lab.keys.hostKeyPath)).mode & 0o777).toBe(0o600);
  });

  it("runs its own sshd_config: key-only root login, never /etc/ssh", async () => {
    const config = await readFile(lab.sshd.configPath, "utf8");
    expect(config).toContain(`HostKey ${lab.keys.hostKeyPath}`);
    expect(config).toContain("PasswordAuthentication no");
    expect(config).not.toContain("/etc/ssh");
    // sshd rewrites its process title but keeps its command line in it.
    const title = await readFile(`/proc/${lab.sshd.pid}/cmdline`, "utf8");
    expect(title).toContain(`/usr/sbin/sshd -D -f ${lab.sshd.configPath} -E ${lab.sshd.logPath}`);
    expect(
      sshdConfig({
        listenAddress: "::1",
        port: 2222,
        hostKeyPath: "h",
        authorizedKeysPath: "a",
        pidPath: "p",
      }),
    ).toContain("ListenAddress [::1]:2222");
  });
});

describe("sshd launcher failures", () => {
  it("reports an sshd that cannot start, with its log, and stops one by pid", async () => {
    const busy = await startSshd({
      dir: join(lab.dir, "busy"),
      listenAddress: "127.0.0.1",
      port: lab.sshd.port, // taken by the fixture's sshd
      hostKeyPath: lab.keys.hostKeyPath,
      authorizedKeysPath: lab.keys.authorizedKeysPath,
    }).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(SshdStartError);
    expect(String(busy)).toMatch(/exited \(code \d+\) before listening: .*Address already in use/);

    const noNamespace = await startSshd({
      dir: join(lab.dir, "nons"),
      namespace: "td00000-missing",
      listenAddress: "127.0.0.1",
      port: 22,
      hostKeyPath: lab.keys.hostKeyPath,
      authorizedKeysPath: lab.keys.authorizedKeysPath,
    }).catch((e: unknown) => e);
    expect(noNamespace).toBeInstanceOf(SshdStartError);
    expect(String(noNamespace)).toMatch(
      /in namespace td00000-missing exited .*Cannot open network namespace/,
    );

    const other = await startSshd({
      dir: join(lab.dir, "other"),
      listenAddress: "127.0.0.1",
      port: 0,
      hostKeyPath: lab.keys.hostKeyPath,
      authorizedKeysPath: lab.keys.authorizedKeysPath,
    });
    expect(await processAlive(other.pid)).toBe(true);
    await stopSshdByPid(other.pid);
    expect(await waitUntil(async () => !(await processAlive(other.pid)), 3000)).toBe(true);
  });
});

describe("RemoteHost over TCP", () => {
  it("returns exit codes, stdout and stderr", async () => {
    const r = await host.exec("echo out; echo err >&2; exit 7");
    expect(r).toEqual({ code: 7, signal: null, stdout: "out\n", stderr: "err\n" });
    expect((await host.exec("true")).code).toBe(0);
  });

  it("quotes argv arrays so the remote shell passes every argument through unchanged", async () => {
    const tricky = [
      "a b",
      "it's",
      'say "hi"',
      "$HOME",
      "`id`",
      "",
      "; echo injected",
      "*",
      "back\\slash",
      "tab\there",
    ];
    const r = await host.exec(["printf", "%s\\n", ...tricky]);
    expect(r.stdout).toBe(tricky.map((a) => `${a}\n`).join(""));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.string({ unit: "grapheme-ascii" }), { maxLength: 5 }), async (args) => {
        const printable = args.map((a) => a.replace(/[\0\n]/g, ""));
        const out = await host.exec(["printf", "%s\\n", "start", ...printable]);
        expect(out.stdout).toBe(["start", ...printable].map((a) => `${a}\n`).join(""));
      }),
      { numRuns: 40 },
    );
  });

  it("feeds input on stdin and passes environment variables", async () => {
    const input = "hello\nwörld\n";
    expect((await host.exec("cat", { input })).stdout).toBe(input);
    expect((await host.exec("wc -c", { input: Buffer.alloc(100_000, 1) })).stdout.trim()).toBe("100000");
    const env = await host.exec('printf "%s|%s" "$GREETING" "$OTHER"', {
      env: { GREETING: "hi 'there'", OTHER: "$x" },
    });
    expect(env.stdout).toBe("hi 'there'|$x");
    await expect(host.exec("true", { env: { "BAD-NAME": "x" } })).rejects.toThrow(/BAD-NAME/);
  });

  it("execOrThrow throws RemoteCommandError naming host, command, code and stderr", async () => {
    const error = await host.execOrThrow(["sh", "-c", "echo broken >&2; exit 4"]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteCommandError);
    const e = error as RemoteCommandError;
    expect(e.code).toBe(4);
    expect(e.host).toBe("loop");
    expect(e.message).toContain("loop");
    expect(e.message).toContain("exit code 4");
    expect(e.message).toContain("broken");
    expect(e.command).toContain("sh -c");
  });

  it("streams output of a long-running command while it runs", async () => {
    const chunks: string[] = [];
    let finished = false;
    let chunksBeforeEnd = 0;
    const proc = await host.execStream("for i in 1 2 3; do echo line$i; sleep 0.3; done; echo oops >&2", {
      onStdout: (chunk) => {
        chunks.push(chunk.toString());
        if (!finished) chunksBeforeEnd++;
      },
    });
    const errors: string[] = [];
    proc.channel.stderr.on("data", (d: Buffer) => errors.push(d.toString()));
    expect(await proc.processGroup).toBeGreaterThan(1);
    const result = await proc.done;
    finished = true;
    expect(chunks.join("")).toBe("line1\nline2\nline3\n");
    expect(chunksBeforeEnd).toBeGreaterThanOrEqual(3); // three separate chunks, 0.3 s apart
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(""); // not collected unless asked
    expect(errors.join("")).toBe("oops\n");
    expect(proc.write("after the end\n")).toBe(false); // ignored, no stream error
  });

  it("writes to a streamed process's stdin until endInput()", async () => {
    const proc = await host.execStream("cat; echo done", { collect: true });
    expect(proc.write("one\n")).toBe(true);
    proc.write(Buffer.from("two\n"));
    proc.endInput();
    expect(proc.write("three\n")).toBe(false);
    expect((await proc.done).stdout).toBe("one\ntwo\ndone\n");
  });

  it("kills a streamed process group on kill()", async () => {
    const proc = await host.execStream("sleep 60 & echo child $!; wait", { collect: true });
    const childPid = await new Promise<number>((resolve) =>
      proc.channel.on("data", (d: Buffer) => {
        const m = /child (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      }),
    );
    expect(await processAlive(childPid)).toBe(true);
    await proc.kill();
    await proc.done;
    expect(await waitUntil(async () => !(await processAlive(childPid)), 3000)).toBe(true);
  });

  it("uploads a file over SFTP with its mode", async () => {
    const local = join(lab.dir, "payload.bin");
    const remote = join(lab.dir, "uploaded.bin");
    const payload = randomBytes(300_000);
    await writeFile(local, payload);
    await host.upload(local, remote, 0o640);
    const sum = await host.execOrThrow(["sha256sum", remote]);
    expect(sum.stdout.split(" ")[0]).toBe(createHash("sha256").update(payload).digest("hex"));
    expect((await host.execOrThrow(["stat", "-c", "%a", remote])).stdout.trim()).toBe("640");
    const missing = await host.upload(local, "/nonexistent-dir/x.bin").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(RemoteError);
    expect(String(missing)).toMatch(/upload of .*payload\.bin to loop:\/nonexistent-dir\/x\.bin failed/);
  });

  it("times out a command with RemoteTimeoutError and kills it", async () => {
    const pidFile = join(lab.dir, "sleeper.pid");
    const started = Date.now();
    const error = await host
      .exec(`sh -c 'echo $$ > ${pidFile}; exec sleep 60'`, { timeoutMs: 400 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteTimeoutError);
    expect((error as RemoteTimeoutError).message).toMatch(/on loop timed out after 400 ms/);
    expect(Date.now() - started).toBeLessThan(10_000);
    const pid = Number((await readFile(pidFile, "utf8")).trim());
    expect(pid).toBeGreaterThan(1);
    expect(await waitUntil(async () => !(await processAlive(pid)), 3000)).toBe(true);
  });

  it("kills timed-out commands even when they hold every channel slot", async () => {
    const narrow = new RemoteHost({
      name: "narrow",
      target: { kind: "tcp", host: "127.0.0.1", port: lab.sshd.port },
      privateKey: lab.keys.client.privateKey,
      maxChannels: 2,
    });
    try {
      const pidFiles = [0, 1].map((i) => join(lab.dir, `narrow-${i}.pid`));
      const errors = await Promise.all(
        pidFiles.map((f) =>
          narrow.exec(`sh -c 'echo $$ > ${f}; exec sleep 60'`, { timeoutMs: 500 }).catch((e: unknown) => e),
        ),
      );
      for (const e of errors) expect(e).toBeInstanceOf(RemoteTimeoutError);
      for (const f of pidFiles) {
        const pid = Number((await readFile(f, "utf8")).trim());
        expect(await waitUntil(async () => !(await processAlive(pid)), 3000)).toBe(true);
      }
      expect((await narrow.execOrThrow("echo free")).stdout).toBe("free\n");
    } finally {
      narrow.close();
    }
  });

  it("reuses one SSH connection for many concurrent execs (more than sshd's MaxSessions)", async () => {
    const fresh = lab.host({ name: "reuse" });
    const results = await Promise.all(
      Array.from({ length: 150 }, (_, i) => fresh.execOrThrow(`echo "$SSH_CONNECTION" ${i}`)),
    );
    const sourcePorts = new Set(results.map((r) => r.stdout.split(" ")[1]));
    expect(sourcePorts.size).toBe(1);
    results.forEach((r, i) => {
      expect(r.stdout.trim().endsWith(` ${i}`)).toBe(true);
    });
    expect(fresh.connectionsOpened).toBe(1);
    // sshd agrees: exactly one login from that source port.
    const log = await readFile(lab.sshd.logPath, "utf8");
    const port = [...sourcePorts][0];
    expect(
      log.match(new RegExp(`Accepted publickey for root from 127\\.0\\.0\\.1 port ${port} `, "g")),
    ).toHaveLength(1);
  });

  it("reopens a dropped connection on the next call", async () => {
    const fresh = lab.host({ name: "drop" });
    const before = (await fresh.execOrThrow('echo "$SSH_CONNECTION"')).stdout.split(" ")[1];
    // $PPID of the session shell is sshd's process for this connection: killing it drops it.
    const dropped = await fresh.exec("kill -9 $PPID; sleep 5").catch((e: unknown) => e);
    expect(dropped).toBeInstanceOf(HostUnreachableError);
    const after = (await fresh.execOrThrow('echo "$SSH_CONNECTION"')).stdout.split(" ")[1];
    expect(after).not.toBe(before);
    expect(fresh.connectionsOpened).toBe(2);
  });

  it("fails with AuthFailedError for a key sshd does not know, and for a wrong pinned host key", async () => {
    const stranger = lab.host({ name: "stranger", privateKey: generateKeyPair().privateKey });
    const error = await stranger.exec("true").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthFailedError);
    expect(String(error)).toMatch(
      /authentication to stranger failed: 127\.0\.0\.1:\d+ did not accept the key for user root/,
    );

    const impostor = lab.host({ name: "impostor", hostPublicKey: generateKeyPair().publicKey });
    const mismatch = await impostor.exec("true").catch((e: unknown) => e);
    expect(mismatch).toBeInstanceOf(AuthFailedError);
    expect(String(mismatch)).toMatch(/host key of 127\.0\.0\.1:\d+ does not match the pinned host key/);
  });

  it("fails with HostUnreachableError for a closed port", async () => {
    const port = await freeLocalPort();
    const closed = new RemoteHost({
      name: "nobody",
      target: { kind: "tcp", host: "127.0.0.1", port },
      privateKey: lab.keys.client.privateKey,
    });
    const error = await closed.exec("true").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostUnreachableError);
    expect(String(error)).toContain(`host nobody unreachable: ECONNREFUSED connecting to 127.0.0.1:${port}`);
    // A failed connect is not cached: the next call tries again (and fails again).
    await expect(closed.exec("true")).rejects.toBeInstanceOf(HostUnreachableError);
    closed.close();
  });

  it("sends commands verbatim to a raw (non-POSIX) shell", async () => {
    const raw = new RemoteHost({
      name: "raw",
      target: { kind: "tcp", host: "127.0.0.1", port: lab.sshd.port },
      privateKey: lab.keys.client.privateKey,
      shell: "raw",
    });
    try {
      const r = await raw.execOrThrow("echo first; echo second");
      expect(r.stdout).toBe("first\nsecond\n"); // no pid line was added, none was eaten
      await expect(raw.exec("true", { env: { A: "b" } })).rejects.toThrow(/shell: raw/);
    } finally {
      raw.close();
    }
  });

  it("rejects calls after close()", async () => {
    const fresh = lab.host({ name: "closing" });
    await fresh.execOrThrow("true");
    fresh.close();
    await expect(fresh.exec("true")).rejects.toThrow(/connection to closing was closed/);
  });
});

describe("RemoteHost through a namespace stream", () => {
  it("reaches sshd inside a network namespace with no interface but lo, then cleans up", async () => {
    const ns = await namespaceWithSshd("r1");
    try {
      const remote = ns.host();
      const links = await remote.execOrThrow(["ip", "-o", "link", "show"]);
      expect(links.stdout.trim().split("\n")).toHaveLength(1);
      expect(links.stdout).toMatch(/^1: lo:/);
      const inside = await remote.execOrThrow(["readlink", "/proc/self/ns/net"]);
      expect(inside.stdout.trim()).toMatch(/^net:\[\d+\]$/);
      expect(inside.stdout.trim()).not.toBe(await readlink("/proc/self/ns/net"));
      // Reuse through the stream too, and a connection from 127.0.0.1 inside the namespace.
      const conns = await Promise.all(
        Array.from({ length: 20 }, () => remote.execOrThrow('echo "$SSH_CONNECTION"')),
      );
      expect(new Set(conns.map((c) => c.stdout)).size).toBe(1);
      expect(conns[0]?.stdout).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 22\n$/);
      expect(remote.connectionsOpened).toBe(1);
      const local = join(ns.dir, "up.txt");
      await writeFile(local, "through the namespace\n");
      await remote.upload(local, join(ns.dir, "down.txt"));
      expect((await remote.execOrThrow(["cat", join(ns.dir, "down.txt")])).stdout).toBe(
        "through the namespace\n",
      );
    } finally {
      await ns.dispose();
    }
    expect(await namespaceExists(ns.namespace)).toBe(false);
    expect(await processAlive(ns.sshd.pid)).toBe(false);
  });

  it("names the namespace when it does not exist", async () => {
    const ghost = new RemoteHost({
      name: "ghost",
      target: { kind: "namespace", namespace: "td00000-nonexistent" },
      privateKey: generateKeyPair().privateKey,
    });
    const error = await ghost.exec("true").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostUnreachableError);
    expect(String(error)).toMatch(
      /host ghost unreachable: via namespace td00000-nonexistent\/127\.0\.0\.1:22: .*td00000-nonexistent/,
    );
    ghost.close();
  });
});
