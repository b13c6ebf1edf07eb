import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listNamespaces, namespacesOf, readLabRecords, run, upLab, withLab } from "../lib/lab/index.ts";
import { startSshd, writeLabKeys } from "../lib/remote/index.ts";
import { ConfigError, parseTopologyText } from "../lib/topology/index.ts";

const FIG7 = "labs/vrls-fig7.yaml";

async function processesIn(prefix: string): Promise<number> {
  let n = 0;
  for (const ns of await namespacesOf(prefix)) {
    const { stdout } = await run(["ip", "netns", "pids", ns], { allowFailure: true });
    n += stdout.split(/\s+/).filter(Boolean).length;
  }
  return n;
}

/** Processes anywhere on the machine whose command line names the prefix (sshd -f /run/tandem/<prefix>/...). */
async function processesNaming(prefix: string): Promise<string[]> {
  const { stdout } = await run(["ps", "-eo", "pid,args"]);
  return stdout.split("\n").filter((l) => l.includes(prefix));
}

describe("virtual lab", () => {
  it("builds the Fig. 7 lab: SSH into every host, ping across the hub, a hub floods unicast, then leaves nothing", async () => {
    let prefix = "";
    await withLab(FIG7, async (lab) => {
      prefix = lab.prefix;
      expect((await namespacesOf(prefix)).length).toBe(lab.hostNames.length + 1); // + the switch namespace
      const conn = await lab.host("es1").exec(["sh", "-c", "echo $SSH_CONNECTION"]);
      expect(conn.code).toBe(0);
      expect(conn.stdout.trim()).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 22$/);
      // es3 listens on the hub while es1 pings es2: a hub delivers the unicast frames to es3 too.
      const sniff = lab
        .host("es3")
        .exec(["timeout", "5", "tcpdump", "-c", "2", "-n", "-i", "eth0", "icmp and host 198.18.1.12"]);
      await new Promise((r) => setTimeout(r, 700));
      const ping = await lab.host("es1").exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.1.12"]);
      expect(ping.code).toBe(0);
      expect(ping.stdout).toMatch(/3 received/);
      const seen = await sniff;
      expect(seen.stdout).toMatch(/198\.18\.1\.11 > 198\.18\.1\.12: ICMP echo request/);
      // Routed path: an end system on subnet 2 reaches the far-side server? Not yet (no VRLS router), but router C does:
      const rc = await lab.host("rc").exec(["ping", "-c", "1", "-W", "1", "198.18.2.11"]);
      expect(rc.code).toBe(0);
    });
    expect(await namespacesOf(prefix)).toEqual([]);
    expect(await processesNaming(prefix)).toEqual([]);
  });

  it("passes exit codes and stderr through SSH, and runs agents on a host", async () => {
    await withLab(FIG7, async (lab) => {
      const r = await lab.host("server").exec(["sh", "-c", "echo out; echo oops >&2; exit 3"]);
      expect(r).toMatchObject({ code: 3, stdout: "out\n", stderr: "oops\n" });
      const agent = await lab.host("server").launchAgent("echo");
      try {
        expect(await agent.call("echo", { hello: "fig7" })).toEqual({ hello: "fig7" });
      } finally {
        await agent.stop();
      }
    });
  });

  it("tears down after a thrown error", async () => {
    let prefix = "";
    await expect(
      withLab(FIG7, async (lab) => {
        prefix = lab.prefix;
        expect(await processesIn(prefix)).toBeGreaterThan(0);
        throw new Error("boom in the test body");
      }),
    ).rejects.toThrow("boom in the test body");
    expect(prefix).not.toBe("");
    expect(await namespacesOf(prefix)).toEqual([]);
    expect(await processesNaming(prefix)).toEqual([]);
  });

  it("creates nothing for a bad topology", async () => {
    const before = await listNamespaces();
    const bad = parseTopologyText.bind(
      null,
      "lab: x\nhosts:\n  a: { interfaces: { eth0: { segment: nope } } }\n",
      "bad.yaml",
    );
    expect(bad).toThrow(ConfigError);
    await expect(upLab("test/fixtures/bad-topology.yaml")).rejects.toThrow(ConfigError);
    expect((await listNamespaces()).filter((n) => !before.includes(n) && n.startsWith("td"))).toEqual([]);
  });
});

