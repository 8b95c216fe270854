/**
 * Obtains and renews certificates from any RFC 8555 (ACME) CA over HTTP-01, using acme-client.
 * The manager is the entry point (options, stored certificates, the renewal lock, start and
 * stop); `ca_orders.ts` talks to the CA, `managed_certificate.ts` keeps one set of names
 * certified over time.
 *
 * @module
 */

import type { Logger } from "../log/types.ts";
import { type CertificatePair, parseCertificatePair } from "../tls/certs.ts";
import { AcmeStorage } from "./storage.ts";
import { CaOrders } from "./ca_orders.ts";
import { isNewer, ManagedCertificate, type RenewalContext } from "./managed_certificate.ts";
import type { AcmeStore } from "./store.ts";
import { AcmeError, orderError } from "./errors.ts";
import { errorText } from "../log/error_text.ts";
import { type AcmeTransport, createTransport, withTransport } from "./transport.ts";
import { RenewalInfoClient } from "./renewal_info.ts";

export type { CertificatePair };

/** Options of {@link AcmeManager}. */
export interface AcmeManagerOptions {
  /** ACME directory URL of the CA. */
  directoryUrl: string;
  /** Contact address for the account; "" registers without contact. */
  email: string;
  /** Directory holding the account key and certificates (see `storage.ts`). */
  storageDir: string;
  /** Where state is kept instead of plain files under storageDir: a store shared by a fleet
   *  (see `store.ts`). @default the files under storageDir */
  store?: AcmeStore;
  /** Renew this many days before expiry, or earlier when the CA's renewal info (ARI, RFC 9773)
   *  suggests a window that starts sooner. */
  renewBeforeDays: number;
  /** CA certificates (PEM) to trust for the ACME server; default: the bundled roots, plus the
   *  file named by `DENO_CERT` when set (see `transport.ts`). */
  caCerts?: string[];
  logger?: Logger;
  /** Milliseconds between checks of a managed certificate. @default 43_200_000 (12 h) */
  checkIntervalMs?: number;
  /** Milliseconds to wait after the first failure; doubles on each further failure.
   *  @default 60_000 */
  retryMinMs?: number;
  /** Longest wait between failed attempts, in milliseconds. @default 86_400_000 (1 day) */
  retryMaxMs?: number;
  /** Timeout of one HTTP request to the CA, in milliseconds. @default 30_000 */
  requestTimeoutMs?: number;
  /** Also write each key authorization to `<challengeDir>/<token>` (for a server that serves
   *  `/.well-known/acme-challenge/` from disk); "" answers from memory only. @default "" */
  challengeDir?: string;
  /** First delay when polling an order or authorization, in milliseconds. @default 1000 */
  pollMinMs?: number;
  /** Milliseconds between tries while another instance holds the renewal lock, or while the
   *  store cannot be reached. @default the smaller of 10_000 and checkIntervalMs */
  lockRetryMs?: number;
}

/** Keeps certificates for sets of names issued, stored and renewed. */
export class AcmeManager {
  readonly #opts: Required<Omit<AcmeManagerOptions, "caCerts" | "logger" | "store">>;
  readonly #log?: Logger;
  readonly #store: AcmeStore;
  readonly #abort = new AbortController();
  readonly #transport: AcmeTransport;
  readonly #inflight = new Map<string, Promise<CertificatePair | null>>();
  readonly #managed: ManagedCertificate[] = [];
  readonly #renewal: RenewalContext;
  readonly #renewalInfo: RenewalInfoClient;
  readonly #ca: CaOrders;
  #stopped = false;

