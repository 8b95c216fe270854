/**
 * The ACME store of a fleet (`[cluster]`): account key, certificates, HTTP-01 answers and
 * renewal locks in Redis, with the files under `storage_dir` kept as this instance's local copy.
 *
 * Keys, under the fleet's `key_prefix` (`bws:` below), per CA directory (`<ca>`: the first 12
 * hex digits of the SHA-256 of its URL):
 *
 * | key | value |
 * | --- | --- |
 * | `bws:acme:<ca>:account` | account key PEM |
 * | `bws:acme:<ca>:cert:<names>` | JSON `{certPem, keyPem, storedAt, by}`; `<names>` comma-joined |
 * | `bws:acme:<ca>:lock:<names>` | renewal lock: the holder's fencing token, with an expiry |
 * | `bws:acme:challenge:<token>` | key authorization, expires after an hour |
 *
 * A stored certificate is announced on the channel `bws:acme:certs` (message `<ca>:<names>`);
 * every instance re-reads it and takes it when it is newer than its own. Pub/sub rather than
 * polling: an instance picks a certificate up within milliseconds, and costs Redis nothing
 * between renewals; messages missed while disconnected are made up for by re-reading every
 * watched certificate on reconnection.
 *
 * Redis unreachable: reads fall back to the local copy (a restart during an outage still serves
 * its certificates); a store that has neither throws an `AcmeError` of kind "store_unavailable". After a Redis
 * restart that lost its data, the local copies are written back (only where Redis has none).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { AcmeStorage } from "../acme/storage.ts";
import { AcmeError } from "../acme/errors.ts";
import type { AcmeStore, RenewalLease, StoredCertificate } from "../acme/store.ts";
import { type RedisLink, RedisUnavailableError } from "./redis_link.ts";
import { FENCED_SET, RedisLease, type RedisLocks } from "./renewal_lock.ts";

/** How long a challenge answer is kept (an order that takes longer fails anyway). */
const CHALLENGE_TTL_MS = 3_600_000;

/** The certificate announcements of one fleet: one subscription, many watchers. */
export class CertificateChannel {
  readonly name: string;
  readonly #link: RedisLink;
  readonly #watchers = new Map<string, Set<() => void>>();
  #unsubscribe: (() => void) | null = null;

  /** @param prefix the fleet's key prefix */
  constructor(link: RedisLink, prefix: string) {
    this.#link = link;
    this.name = `${prefix}acme:certs`;
  }

  /** Calls `fn` when certificate `id` is announced, and after every reconnection. */
  watch(id: string, fn: () => void): () => void {
    this.#unsubscribe ??= this.#link.subscribe(
      this.name,
      (message) => this.#notify(this.#watchers.get(message)),
      () => {
        for (const set of this.#watchers.values()) this.#notify(set);
      },
    );
    let set = this.#watchers.get(id);
    if (!set) this.#watchers.set(id, set = new Set());
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.#watchers.delete(id);
    };
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#watchers.clear();
  }

  #notify(set: Set<() => void> | undefined): void {
    for (const fn of [...(set ?? [])]) {
      try {
        fn();
      } catch { /* a watcher's bug must not stop the others */ }
    }
  }
}

/** Options of {@link RedisAcmeStore}. */
export interface RedisAcmeStoreOptions {
  readonly link: RedisLink;
  /** The fleet's key prefix, e.g. "bws:". */
  readonly prefix: string;
  /** The CA's directory URL: accounts and certificates are kept per CA. */
  readonly directoryUrl: string;
  /** This instance's copy on disk (`storage_dir`). */
  readonly local: AcmeStorage;
  readonly locks: RedisLocks;
  readonly channel: CertificateChannel;
  /** Names this instance in what it stores (`by`). */
  readonly owner: string;
}

/** See the module doc. */
export class RedisAcmeStore implements AcmeStore {
  readonly shared = true;
  readonly label: string;
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #ca: string;
  readonly #local: AcmeStorage;
  readonly #locks: RedisLocks;
  readonly #channel: CertificateChannel;
  readonly #owner: string;
  /** certPem last written to (or read from) the local copy, per name list. */
  readonly #localCopy = new Map<string, string>();

  constructor(opts: RedisAcmeStoreOptions) {
    this.#link = opts.link;
    this.#prefix = opts.prefix;
    this.#ca = createHash("sha256").update(opts.directoryUrl).digest("hex").slice(0, 12);
    this.#local = opts.local;
    this.#locks = opts.locks;
    this.#channel = opts.channel;
    this.#owner = opts.owner;
    this.label = `${opts.link.label} ${opts.prefix}acme:${this.#ca}`;
  }

  async readAccountKey(): Promise<string | null> {
    const key = this.#key("account");
    let pem: string | null;
    try {
      pem = await this.#ask(["GET", key]) as string | null;
    } catch (err) {
      const local = await this.#local.readAccountKey();
      if (local !== null) return local;
      throw err;
    }
    if (pem !== null) return pem;
    // Redis lost it (restarted without persistence): put the local copy back.
    const local = await this.#local.readAccountKey();
    return local === null ? null : await this.writeAccountKey(local);
  }

