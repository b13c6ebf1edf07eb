import { mkdtemp, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../lib/lab/command.ts";
import { withLab } from "../lib/lab/index.ts";
import {
  AgentCallError,
  AgentCallTimeoutError,
  AgentCrashedError,
  AgentStoppedError,
  agentBundlePath,
  launchAgent,
  RemoteError,
  type RemoteHost,
  repoRoot,
} from "../lib/remote/index.ts";
import { parseTopologyText } from "../lib/topology/index.ts";
import {
  type LoopbackSshd,
  loopbackSshd,
  namespaceWithSshd,
  processAlive,
  waitUntil,
} from "./remote-fixture.ts";

let lab: LoopbackSshd;
let host: RemoteHost;

beforeAll(async () => {
  lab = await loopbackSshd();
  host = lab.host({ name: "h1" });
});
afterAll(async () => {
  await lab?.dispose();
});

const gone = (pid: number) => waitUntil(async () => !(await processAlive(pid)), 5000);

describe("agent launcher and runtime", () => {
  it("finds the checkout and the echo agent's bundle, from source and from a bundle", async () => {
    expect(agentBundlePath("echo")).toBe(`${repoRoot()}/dist/agents/echo.mjs`);
    // The launcher may run bundled (dist/cli.mjs): bundle repo-root.ts somewhere deeper
    // inside the checkout, and once outside it (where only TANDEM_ROOT can help).
    const entry = join(lab.dir, "entry.ts");
    await writeFile(
      entry,
      `import { repoRoot } from ${JSON.stringify(join(repoRoot(), "lib/remote/repo-root.ts"))};\n` +
        "try { console.log(repoRoot()); } catch (e) { console.log(String(e)); }\n",
    );
    const inside = await mkdtemp(join(repoRoot(), "dist", ".repo-root-test-"));
    try {
      await build({
        entryPoints: [entry],
        bundle: true,
        platform: "node",
        format: "esm",
        outfile: join(inside, "a/b.mjs"),
      });
      await build({
        entryPoints: [entry],
        bundle: true,
        platform: "node",
        format: "esm",
        outfile: join(lab.dir, "out.mjs"),
      });
      expect((await run([process.execPath, join(inside, "a/b.mjs")])).stdout.trim()).toBe(repoRoot());
      const outside = await run(["env", "-u", "TANDEM_ROOT", process.execPath, join(lab.dir, "out.mjs")]);
      expect(outside.stdout).toMatch(/cannot find the Tandem checkout above .*out\.mjs \(set TANDEM_ROOT\)/);
      const overridden = await run([
        "env",
        "TANDEM_ROOT=/opt/tandem",
        process.execPath,
        join(lab.dir, "out.mjs"),
      ]);
      expect(overridden.stdout.trim()).toBe("/opt/tandem");
    } finally {
      await rm(inside, { recursive: true, force: true });
    }
  });

  it("round-trips JSON-RPC calls, passes args, and reports method errors", async () => {
    const agent = await launchAgent(host, "echo", { args: { greeting: "hello 'quoted' world" } });
    try {
      expect(agent.pid).toBeGreaterThan(1);
      expect(await processAlive(agent.pid!)).toBe(true);
      const payload = { text: "ünïcode ✓", list: [1, 2, { deep: null }], big: "x".repeat(100_000) };
      expect(await agent.call("echo", payload)).toEqual(payload);
      expect(await agent.call("add", { a: 2, b: 40 })).toBe(42);
      expect(await agent.call("args")).toEqual({ greeting: "hello 'quoted' world" });
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => agent.call<number>("add", { a: i, b: 1 })),
      );
      expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));

      const failed = await agent.call("add", { a: "two" }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(AgentCallError);
      expect(String(failed)).toMatch(/echo\.add on h1 failed: add needs numbers a and b/);
      const unknown = await agent.call("nope").catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(AgentCallError);
      expect((unknown as AgentCallError).code).toBe(-32601);

      const notJson = await agent.call("bigint").catch((e: unknown) => e);
      expect(notJson).toBeInstanceOf(AgentCallError);
      expect(String(notJson)).toMatch(/bigint returned a result that is not JSON/);

      const slow = await agent.call("sleep", { ms: 2000 }, { timeoutMs: 100 }).catch((e: unknown) => e);
      expect(slow).toBeInstanceOf(AgentCallTimeoutError);
      expect(await agent.call("echo", "still alive")).toBe("still alive");
    } finally {
      await agent.stop();
    }
  });

  it("delivers notifications in order before the call's answer", async () => {
    const agent = await launchAgent(host, "echo");
    try {
      const seen: Array<[string, unknown]> = [];
      agent.on("notification", (method, params) => seen.push([method, params]));
      const answer = await agent.call("notifyMe", { count: 50 });
      expect(answer).toEqual({ sent: 50 });
      expect(seen).toHaveLength(50);
      expect(seen.map(([, p]) => (p as { seq: number }).seq)).toEqual(
        Array.from({ length: 50 }, (_, i) => i),
      );
      expect(seen.every(([m]) => m === "tick")).toBe(true);
      const waited = agent.waitForNotification<{ seq: number }>("custom", {
        accept: (p) => p.seq === 2,
        timeoutMs: 5000,
      });
      await agent.call("notifyMe", { count: 3, method: "custom" });
      expect(await waited).toEqual({ seq: 2 });
    } finally {
      await agent.stop();
    }
  });

  it("collects the agent's stderr (and console.log) as timestamped log lines, never as protocol", async () => {
    const agent = await launchAgent(host, "echo");
    try {
      const before = Date.now();
      await agent.call("logLines", { lines: ["first line", "second line"] });
      // The log travels on stderr, separately from the answer on stdout: wait for it.
      expect(await waitUntil(async () => agent.logs.some((l) => l.line === "second line"), 3000)).toBe(true);
      const line = agent.logs.find((l) => l.line === "first line");
      expect(line?.host).toBe("h1");
      expect(line?.agent).toBe("echo");
      expect(line!.time.getTime()).toBeGreaterThanOrEqual(before - 5);
      expect(agent.logText()).toMatch(/^\S+Z h1\/echo: echo: agent started \(pid \d+\)$/m);
      expect(agent.logText()).toMatch(/h1\/echo: second line$/m);
      expect(agent.logs.some((l) => l.line.includes("not JSON-RPC"))).toBe(false);
    } finally {
      await agent.stop();
    }
  });

  it("rejects pending and later calls with AgentCrashedError naming host, agent, exit code and last log lines", async () => {
    const agent = await launchAgent(host, "echo", { hostLabel: "router-a" });
    const pid = agent.pid!;
    const pending = agent.call("sleep", { ms: 10_000 });
    const crash = agent.call("crash", { code: 3 });
    const [pendingError, crashError] = await Promise.all([
      pending.catch((e: unknown) => e),
      crash.catch((e: unknown) => e),
    ]);
    for (const error of [pendingError, crashError]) {
      expect(error).toBeInstanceOf(AgentCrashedError);
      const e = error as AgentCrashedError;
      expect(e.code).toBe(3);
      expect(e.host).toBe("router-a");
      expect(e.agent).toBe("echo");
      expect(e.lastLogLines).toContain("echo agent: crashing on request");
      expect(e.message).toMatch(/agent echo on router-a died \(exit code 3\); last log lines:/);
    }
    expect(await agent.exited).toEqual({ code: 3, signal: null });
    await expect(agent.call("echo", 1)).rejects.toBeInstanceOf(AgentCrashedError);
    expect(agent.running).toBe(false);
    expect(await gone(pid)).toBe(true);
  });

  it("stop() shuts the agent down and leaves no process behind", async () => {
    const agent = await launchAgent(host, "echo");
    const pid = agent.pid!;
    const exit = await agent.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(agent.logs.some((l) => l.line === "echo agent: shutdown")).toBe(true);
    expect(await gone(pid)).toBe(true);
    await expect(agent.call("echo", 1)).rejects.toBeInstanceOf(AgentStoppedError);
  });

  it("stop() force-kills an agent that does not answer shutdown", async () => {
    const agent = await launchAgent(host, "echo");
    const pid = agent.pid!;
    void agent.call("block", { ms: 30_000 }).catch(() => undefined);
    const started = Date.now();
    const exit = await agent.stop({ graceMs: 300 });
    expect(exit.code).toBeNull();
    expect(exit.signal).toBe("SIGKILL");
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await gone(pid)).toBe(true);
    expect(agent.logText()).toMatch(/did not exit within 300 ms of shutdown; killing it/);
  });

  it("an agent exits when its controller's connection goes away", async () => {
    const controller = lab.host({ name: "leaving" });
    const agent = await launchAgent(controller, "echo");
    const pid = agent.pid!;
    controller.close();
    const error = await agent.call("echo", 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(await gone(pid)).toBe(true);
  });

  it("uploads the bundle over SFTP for hosts without the checkout", async () => {
    const agent = await launchAgent(host, "echo", { upload: true, node: process.execPath });
    try {
      const cmdline = (await readFile(`/proc/${agent.pid}/cmdline`, "utf8")).split("\0");
      expect(cmdline[1]).toBe("/tmp/tandem-agents/echo.mjs");
      expect(await agent.call("add", { a: 1, b: 2 })).toBe(3);
    } finally {
      await agent.stop();
    }
  });

  it("reports a missing bundle and an agent that dies at startup clearly", async () => {
    await expect(launchAgent(host, "no-such-agent")).rejects.toThrow(
      /agent bundle .*no-such-agent\.mjs not found/,
    );
    const error = await launchAgent(host, "echo", { node: "/nonexistent/node" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentCrashedError);
    expect((error as AgentCrashedError).code).toBe(127);
    expect(String(error)).toMatch(/\/nonexistent\/node: (No such file or directory|not found)/);
  });

  it("runs an agent inside a network namespace, reached through the namespace stream", async () => {
    const ns = await namespaceWithSshd("agent");
    try {
      const remote = ns.host();
      const agent = await launchAgent(remote, "echo");
      const pid = agent.pid!;
      const insideNetns = (await remote.execOrThrow(["readlink", "/proc/self/ns/net"])).stdout.trim();
      expect(await readlink(`/proc/${pid}/ns/net`)).toBe(insideNetns);
      expect(insideNetns).not.toBe(await readlink("/proc/self/ns/net"));
      expect(await agent.call("echo", "from the namespace")).toBe("from the namespace");
      await agent.stop();
      expect(await gone(pid)).toBe(true);
    } finally {
      await ns.dispose();
    }
  });

  it("runs agents on the hosts of a virtual lab (withLab) and they talk over the lab's links", async () => {
    const topology = parseTopologyText(
      [
        "lab: agents",
        "segments:",
        "  lan: { hub: true, subnet: 198.18.60.0/24 }",
        "hosts:",
        "  a: { interfaces: { eth0: { segment: lan, addresses: [198.18.60.1/24] } } }",
        "  b: { interfaces: { eth0: { segment: lan, addresses: [198.18.60.2/24] } } }",
        "",
      ].join("\n"),
      "<agent test lab>",
    );
    const pids: number[] = [];
    await withLab(topology, async (virtual) => {
      const agents = await Promise.all(
        virtual.hostNames.map((h) => launchAgent(virtual.host(h).remote, "echo", { args: { greeting: h } })),
      );
      for (const [i, h] of virtual.hostNames.entries()) {
        const agent = agents[i]!;
        pids.push(agent.pid!);
        expect(agent.host).toBe(h);
        expect(await agent.call("args")).toEqual({ greeting: h });
        const netns = (
          await virtual.host(h).remote.execOrThrow(["readlink", "/proc/self/ns/net"])
        ).stdout.trim();
        expect(await readlink(`/proc/${agent.pid}/ns/net`)).toBe(netns);
      }
      const ping = await virtual.host("a").exec(["ping", "-c", "1", "-W", "2", "198.18.60.2"]);
      expect(ping.code).toBe(0);
      await Promise.all(agents.map((a) => a.stop()));
    });
    for (const pid of pids) expect(await gone(pid)).toBe(true);
  });
});