  constructor(opts: AcmeManagerOptions) {
    this.#opts = {
      directoryUrl: opts.directoryUrl,
      email: opts.email,
      storageDir: opts.storageDir,
      renewBeforeDays: opts.renewBeforeDays,
      checkIntervalMs: opts.checkIntervalMs ?? 43_200_000,
      retryMinMs: opts.retryMinMs ?? 60_000,
      retryMaxMs: opts.retryMaxMs ?? 86_400_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      pollMinMs: opts.pollMinMs ?? 1000,
      challengeDir: opts.challengeDir ?? "",
      lockRetryMs: opts.lockRetryMs ?? Math.min(10_000, opts.checkIntervalMs ?? 43_200_000),
    };
    this.#log = opts.logger;
    this.#store = opts.store ?? new AcmeStorage(opts.storageDir);
    this.#transport = createTransport(
      opts.caCerts,
      this.#abort.signal,
      this.#opts.requestTimeoutMs,
    );
    this.#ca = new CaOrders({
      directoryUrl: opts.directoryUrl,
      email: this.#opts.email,
      challengeDir: this.#opts.challengeDir,
      pollMinMs: this.#opts.pollMinMs,
      store: this.#store,
      logger: opts.logger,
      stopped: () => this.#stopped,
    });
    const renewalInfo = new RenewalInfoClient({
      directoryUrl: opts.directoryUrl,
      caCerts: opts.caCerts,
      signal: this.#abort.signal,
      timeoutMs: this.#opts.requestTimeoutMs,
    });
    this.#renewalInfo = renewalInfo;
    this.#renewal = {
      opts: this.#opts,
      log: this.#log,
      store: this.#store,
      renewalInfo,
      stopped: () => this.#stopped,
      loadStored: (names) => this.loadStored(names),
      obtainLocked: (names, current) => this.#obtainLocked(names, current),
    };
  }

  /** Key authorization for an HTTP-01 token, or null. The server answers
   *  GET /.well-known/acme-challenge/<token> on the site's http_port with this (text/plain). */
  challengeResponse(token: string): string | null {
    return this.#ca.challengeResponse(token);
  }

  /**
   * Like {@link challengeResponse}, also asking a shared store for tokens another instance
   * created (bounded by the store's short request deadline; null when it cannot answer).
   */
  lookupChallenge(token: string): string | null | Promise<string | null> {
    const own = this.#ca.challengeResponse(token);
    if (own !== null) return own;
    if (!this.#store.shared) return null;
    return this.#store.readChallenge(token).catch(() => null);
  }

  /** Returns a stored, still-valid certificate for exactly these names (no network), or null. */
  async loadStored(names: string[]): Promise<CertificatePair | null> {
    const wanted = normalizeNames(names);
    const stored = await this.#store.readCertificate(wanted);
    if (!stored) return null;
    let pair: CertificatePair;
    try {
      pair = parseCertificatePair(stored.certPem, stored.keyPem);
    } catch (err) {
      this.#log?.warn(`Cannot use stored certificate "${wanted[0]}": ${errorText(err)}`);
      return null;
    }
    if (pair.notAfter.getTime() <= Date.now()) return null;
    if (!sameNames(pair.names, wanted)) return null;
    return pair;
  }

  /** Orders (HTTP-01), finalizes with a fresh key + CSR, stores key and chain in the store,
   *  returns it. Account key created once and stored (`storageDir/account.key`). Holds the
   *  store's renewal lock meanwhile; rejects when another instance holds it. */
  async obtain(names: string[]): Promise<CertificatePair> {
    const wanted = normalizeNames(names);
    const pair = await this.#obtainLocked(wanted, null);
    if (pair === null) {
      throw new AcmeError(
        "lock_held",
        `Cannot obtain certificate "${wanted.join(",")}": another instance holds the renewal lock`,
      );
    }
    return pair;
  }

  /**
   * Takes the renewal lock and orders, once per name list at a time; null when another instance
   * holds the lock. With a shared store, a certificate another instance stored since `current`
   * was read is taken instead of ordering.
   */
  #obtainLocked(
    names: string[],
    current: CertificatePair | null,
  ): Promise<CertificatePair | null> {
    const key = names.join(",");
    const running = this.#inflight.get(key);
    if (running) return running;
    const work = (async () => {
      const lease = await this.#store.lock(names);
      if (lease === null) return null;
      try {
        if (this.#store.shared) {
          const stored = await this.loadStored(names);
          if (stored && isNewer(stored, current)) {
            this.#log?.info(`Using the certificate another instance stored for "${key}"`, {
              notAfter: stored.notAfter.toISOString(),
            });
            return stored;
          }
        }
        return await withTransport(this.#transport, () => this.#ca.order(names, lease)).catch(
          (err) => {
            throw orderError(err);
          },
        );
      } finally {
        await lease.release();
      }
    })().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, work);
    return work;
  }

  /** Keeps `names` certified: uses the stored cert or obtains one, calls onCertificate each time
   *  a (new) certificate is ready, renews `renewBeforeDays` before expiry or at a random instant
   *  of the CA's suggested renewal window when that comes first (checked every `checkIntervalMs`,
   *  at start, and when the CA's Retry-After says), and backs off exponentially after
   *  failures. */
  manage(names: string[], onCertificate: (pair: CertificatePair) => void): void {
    if (this.#stopped) {
      throw new AcmeError("stopped", `Cannot manage "${names.join(",")}": manager is stopped`);
    }
    const entry = new ManagedCertificate(normalizeNames(names), onCertificate, this.#renewal);
    this.#managed.push(entry);
    // Another instance's certificate is taken as soon as it is stored (not at the next check).
    entry.unwatch = this.#store.watch(entry.names, () => void entry.takeStored(true));
    entry.schedule(0);
  }

  /** Clears timers, aborts pending requests and waits for running attempts to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort(new AcmeError("stopped", "ACME manager stopped"));
    for (const entry of this.#managed) {
      entry.cancel();
      entry.unwatch?.();
    }
    await Promise.allSettled([...this.#inflight.values()]);
    // An attempt that was running may have scheduled a timer before it saw the stop.
    for (const entry of this.#managed) entry.cancel();
    this.#ca.clear();
    this.#transport.agent?.destroy();
    this.#renewalInfo.close();
  }
}

/** Lower-cases, trims and de-duplicates names, keeping their order. */
function normalizeNames(names: readonly string[]): string[] {
  const out = [...new Set(names.map((n) => n.trim().toLowerCase()).filter((n) => n !== ""))];
  if (out.length === 0) throw new AcmeError("names", `Cannot order certificate "": no names given`);
  return out;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((n) => sb.has(n));
}