describe("the tandem CLI tears a lab down on SIGINT", () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  function startCli(args: string[]): {
    child: ChildProcess;
    stderr: () => string;
    exited: Promise<number | null>;
  } {
    const child = spawn(process.execPath, ["bin/tandem.js", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    return { child, stderr: () => err, exited };
  }

  async function until(cond: () => boolean, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error("timed out waiting");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("while holding a running lab", async () => {
    const name = `sig${process.pid}`;
    const cli = startCli(["lab", "up", FIG7, "--name", name, "--hold"]);
    await until(() => cli.stderr().includes("ready;"));
    const prefix = /\((td[a-z0-9]{5})\)/.exec(cli.stderr())?.[1] ?? "";
    expect((await namespacesOf(prefix)).length).toBeGreaterThan(0);
    cli.child.kill("SIGINT");
    expect(await cli.exited).toBe(130);
    expect(await namespacesOf(prefix)).toEqual([]);
    expect(await processesNaming(prefix)).toEqual([]);
  });

  it("in the middle of bring-up", async () => {
    const before = new Set(await listNamespaces());
    const cli = startCli(["lab", "up", FIG7, "--name", `sig2${process.pid}`]);
    await until(() => cli.stderr().includes("namespaces"));
    cli.child.kill("SIGINT");
    const code = await cli.exited;
    // Interrupted mid-way (130), or bring-up had just finished (0) and then `lab down` is our job.
    const fresh = (await listNamespaces()).filter((n) => !before.has(n) && n.startsWith("td"));
    if (code === 0) {
      const prefix = /\((td[a-z0-9]{5})\)/.exec(cli.stderr())?.[1] ?? "";
      await run([process.execPath, "bin/tandem.js", "lab", "down", prefix]);
      expect(await namespacesOf(prefix)).toEqual([]);
    } else {
      expect(code).toBe(130);
      expect(fresh.filter((n) => cli.stderr().includes(n.slice(0, 7)))).toEqual([]);
    }
  });
});

describe("physical lab backend (inventory)", () => {
  it("reaches inventory hosts over TCP, creates no namespace, leaves no record", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tandem-inv-"));
    const keys = await writeLabKeys(join(dir, "keys"));
    const daemons = await Promise.all(
      ["a", "b"].map((h) =>
        startSshd({
          dir: join(dir, h),
          listenAddress: "127.0.0.1",
          port: 0,
          hostKeyPath: keys.hostKeyPath,
          authorizedKeysPath: keys.authorizedKeysPath,
        }),
      ),
    );
    try {
      const file = join(dir, "inventory.yaml");
      await writeFile(
        file,
        [
          "lab: physical",
          "hosts:",
          "  a: { role: router }",
          "  b: { role: router }",
          "inventory:",
          ...daemons.map(
            (d, i) =>
              `  ${["a", "b"][i]}: { address: 127.0.0.1, port: ${d.port}, user: root, key: keys/client_ed25519 }`,
          ),
        ].join("\n"),
      );
      const lab = await upLab(file);
      try {
        expect(lab.backend).toBe("physical");
        const a = await lab.host("a").exec(["sh", "-c", "echo $SSH_CONNECTION"]);
        const b = await lab.host("b").exec(["sh", "-c", "echo $SSH_CONNECTION; exit 4"]);
        expect(a.stdout.trim().split(" ")[3]).toBe(String(daemons[0]?.port));
        expect(b.code).toBe(4);
        expect(b.stdout.trim().split(" ")[3]).toBe(String(daemons[1]?.port));
        expect(await namespacesOf(lab.prefix)).toEqual([]);
      } finally {
        await lab.down();
      }
      // Taking a physical lab down closes sessions but never stops the hosts themselves.
      const again = await upLab(file);
      expect((await again.host("a").exec(["true"])).code).toBe(0);
      await again.down();
      expect(
        (await readLabRecords()).filter((r) => r.prefix === lab.prefix || r.prefix === again.prefix),
      ).toEqual([]);
    } finally {
      await Promise.all(daemons.map((d) => d.stop()));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("names the missing inventory entries", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tandem-inv-"));
    const file = join(dir, "inv.yaml");
    await writeFile(
      file,
      "lab: p\nhosts:\n  a: {}\n  b: {}\ninventory:\n  a: { address: 192.0.2.1, key: k }\n",
    );
    await writeFile(join(dir, "k"), ""); // the loader checks that the key file exists
    await expect(upLab(file)).rejects.toThrow(/missing: b/);
    await rm(dir, { recursive: true, force: true });
  });
});
