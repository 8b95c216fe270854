/**
 * Where an `AcmeManager` keeps its state: the account key, certificates per set of names, the
 * HTTP-01 challenge answers of running orders, and the renewal lock. Two implementations:
 *
 * - `AcmeStorage` (storage.ts), files under `storage_dir`: the default, for one bws. Its lock is
 *   always granted (the manager runs one order per name set at a time anyway) and challenge
 *   answers stay in the manager's memory.
 * - `RedisAcmeStore` (src/cluster/redis_acme_store.ts), with `[cluster]`: shared by a fleet, so
 *   any instance answers a challenge another one created, one instance orders while the others
 *   wait on the lock, and they all pick up the result.
 *
 * @module
 */

/** PEM text of one stored certificate. */
export interface StoredCertificate {
  /** Certificate chain, leaf first. */
  readonly certPem: string;
  readonly keyPem: string;
}

/** A held renewal lock. The store checks its token on renewal, release and certificate write. */
export interface RenewalLease {
  /** The fencing token: a write or release with a token that no longer holds the lock is
   *  refused. */
  readonly token: string;
  /** False once the lock is known to be lost (it expired and another instance may have it). */
  readonly held: boolean;
  /** Gives the lock up if it is still ours; never throws. */
  release(): Promise<void>;
}

/**
 * A store's state for one CA. A store that cannot be reached throws an `AcmeError` of kind
 * "store_unavailable" (errors.ts); the manager then tries again soon.
 */
export interface AcmeStore {
  /** Where it is, for log messages (a directory, or a masked Redis URL and prefix). */
  readonly label: string;
  /** Whether other bws processes use it too: the manager then re-reads it before ordering and
   *  takes other instances' certificates. */
  readonly shared: boolean;
  /** The account key PEM, or null when none is stored yet. */
  readAccountKey(): Promise<string | null>;
  /** Stores `pem` unless a key is already stored; resolves with the key that is stored (a key
   *  another instance stored first wins). */
  writeAccountKey(pem: string): Promise<string>;
  /** The certificate stored for exactly this name list (normalized by the manager), or null. */
  readCertificate(names: readonly string[]): Promise<StoredCertificate | null>;
  /** Stores a certificate; with a lease, only while that lease still holds the lock (else an
   *  `AcmeError` of kind "lock_lost"). */
  writeCertificate(
    names: readonly string[],
    pair: StoredCertificate,
    lease?: RenewalLease,
  ): Promise<void>;
  /** Publishes the answer to an HTTP-01 token while its order runs. */
  writeChallenge(token: string, keyAuthorization: string): Promise<void>;
  /** The answer to a token created by any user of the store (on a request's behalf: short). */
  readChallenge(token: string): Promise<string | null>;
  removeChallenge(token: string): Promise<void>;
  /** Takes the renewal lock of a name list, kept alive until released; null when another
   *  instance holds it. */
  lock(names: readonly string[]): Promise<RenewalLease | null>;
  /** Calls `onChange` when another user may have stored a certificate for `names` (and after
   *  the store was unreachable, since then it cannot tell). Returns the removal. */
  watch(names: readonly string[], onChange: () => void): () => void;
}

/** The lease of a store that only this process uses: always held. */
export const LOCAL_LEASE: RenewalLease = Object.freeze({
  token: "local",
  held: true,
  release: () => Promise.resolve(),
});
