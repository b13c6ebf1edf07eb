import { createHash } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import ssh2 from "ssh2";

/** One key pair in OpenSSH format, as written by `ssh-keygen -t ed25519`. */
export interface KeyPair {
  /** "-----BEGIN OPENSSH PRIVATE KEY-----..." */
  privateKey: string;
  /** "ssh-ed25519 AAAA... comment" (the authorized_keys / known_hosts form). */
  publicKey: string;
}

/** Key files written for one lab: the client's login key and the hosts' key. */
export interface LabKeyFiles {
  dir: string;
  client: KeyPair;
  host: KeyPair;
  clientKeyPath: string;
  hostKeyPath: string;
  /** authorized_keys holding the client's public key (sshd's AuthorizedKeysFile). */
  authorizedKeysPath: string;
}

/**
 * Generates an ed25519 key pair in OpenSSH format. ssh2 does this in-process
 * (no ssh-keygen fork per lab), and sshd reads its output directly.
 */
export function generateKeyPair(comment = "tandem"): KeyPair {
  // ssh2 drops a leading zero byte of the 32-byte ed25519 public key (about one key in
  // 256), writing a 31-byte key that OpenSSH refuses ("error in libcrypto"). Such a key
  // is simply drawn again.
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment });
    const blob = Buffer.from(pair.public.trim().split(" ")[1] ?? "", "base64");
    if (blob.length === ED25519_BLOB_LENGTH) {
      return { privateKey: ensureTrailingNewline(pair.private), publicKey: pair.public.trim() };
    }
  }
}

/** string "ssh-ed25519" (4 + 11) + string key (4 + 32). */
const ED25519_BLOB_LENGTH = 4 + 11 + 4 + 32;

/** The line for an authorized_keys file granting `publicKey` a login. */
export function authorizedKeysLine(publicKey: string): string {
  return `${publicKey.trim()}\n`;
}

/** Writes a private key (mode 0600, as sshd and ssh insist) and its `.pub` companion. */
export async function writeKeyPair(path: string, pair: KeyPair): Promise<void> {
  await writeFile(path, pair.privateKey, { mode: 0o600 });
  await chmod(path, 0o600); // writeFile's mode is ignored when the file already exists
  await writeFile(`${path}.pub`, `${pair.publicKey}\n`, { mode: 0o644 });
}

/**
 * Generates and writes a lab's keys into `dir` (created 0700):
 * `client_ed25519` (+ .pub), `host_ed25519` (+ .pub) and `authorized_keys`.
 */
export async function writeLabKeys(dir: string, comment = "tandem"): Promise<LabKeyFiles> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const client = generateKeyPair(`${comment}-client`);
  const host = generateKeyPair(`${comment}-host`);
  const clientKeyPath = join(dir, "client_ed25519");
  const hostKeyPath = join(dir, "host_ed25519");
  const authorizedKeysPath = join(dir, "authorized_keys");
  await Promise.all([
    writeKeyPair(clientKeyPath, client),
    writeKeyPair(hostKeyPath, host),
    writeFile(authorizedKeysPath, authorizedKeysLine(client.publicKey), { mode: 0o600 }),
  ]);
  return { dir, client, host, clientKeyPath, hostKeyPath, authorizedKeysPath };
}

/**
 * The raw public key blob (what an SSH server presents during key exchange) of an
 * OpenSSH public key line or private key, for host-key pinning.
 */
export function publicKeyBlob(key: string): Buffer {
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) throw new Error(`cannot parse SSH key: ${parsed.message}`);
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!first) throw new Error("cannot parse SSH key: no key found");
  return first.getPublicSSH();
}

/** OpenSSH's fingerprint of a public key blob: "SHA256:" + unpadded base64 of its SHA-256. */
export function keyFingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

function ensureTrailingNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}
