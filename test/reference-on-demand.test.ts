import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { holderFile } from "../lib/cli/reference-on-demand.ts";
import { findLabRecord, namespacesOf, run } from "../lib/lab/index.ts";

/**
 * `tandem vrls|natlb up/show/down LAB` on a lab brought up by `tandem lab up`, all through
 * the CLI as a user types it (issue 17, item 7): up returns once the roles are ready,
 * show prints the live tables, down stops every agent it started (the lab stays), and a
 * lab torn down underneath ends the holder by itself.
 */
const CLI = join(import.meta.dirname, "..", "bin", "tandem.js");

function tandem(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Agent processes (node .../dist/agents/NAME.mjs) running in the lab's namespaces, by agent name. */
async function agentsIn(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for (const ns of await namespacesOf(prefix)) {
    const { stdout } = await run(["ip", "netns", "pids", ns], { allowFailure: true });
    for (const pid of stdout.split(/\s+/).filter(Boolean)) {
      const cmd = await run(["cat", `/proc/${pid}/cmdline`], { allowFailure: true });
      const m = /dist\/agents\/([a-z-]+)\.mjs/.exec(cmd.stdout);
      if (m?.[1]) names.push(m[1]);
    }
  }
  return names.sort();
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const labs: string[] = [];
afterAll(async () => {
  for (const l of labs) await tandem("lab", "down", l);
});

describe("tandem vrls up/show/down", () => {
  test("Fig. 7: master elected, es1-es4 allocated, the sharing table shown, all agents gone after down", async () => {
    const name = `i17v${process.pid}`;
    expect((await tandem("lab", "up", "labs/vrls-fig7.yaml", "--name", name)).code).toBe(0);
    labs.push(name);
    const { prefix } = await findLabRecord(name);

    const up = await tandem("vrls", "up", name);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/vr1: master ra, 4 end systems allocated/);
    const holder = JSON.parse(readFileSync(holderFile(prefix, "vrls"), "utf8")) as {
      pid: number;
      state: string;
    };
    expect(holder.state).toBe("ready");
    expect(alive(holder.pid)).toBe(true);
    expect(await agentsIn(prefix)).toEqual([
      ...Array(6).fill("vrls-info-responder"),
      "vrls-router",
      "vrls-router",
    ]);

    const again = await tandem("vrls", "up", name);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`the vrls reference is already up on ${name} (pid ${holder.pid})`);

    const show = await tandem("vrls", "show", name);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain("== vr1 on ra: master, master 198.18.1.2");
    expect(show.stdout).toContain("== vr1 on rb: backup, master 198.18.1.2");
    // each member's sharing table: the four end systems, two forwarded by each member
    for (const es of ["198.18.1.11", "198.18.1.12", "198.18.1.13", "198.18.1.14"])
      expect(show.stdout.split(es).length - 1).toBeGreaterThanOrEqual(2);
    expect(show.stdout.match(/'forward'/g)?.length).toBe(4);

    const down = await tandem("vrls", "down", name);
    expect(down.code, down.stderr).toBe(0);
    expect(alive(holder.pid)).toBe(false);
    expect(existsSync(holderFile(prefix, "vrls"))).toBe(false);
    expect(await agentsIn(prefix)).toEqual([]);
    const notUp = await tandem("vrls", "down", name);
    expect(notUp.code).toBe(1);
    expect(notUp.stderr).toContain(`the vrls reference is not up on ${name}`);
  });
});

describe("tandem natlb up/show/down", () => {
  test("Fig. 3: every VIP owned, the mode tables shown; the holder ends when the lab goes down", async () => {
    const name = `i17n${process.pid}`;
    expect((await tandem("lab", "up", "labs/natlb-fig3.yaml", "--name", name)).code).toBe(0);
    labs.push(name);
    const { prefix } = await findLabRecord(name);

    const up = await tandem("natlb", "up", name);
    expect(up.code, up.stderr).toBe(0);
    const owned = [...up.stdout.matchAll(/VIP (\S+) owned by (\S+)/g)].map((m) => [m[1], m[2]]);
    expect(owned.length).toBeGreaterThan(0);
    const agents = await agentsIn(prefix);
    expect(agents).toContain("natlb-controller");
    expect(agents).toContain("natlb-balancer");

    const show = await tandem("natlb", "show", name);
    expect(show.code, show.stderr).toBe(0);
    for (const [vip, balancer] of owned) {
      // the owner's mode table lists the VIP in normal mode
      const section = show.stdout.split(/^balancer /m).find((s) => s.startsWith(`${balancer}\n`)) ?? "";
      expect(section, show.stdout).toMatch(new RegExp(`${vip!.replace(/\./g, "\\.")}\\s+normal`));
    }

    const holder = JSON.parse(readFileSync(holderFile(prefix, "natlb"), "utf8")) as { pid: number };
    expect((await tandem("natlb", "down", name)).code).toBe(0);
    expect(alive(holder.pid)).toBe(false);
    expect(await agentsIn(prefix)).toEqual([]);

    // up again, then tear the lab down underneath: the holder notices and exits.
    expect((await tandem("natlb", "up", name)).code).toBe(0);
    const second = JSON.parse(readFileSync(holderFile(prefix, "natlb"), "utf8")) as { pid: number };
    expect((await tandem("lab", "down", name)).code).toBe(0);
    labs.pop();
    const until = Date.now() + 15_000;
    while (alive(second.pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(alive(second.pid), "holder still running 15 s after lab down").toBe(false);
  });
});
