/**
 * Obtains and renews certificates from any RFC 8555 (ACME) CA over HTTP-01, using acme-client.
 *
 * @module
 */

import * as acme from "acme-client";
import type { Logger } from "../log/types.ts";
import { type CertificatePair, parseCertificatePair } from "../tls/certs.ts";
import { join } from "node:path";
import { AcmeStorage, atomicWrite } from "./storage.ts";
import type { AcmeStore, RenewalLease } from "./store.ts";
import { AcmeError, isAcmeError, orderError } from "./errors.ts";
import { errorText } from "../log/error_text.ts";
import { type AcmeTransport, createTransport, withTransport } from "./transport.ts";
import {
  ARI_POLL_DEFAULT_MS,
  chooseRenewalTime,
  RenewalInfoClient,
  type RenewalWindow,
} from "./renewal_info.ts";

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
  /** Seconds between checks of a managed certificate. @default 43200 (12 h) */
  checkInterval?: number;
  /** Seconds to wait after the first failure; doubles on each further failure. @default 60 */
  retryMin?: number;
  /** Longest wait between failed attempts, in seconds. @default 86400 (1 day) */
  retryMax?: number;
  /** Timeout of one HTTP request to the CA, in seconds. @default 30 */
  requestTimeout?: number;
  /** Also write each key authorization to `<challengeDir>/<token>` (for a server that serves
   *  `/.well-known/acme-challenge/` from disk); "" answers from memory only. @default "" */
  challengeDir?: string;
  /** First delay when polling an order or authorization, in milliseconds. @default 1000 */
  pollMinMs?: number;
  /** Seconds between tries while another instance holds the renewal lock, or while the store
   *  cannot be reached. @default the smaller of 10 and checkInterval */
  lockRetry?: number;
}

interface Managed {
  readonly names: string[];
  readonly onCertificate: (pair: CertificatePair) => void;
  current: CertificatePair | null;
  /** When `current` was obtained or taken from another instance (epoch ms); 0 when it was
   *  loaded at start. A certificate is not renewed within checkInterval of this. */
  since: number;
  failures: number;
  /** The store could not be reached at the last check (logged once per outage). */
  storeDown?: boolean;
  /** Another instance held the renewal lock at the last check (logged once per wait). */
  waiting?: boolean;
  unwatch?: () => void;
  timer?: ReturnType<typeof setTimeout>;
  /** What the CA's renewal info said about `current`, if anything. */
  ari?: AriState;
}

/** Renewal info of one certificate (RFC 9773). */
interface AriState {
  /** The certificate it is about; a new certificate starts over. */
  readonly certPem: string;
  /** The last suggested window and the instant chosen in it, kept while the window is the same. */
  window?: RenewalWindow;
  renewAt?: number;
  /** When to ask the CA again (epoch ms). */
  nextPollAt: number;
}

const DAY_MS = 86_400_000;
/** setTimeout's largest delay; longer waits are re-checked when it fires. */
const MAX_TIMER_MS = 2_147_483_647;

/** Keeps certificates for sets of names issued, stored and renewed. */
export class AcmeManager {
  readonly #opts: Required<Omit<AcmeManagerOptions, "caCerts" | "logger" | "store">>;
  readonly #log?: Logger;
  readonly #store: AcmeStore;
  readonly #abort = new AbortController();
  readonly #transport: AcmeTransport;
  readonly #tokens = new Map<string, string>();
  readonly #inflight = new Map<string, Promise<CertificatePair | null>>();
  readonly #managed: Managed[] = [];
  readonly #renewalInfo: RenewalInfoClient;
  #client?: Promise<acme.Client>;
  #stopped = false;

