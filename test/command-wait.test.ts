import { describe, expect, it } from "vitest";
import { localHost } from "../lib/remote/command.ts";
import { CommandError, CommandTimeoutError } from "../lib/remote/errors.ts";
import { heldWithin, WaitTimeoutError, waitUntil } from "../lib/remote/wait.ts";

// The one command API on this machine (real processes) and the one wait.
describe("CommandHost (local)", () => {
  const host = localHost();

  it("exec returns a non-zero exit as a result, with both outputs", async () => {
    const r = await host.exec(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r).toEqual({ code: 3, signal: null, stdout: "out\n", stderr: "err\n" });
  });

  it("execOrThrow throws CommandError naming host, command, code and stderr", async () => {
    const e = await host.execOrThrow(["sh", "-c", "echo broken >&2; exit 4"]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandError);
    const err = e as CommandError;
    expect([err.host, err.code, err.stderr]).toEqual(["localhost", 4, "broken\n"]);
    expect(err.message).toContain(
      "command on localhost failed (exit code 4): sh -c 'echo broken >&2; exit 4'",
    );
  });

  it("a string is shell syntax; input goes to stdin; env reaches the command", async () => {
    const r = await host.execOrThrow('read line; echo "$line $GREETING"', {
      input: "hello\n",
      env: { GREETING: "world" },
    });
    expect(r.stdout).toBe("hello world\n");
    const argv = await host.execOrThrow(["sh", "-c", 'echo "$GREETING"'], { env: { GREETING: "argv" } });
    expect(argv.stdout).toBe("argv\n");
  });

  it("a killed command reports its signal and a null code; a timeout throws naming the command", async () => {
    const r = await host.exec(["sh", "-c", "kill -TERM $$"]);
    expect([r.code, r.signal]).toEqual([null, "SIGTERM"]);
    const e = await host.exec(["sleep", "5"], { timeoutMs: 100 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandTimeoutError);
    expect((e as Error).message).toBe("command on localhost timed out after 100 ms (killed): sleep 5");
  });

  it("a program that does not exist rejects (not an exit code)", async () => {
    await expect(host.exec(["/nonexistent/tandem-x"])).rejects.toThrow(/cannot run \/nonexistent\/tandem-x/);
  });
});

describe("waitUntil", () => {
  it("returns the condition's first non-false value (0 included)", async () => {
    let n = 3;
    expect(
      await waitUntil(() => (--n === 0 ? n : undefined), { timeoutMs: 1000, what: "n to reach 0" }),
    ).toBe(0);
  });

  it("times out saying what was awaited and the state last seen", async () => {
    const t0 = performance.now();
    const e = await waitUntil(() => false, {
      timeoutMs: 120,
      what: "the impossible",
      last: () => "still false",
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WaitTimeoutError);
    expect((e as Error).message).toBe(
      "timed out after 120 ms waiting for the impossible; last seen: still false",
    );
    expect(performance.now() - t0).toBeGreaterThanOrEqual(119);
  });

  it("an error thrown by the condition ends the wait at once", async () => {
    await expect(
      waitUntil(
        () => {
          throw new Error("broken probe");
        },
        { timeoutMs: 10_000, what: "x" },
      ),
    ).rejects.toThrow("broken probe");
  });

  it("heldWithin reports the outcome instead of throwing", async () => {
    expect(await heldWithin(() => false, { timeoutMs: 50, what: "never" })).toBe(false);
    expect(await heldWithin(() => true, { timeoutMs: 50, what: "now" })).toBe(true);
  });
});
