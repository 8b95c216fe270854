/**
 * On-disk layout of ACME state, in one place:
 *
 * - `<dir>/account.key`        account private key (PEM, mode 0600)
 * - `<dir>/<first-name>/cert.pem` certificate chain (leaf first)
 * - `<dir>/<first-name>/key.pem`  certificate private key (PEM, mode 0600)
 *
 * Every write goes to a temp file in the same directory and is renamed into place, so a crash
 * never leaves a half-written file.
 *
 * @module
 */

import { dirname, join } from "node:path";

/** Files of one stored certificate. */
export interface StoredCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Reads and writes ACME account and certificate files under one directory. */
export class AcmeStorage {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Directory of the certificate whose first name is `name` ("*" becomes "_"). */
  certDir(name: string): string {
    const safe = name.toLowerCase().replace(/\*/g, "_").replace(/[/\\]/g, "_");
    if (safe === "" || safe === "." || safe === "..") {
      throw new Error(`Cannot store certificate "${name}": not a usable directory name`);
    }
    return join(this.dir, safe);
  }

  /** The account key PEM, or null when none is stored yet. */
  readAccountKey(): Promise<string | null> {
    return readOrNull(join(this.dir, "account.key"));
  }

  async writeAccountKey(pem: string): Promise<void> {
    await atomicWrite(join(this.dir, "account.key"), pem, 0o600);
  }

  /** The stored certificate whose first name is `name`, or null. */
  async readCertificate(name: string): Promise<StoredCertificate | null> {
    const dir = this.certDir(name);
    const certPem = await readOrNull(join(dir, "cert.pem"));
    const keyPem = await readOrNull(join(dir, "key.pem"));
    return certPem !== null && keyPem !== null ? { certPem, keyPem } : null;
  }

  /** Stores a certificate; the key is written first so a cert never pairs with an old key. */
  async writeCertificate(name: string, pair: StoredCertificate): Promise<void> {
    const dir = this.certDir(name);
    await atomicWrite(join(dir, "key.pem"), pair.keyPem, 0o600);
    await atomicWrite(join(dir, "cert.pem"), pair.certPem, 0o644);
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
    throw new Error(`Cannot write "${path}": ${(err as Error).message}`);
  }
}
