import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateKeyPair } from "../lib/remote/keys.ts";

describe("generated SSH keys", () => {
  it("OpenSSH accepts every generated key (ssh2 alone drops a leading zero byte about once in 256)", () => {
    const dir = mkdtempSync(join(tmpdir(), "tandem-keys-"));
    try {
      const file = join(dir, "k");
      for (let i = 0; i < 800; i++) {
        const pair = generateKeyPair("t");
        writeFileSync(file, pair.privateKey, { mode: 0o600 });
        const derived = execFileSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" }).trim();
        expect(derived.split(" ").slice(0, 2)).toEqual(pair.publicKey.split(" ").slice(0, 2));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
