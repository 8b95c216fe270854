/**
 * The default ACME store: files under one directory.
 *
 * - `<dir>/account.key`        account private key (PEM, mode 0600)
 * - `<dir>/<first-name>/cert.pem` certificate chain (leaf first)
 * - `<dir>/<first-name>/key.pem`  certificate private key (PEM, mode 0600)
 *
 * Every write goes to a temp file in the same directory and is renamed into place, so a crash
 * never leaves a half-written file. With `[cluster]` the same files are the local copy of what
 * Redis holds, read when Redis cannot be reached.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { type AcmeStore, LOCAL_LEASE, type RenewalLease, type StoredCertificate } from "./store.ts";
import { errorText } from "../log/error_text.ts";
import { AcmeError } from "./errors.ts";

export type { StoredCertificate };

/** Reads and writes ACME account and certificate files under one directory. */
export class AcmeStorage implements AcmeStore {
  readonly dir: string;
  readonly shared = false;

  constructor(dir: string) {
    this.dir = dir;
  }

  get label(): string {
    return this.dir;
  }

  /** Directory of the certificate whose first name is `name` ("*" becomes "_"). */
  certDir(name: string): string {
    const safe = name.toLowerCase().replace(/\*/g, "_").replace(/[/\\]/g, "_");
    if (safe === "" || safe === "." || safe === "..") {
      throw new AcmeError(
        "storage",
        `Cannot store certificate "${name}": not a usable directory name`,
      );
    }
    return join(this.dir, safe);
  }

  /** The account key PEM, or null when none is stored yet. */
  readAccountKey(): Promise<string | null> {
    return readOrNull(join(this.dir, "account.key"));
  }

  async writeAccountKey(pem: string): Promise<string> {
    await atomicWrite(join(this.dir, "account.key"), pem, 0o600);
    return pem;
  }

  /** The stored certificate of the first name, or null. */
  async readCertificate(names: readonly string[]): Promise<StoredCertificate | null> {
    const dir = this.certDir(names[0]);
    const certPem = await readOrNull(join(dir, "cert.pem"));
    const keyPem = await readOrNull(join(dir, "key.pem"));
    return certPem !== null && keyPem !== null ? { certPem, keyPem } : null;
  }

  /** Stores a certificate; the key is written first so a cert never pairs with an old key. */
  async writeCertificate(names: readonly string[], pair: StoredCertificate): Promise<void> {
    const dir = this.certDir(names[0]);
    await atomicWrite(join(dir, "key.pem"), pair.keyPem, 0o600);
    await atomicWrite(join(dir, "cert.pem"), pair.certPem, 0o644);
  }

  // Challenge answers of a single process stay in its manager's memory (and `challenge_dir`).
  writeChallenge(): Promise<void> {
    return Promise.resolve();
  }

  readChallenge(): Promise<string | null> {
    return Promise.resolve(null);
  }

  removeChallenge(): Promise<void> {
    return Promise.resolve();
  }

  /** Nobody else uses these files: the lock is always granted. */
  lock(): Promise<RenewalLease | null> {
    return Promise.resolve(LOCAL_LEASE);
  }

  watch(): () => void {
    return () => {};
  }
}

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Writes `data` to `path` via a temp file in the same directory and a rename. */
export async function atomicWrite(path: string, data: string, mode: number): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeTextFile(tmp, data, { mode, createNew: true });
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new AcmeError("storage", `Cannot write "${path}": ${errorText(err)}`, { cause: err });
  }
}