  async writeAccountKey(pem: string): Promise<string> {
    const key = this.#key("account");
    const set = await this.#ask(["SET", key, pem, "NX"]);
    const stored = set === "OK" ? pem : (await this.#ask(["GET", key]) as string | null) ?? pem;
    await this.#local.writeAccountKey(stored);
    return stored;
  }

  async readCertificate(names: readonly string[]): Promise<StoredCertificate | null> {
    const id = this.#id(names);
    let raw: string | null;
    try {
      raw = await this.#ask(["GET", this.#certKey(id)]) as string | null;
    } catch (err) {
      const local = await this.#local.readCertificate(names);
      if (local !== null) return local;
      throw err;
    }
    const stored = raw === null ? null : parseStored(raw);
    if (stored === null) {
      const local = await this.#local.readCertificate(names);
      if (local !== null) await this.#seed(id, local);
      return local;
    }
    if (this.#localCopy.get(id) !== stored.certPem) {
      await this.#local.writeCertificate(names, stored);
      this.#localCopy.set(id, stored.certPem);
    }
    return stored;
  }

  async writeCertificate(
    names: readonly string[],
    pair: StoredCertificate,
    lease?: RenewalLease,
  ): Promise<void> {
    const id = this.#id(names);
    // The local copy first: a certificate obtained is kept even if Redis refuses or is gone.
    await this.#local.writeCertificate(names, pair);
    this.#localCopy.set(id, pair.certPem);
    const value = JSON.stringify({
      certPem: pair.certPem,
      keyPem: pair.keyPem,
      storedAt: new Date().toISOString(),
      by: this.#owner,
    });
    if (!(lease instanceof RedisLease)) {
      await this.#ask(["SET", this.#certKey(id), value]);
      await this.#ask(["PUBLISH", this.#channel.name, id]);
      return;
    }
    const written = await this.#askScript(
      [lease.key, this.#certKey(id)],
      [lease.token, value, this.#channel.name, id],
    );
    if (written !== 1) {
      throw new AcmeError(
        "lock_lost",
        `Cannot store certificate "${names.join(",")}" in ${this.label}: the renewal lock ` +
          "expired and another instance holds it",
      );
    }
  }

  async writeChallenge(token: string, keyAuthorization: string): Promise<void> {
    await this.#ask(["SET", this.#challengeKey(token), keyAuthorization, "PX", CHALLENGE_TTL_MS]);
  }

  async readChallenge(token: string): Promise<string | null> {
    if (!/^[A-Za-z0-9_-]+$/.test(token)) return null;
    return await this.#ask(["GET", this.#challengeKey(token)], true) as string | null;
  }

  async removeChallenge(token: string): Promise<void> {
    await this.#ask(["DEL", this.#challengeKey(token)]);
  }

  async lock(names: readonly string[]): Promise<RenewalLease | null> {
    try {
      return await this.#locks.acquire(this.#key(`lock:${this.#id(names)}`));
    } catch (err) {
      throw unavailable(err);
    }
  }

  watch(names: readonly string[], onChange: () => void): () => void {
    return this.#channel.watch(this.#id(names), onChange);
  }

  /** Writes a local certificate to Redis where Redis has none, and announces it. */
  async #seed(id: string, pair: StoredCertificate): Promise<void> {
    const value = JSON.stringify({
      certPem: pair.certPem,
      keyPem: pair.keyPem,
      storedAt: new Date().toISOString(),
      by: this.#owner,
    });
    try {
      if (await this.#ask(["SET", this.#certKey(id), value, "NX"]) === "OK") {
        await this.#ask(["PUBLISH", this.#channel.name, id]);
      }
    } catch { /* the next read tries again */ }
  }

  #id(names: readonly string[]): string {
    return `${this.#ca}:${names.join(",")}`;
  }

  #key(suffix: string): string {
    return `${this.#prefix}acme:${this.#ca}:${suffix}`;
  }

  /** The key of certificate `id` (`<ca>:<names>`). */
  #certKey(id: string): string {
    return this.#key(`cert:${id.slice(this.#ca.length + 1)}`);
  }

  #challengeKey(token: string): string {
    return `${this.#prefix}acme:challenge:${token}`;
  }

  async #ask(args: (string | number)[], urgent = false) {
    try {
      return await this.#link.command(args, { urgent });
    } catch (err) {
      throw unavailable(err);
    }
  }

  async #askScript(keys: string[], args: string[]) {
    try {
      return await this.#link.eval(FENCED_SET, keys, args);
    } catch (err) {
      throw unavailable(err);
    }
  }
}

function unavailable(err: unknown): Error {
  if (err instanceof RedisUnavailableError) {
    return new AcmeError("store_unavailable", err.message, { cause: err });
  }
  return err as Error;
}

function parseStored(raw: string): StoredCertificate | null {
  try {
    const v = JSON.parse(raw);
    return typeof v?.certPem === "string" && typeof v?.keyPem === "string"
      ? { certPem: v.certPem, keyPem: v.keyPem }
      : null;
  } catch {
    return null;
  }
}