  constructor(opts: AcmeManagerOptions) {
    this.#opts = {
      directoryUrl: opts.directoryUrl,
      email: opts.email,
      storageDir: opts.storageDir,
      renewBeforeDays: opts.renewBeforeDays,
      checkInterval: opts.checkInterval ?? 43_200,
      retryMin: opts.retryMin ?? 60,
      retryMax: opts.retryMax ?? 86_400,
      requestTimeout: opts.requestTimeout ?? 30,
      pollMinMs: opts.pollMinMs ?? 1000,
      challengeDir: opts.challengeDir ?? "",
      lockRetry: opts.lockRetry ?? Math.min(10, opts.checkInterval ?? 43_200),
    };
    this.#log = opts.logger;
    this.#store = opts.store ?? new AcmeStorage(opts.storageDir);
    this.#transport = createTransport(
      opts.caCerts,
      this.#abort.signal,
      this.#opts.requestTimeout * 1000,
    );
    this.#renewalInfo = new RenewalInfoClient({
      directoryUrl: opts.directoryUrl,
      caCerts: opts.caCerts,
      signal: this.#abort.signal,
      timeoutMs: this.#opts.requestTimeout * 1000,
    });
  }

  /** Key authorization for an HTTP-01 token, or null. The server answers
   *  GET /.well-known/acme-challenge/<token> on the site's http_port with this (text/plain). */
  challengeResponse(token: string): string | null {
    return this.#tokens.get(token) ?? null;
  }

  /**
   * Like {@link challengeResponse}, also asking a shared store for tokens another instance
   * created (bounded by the store's short request deadline; null when it cannot answer).
   */
  lookupChallenge(token: string): string | null | Promise<string | null> {
    const own = this.#tokens.get(token);
    if (own !== undefined) return own;
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
        return await withTransport(this.#transport, () => this.#order(names, lease)).catch(
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
   *  of the CA's suggested renewal window when that comes first (checked every `checkInterval`
   *  seconds, at start, and when the CA's Retry-After says), and backs off exponentially after
   *  failures. */
  manage(names: string[], onCertificate: (pair: CertificatePair) => void): void {
    if (this.#stopped) {
      throw new AcmeError("stopped", `Cannot manage "${names.join(",")}": manager is stopped`);
    }
    const entry: Managed = {
      names: normalizeNames(names),
      onCertificate,
      current: null,
      since: 0,
      failures: 0,
    };
    this.#managed.push(entry);
    // Another instance's certificate is taken as soon as it is stored (not at the next check).
    entry.unwatch = this.#store.watch(entry.names, () => void this.#takeStored(entry, true));
    this.#schedule(entry, 0);
  }

  /** Clears timers, aborts pending requests and waits for running attempts to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort(new AcmeError("stopped", "ACME manager stopped"));
    for (const entry of this.#managed) {
      clearTimeout(entry.timer);
      entry.unwatch?.();
    }
    await Promise.allSettled([...this.#inflight.values()]);
    // An attempt that was running may have scheduled a timer before it saw the stop.
    for (const entry of this.#managed) clearTimeout(entry.timer);
    this.#tokens.clear();
    this.#transport.agent?.destroy();
    this.#renewalInfo.close();
  }

  #schedule(entry: Managed, delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.#check(entry);
    }, Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
  }

  async #check(entry: Managed): Promise<void> {
    const label = entry.names.join(",");
    try {
      await this.#takeStored(entry, false);
      if (this.#stopped) return;
      // Renewal info is asked for only while the expiry rule does not already say "renew", so a
      // slow or broken CA endpoint never delays a renewal.
      if (entry.current && this.#ruleAt(entry.current) > Date.now()) {
        await this.#pollRenewalInfo(entry);
        if (this.#stopped) return;
      }
      if (!entry.current || this.#dueAt(entry) <= Date.now()) {
        if (!entry.waiting) {
          this.#log?.info(
            entry.current
              ? `Renewing certificate for "${label}"`
              : `Obtaining certificate for "${label}"`,
          );
        }
        const pair = await this.#obtainLocked(entry.names, entry.current);
        if (this.#stopped) return;
        entry.storeDown = false;
        if (pair === null) {
          if (!entry.waiting) {
            this.#log?.info(`Waiting for the instance that is obtaining "${label}"`, {
              store: this.#store.label,
              retryInSeconds: this.#opts.lockRetry,
            });
          }
          entry.waiting = true;
          this.#schedule(entry, this.#opts.lockRetry * 1000);
          return;
        }
        entry.waiting = false;
        if (pair.certPem !== entry.current?.certPem) this.#adopt(entry, pair);
        if (this.#ruleAt(pair) > Date.now()) {
          await this.#pollRenewalInfo(entry);
          if (this.#stopped) return;
        }
      }
      entry.failures = 0;
      entry.storeDown = false;
      // A certificate that is due as soon as it is issued (renewal window longer than the CA's
      // lifetime, or a suggested window already past) waits a full interval, so the CA is never
      // asked in a tight loop.
      const now = Date.now();
      const untilRenew = this.#dueAt(entry) - now;
      const interval = this.#opts.checkInterval * 1000;
      let delay = untilRenew > 0 ? Math.min(interval, untilRenew) : interval;
      if (entry.ari?.certPem === entry.current!.certPem) {
        delay = Math.min(delay, Math.max(0, entry.ari.nextPollAt - now));
      }
      this.#schedule(entry, delay);
    } catch (err) {
      if (this.#stopped) return;
      if (isAcmeError(err, "store_unavailable")) {
        // Not the CA's fault: no backoff; the certificate in use keeps being served.
        const fields = { store: this.#store.label, retryInSeconds: this.#opts.lockRetry };
        if (!entry.storeDown) {
          this.#log?.warn(`Cannot check certificate for "${label}": ${errorText(err)}`, fields);
        }
        entry.storeDown = true;
        this.#schedule(entry, this.#opts.lockRetry * 1000);
        return;
      }
      entry.failures++;
      const delay = Math.min(
        this.#opts.retryMin * 2 ** (entry.failures - 1),
        this.#opts.retryMax,
      );
      this.#log?.warn(`Cannot obtain certificate for "${label}": ${errorText(err)}`, {
        attempt: entry.failures,
        retryInSeconds: delay,
      });
      this.#schedule(entry, delay * 1000);
    }
  }

  /**
   * Takes the stored certificate when there is none in use yet, or (with a shared store) when
   * another instance stored a newer one. A store that cannot be read is an error only while
   * there is no certificate in use.
   */
  async #takeStored(entry: Managed, fromWatch: boolean): Promise<void> {
    if (this.#stopped || (entry.current && !this.#store.shared)) return;
    let stored: CertificatePair | null;
    try {
      stored = await this.loadStored(entry.names);
    } catch (err) {
      if (entry.current || fromWatch) return;
      throw err;
    }
    if (this.#stopped || !stored || !isNewer(stored, entry.current)) return;
    // At start the stored certificate may be old; later it was just stored by another instance.
    const atStart = entry.current === null && !fromWatch;
    this.#log?.info(
      atStart
        ? `Using stored certificate for "${entry.names.join(",")}"`
        : `Using the certificate another instance stored for "${entry.names.join(",")}"`,
      { notAfter: stored.notAfter.toISOString() },
    );
    this.#adopt(entry, stored, atStart ? 0 : Date.now());
    entry.waiting = false;
  }

  #adopt(entry: Managed, pair: CertificatePair, since = Date.now()): void {
    entry.current = pair;
    entry.since = since;
    this.#deliver(entry, pair);
  }

  /** A throwing callback is the caller's bug: logged, never mistaken for a failed order. */
  #deliver(entry: Managed, pair: CertificatePair): void {
    try {
      entry.onCertificate(pair);
    } catch (err) {
      this.#log?.error(
        `Cannot install certificate for "${entry.names.join(",")}": ${errorText(err)}`,
      );
    }
  }

  /** When the expiry rule alone renews `pair`. */
  #ruleAt(pair: CertificatePair): number {
    return pair.notAfter.getTime() - this.#opts.renewBeforeDays * DAY_MS;
  }

  /** When the current certificate is due: its renewal time, but never within checkInterval of
   *  obtaining it (or taking it from another instance). */
  #dueAt(entry: Managed): number {
    return Math.max(this.#renewAt(entry), entry.since + this.#opts.checkInterval * 1000);
  }

  /** When to renew the current certificate: the expiry rule or the CA's suggestion, if sooner. */
  #renewAt(entry: Managed): number {
    const rule = this.#ruleAt(entry.current!);
    const ari = entry.ari?.certPem === entry.current!.certPem ? entry.ari.renewAt : undefined;
    return ari === undefined ? rule : Math.min(rule, ari);
  }

  /**
   * Asks the CA for renewal info on the current certificate when it is time to (first time for
   * this certificate, then after Retry-After). Never throws: any failure keeps the last known
   * suggestion (or the expiry rule alone) and is logged at debug level.
   */
  async #pollRenewalInfo(entry: Managed): Promise<void> {
    const cert = entry.current!;
    if (entry.ari?.certPem !== cert.certPem) {
      entry.ari = { certPem: cert.certPem, nextPollAt: 0 };
    }
    const state = entry.ari;
    if (state.nextPollAt > Date.now()) return;
    const label = entry.names.join(",");
    try {
      const info = await this.#renewalInfo.lookup(cert.certPem);
      state.nextPollAt = Date.now() + (info?.retryAfterMs ?? ARI_POLL_DEFAULT_MS);
      if (!info) {
        this.#log?.debug(`No renewal info for "${label}": the CA does not offer it`);
        return;
      }
      const { window } = info;
      if (state.window?.start !== window.start || state.window?.end !== window.end) {
        state.window = window;
        state.renewAt = chooseRenewalTime(window);
        const fields = {
          certId: info.certId,
          windowStart: new Date(window.start).toISOString(),
          windowEnd: new Date(window.end).toISOString(),
          renewAt: new Date(state.renewAt).toISOString(),
          ...(window.explanationUrl ? { explanationUrl: window.explanationUrl } : {}),
        };
        if (state.renewAt < this.#ruleAt(cert)) {
          this.#log?.info(`Renewal info for "${label}" moves the renewal earlier`, fields);
        } else {
          this.#log?.debug(`Renewal info for "${label}" changes nothing`, fields);
        }
      }
    } catch (err) {
      if (this.#stopped) return;
      state.nextPollAt = Date.now() + ARI_POLL_DEFAULT_MS;
      this.#log?.debug(`Cannot get renewal info for "${label}": ${errorText(err)}`, {
        renewAt: new Date(this.#renewAt(entry)).toISOString(),
      });
    }
  }

  async #order(names: string[], lease: RenewalLease): Promise<CertificatePair> {
    if (this.#stopped) {
      throw new AcmeError("stopped", `Cannot obtain certificate "${names[0]}": manager stopped`);
    }
    const client = await this.#accountClient();
    const keyPem = (await acme.crypto.createPrivateEcdsaKey("P-256")).toString();
    const [, csr] = await acme.crypto.createCsr(
      names[0].length <= 64 ? { commonName: names[0], altNames: names } : { altNames: names },
      keyPem,
    );
    await this.#register(client);
    const tokens: string[] = [];
    const certPem = await client.auto({
      csr,
      email: this.#opts.email || undefined,
      termsOfServiceAgreed: true,
      challengePriority: ["http-01"],
      // acme-client would fetch the challenge itself from port 80 of each name first; our own
      // server's name need not resolve from here, so the CA's validation is the only check.
      skipChallengeVerification: true,
      challengeCreateFn: (_authz, challenge, keyAuthorization) => {
        if (challenge.type !== "http-01") {
          return Promise.reject(
            new AcmeError("order", `Cannot answer challenge "${challenge.type}"`),
          );
        }
        tokens.push(challenge.token);
        this.#tokens.set(challenge.token, keyAuthorization);
        return Promise.all([
          this.#store.writeChallenge(challenge.token, keyAuthorization),
          this.#writeChallengeFile(challenge.token, keyAuthorization),
        ]).then(() => {});
      },
      challengeRemoveFn: (_authz, challenge) => this.#forgetChallenge(challenge.token),
    }).finally(() => Promise.all(tokens.map((t) => this.#forgetChallenge(t))));
    const pair = parseCertificatePair(certPem, keyPem);
    if (!names.every((n) => pair.names.includes(n))) {
      throw new AcmeError(
        "names",
        `Cannot use certificate for "${names.join(",")}": it names ${pair.names.join(",")}`,
      );
    }
    try {
      await this.#store.writeCertificate(names, { certPem, keyPem }, lease);
    } catch (err) {
      // The certificate is valid: serve it; the instance that took the lock over stores its own.
      if (!isAcmeError(err, "lock_lost")) throw err;
      this.#log?.warn(`Cannot store certificate for "${names.join(",")}": ${errorText(err)}`);
    }
    this.#log?.info(`Obtained certificate for "${names.join(",")}"`, {
      notAfter: pair.notAfter.toISOString(),
    });
    return pair;
  }

  /**
   * Finds or creates the account of the key. With an existing account, acme-client's auto() would
   * re-send `{ termsOfServiceAgreed }` as an account update, which a CA may refuse as an "empty
   * update" (Pebble does) when there is no contact to set: so without an email the existing
   * account is looked up first (onlyReturnExisting, then a POST-as-GET).
   */
  async #register(client: acme.Client): Promise<void> {
    try {
      client.getAccountUrl();
      return; // registered earlier in this process
    } catch { /* not yet */ }
    if (this.#opts.email === "") {
      try {
        await client.createAccount({ onlyReturnExisting: true });
        return;
      } catch { /* no account for this key yet (or the lookup failed): create it below */ }
    }
    await client.createAccount({
      termsOfServiceAgreed: true,
      ...(this.#opts.email ? { contact: [`mailto:${this.#opts.email}`] } : {}),
    });
  }

  async #writeChallengeFile(token: string, keyAuthorization: string): Promise<void> {
    if (this.#opts.challengeDir === "" || !/^[A-Za-z0-9_-]+$/.test(token)) return;
    await atomicWrite(join(this.#opts.challengeDir, token), keyAuthorization, 0o644);
  }

  async #forgetChallenge(token: string): Promise<void> {
    this.#tokens.delete(token);
    await this.#store.removeChallenge(token).catch(() => {}); // it expires by itself
    if (this.#opts.challengeDir === "" || !/^[A-Za-z0-9_-]+$/.test(token)) return;
    await Deno.remove(join(this.#opts.challengeDir, token)).catch(() => {});
  }

  #accountClient(): Promise<acme.Client> {
    this.#client ??= (async () => {
      let accountKey = await this.#store.readAccountKey();
      if (accountKey === null) {
        const created = (await acme.crypto.createPrivateEcdsaKey("P-256")).toString();
        // Another instance may have stored one meanwhile: the stored key wins.
        accountKey = await this.#store.writeAccountKey(created);
        if (accountKey === created) {
          this.#log?.info(`Created ACME account key in "${this.#store.label}"`);
        }
      }
      // No account URL is kept: newAccount with a known key returns the existing account, so a
      // CA that forgot it (a test CA restarted) costs nothing special.
      return new acme.Client({
        directoryUrl: this.#opts.directoryUrl,
        accountKey,
        backoffMin: this.#opts.pollMinMs,
        backoffMax: Math.max(this.#opts.pollMinMs, 10_000),
        backoffAttempts: 12,
      });
    })();
    // A failed setup (unreadable storage) is retried on the next attempt.
    this.#client.catch(() => (this.#client = undefined));
    return this.#client;
  }
}

/** Lower-cases, trims and de-duplicates names, keeping their order. */
function normalizeNames(names: readonly string[]): string[] {
  const out = [...new Set(names.map((n) => n.trim().toLowerCase()).filter((n) => n !== ""))];
  if (out.length === 0) throw new AcmeError("names", `Cannot order certificate "": no names given`);
  return out;
}

/** Whether `pair` should replace `current`: another certificate that expires no earlier. */
function isNewer(pair: CertificatePair, current: CertificatePair | null): boolean {
  if (current === null) return true;
  return pair.certPem !== current.certPem &&
    pair.notAfter.getTime() >= current.notAfter.getTime();
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((n) => sb.has(n));
}
