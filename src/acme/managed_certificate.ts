/**
 * One set of names kept certified: when to check, renew or back off, the certificate in use and
 * what the CA's renewal info (RFC 9773) suggests for it. The {@linkcode AcmeManager} holds one
 * per `manage()` call and lends it the store, the CA and its options.
 *
 * @module
 */

import { errorText } from "../log/error_text.ts";
import type { Logger } from "../log/types.ts";
import type { CertificatePair } from "../tls/certs.ts";
import { isAcmeError } from "./errors.ts";
import {
  ARI_POLL_DEFAULT_MS,
  chooseRenewalTime,
  type RenewalInfoClient,
  type RenewalWindow,
} from "./renewal_info.ts";
import type { AcmeStore } from "./store.ts";

const DAY_MS = 86_400_000;
/** setTimeout's largest delay; longer waits are re-checked when it fires. */
const MAX_TIMER_MS = 2_147_483_647;

/** What a managed certificate uses of its manager. */
export interface RenewalContext {
  /** As `AcmeManagerOptions` has them, defaults applied. */
  readonly opts: {
    readonly renewBeforeDays: number;
    readonly checkIntervalMs: number;
    readonly retryMinMs: number;
    readonly retryMaxMs: number;
    readonly lockRetryMs: number;
  };
  readonly log?: Logger;
  readonly store: AcmeStore;
  readonly renewalInfo: RenewalInfoClient;
  stopped(): boolean;
  /** A stored, still valid certificate for exactly `names`, or null. */
  loadStored(names: string[]): Promise<CertificatePair | null>;
  /** Orders under the renewal lock; null when another instance holds it. */
  obtainLocked(names: string[], current: CertificatePair | null): Promise<CertificatePair | null>;
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

/** Whether `pair` should replace `current`: another certificate that expires no earlier. */
export function isNewer(pair: CertificatePair, current: CertificatePair | null): boolean {
  if (current === null) return true;
  return pair.certPem !== current.certPem &&
    pair.notAfter.getTime() >= current.notAfter.getTime();
}

export class ManagedCertificate {
  readonly names: string[];
  readonly onCertificate: (pair: CertificatePair) => void;
  current: CertificatePair | null = null;
  /** When `current` was obtained or taken from another instance (epoch ms); 0 when it was
   *  loaded at start. A certificate is not renewed within checkIntervalMs of this. */
  since = 0;
  failures = 0;
  /** The store could not be reached at the last check (logged once per outage). */
  storeDown?: boolean;
  /** Another instance held the renewal lock at the last check (logged once per wait). */
  waiting?: boolean;
  unwatch?: () => void;
  timer?: ReturnType<typeof setTimeout>;
  /** What the CA's renewal info said about `current`, if anything. */
  ari?: AriState;
  readonly #ctx: RenewalContext;

  constructor(
    names: string[],
    onCertificate: (pair: CertificatePair) => void,
    ctx: RenewalContext,
  ) {
    this.names = names;
    this.onCertificate = onCertificate;
    this.#ctx = ctx;
  }

  /** Clears the timer of the next check. */
  cancel(): void {
    clearTimeout(this.timer);
  }

  schedule(delayMs: number): void {
    if (this.#ctx.stopped()) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.#check();
    }, Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
  }

  async #check(): Promise<void> {
    const label = this.names.join(",");
    try {
      await this.takeStored(false);
      if (this.#ctx.stopped()) return;
      // Renewal info is asked for only while the expiry rule does not already say "renew", so a
      // slow or broken CA endpoint never delays a renewal.
      if (this.current && this.#ruleAt(this.current) > Date.now()) {
        await this.#pollRenewalInfo();
        if (this.#ctx.stopped()) return;
      }
      if (!this.current || this.#dueAt() <= Date.now()) {
        if (!this.waiting) {
          this.#ctx.log?.info(
            this.current
              ? `Renewing certificate for "${label}"`
              : `Obtaining certificate for "${label}"`,
          );
        }
        const pair = await this.#ctx.obtainLocked(this.names, this.current);
        if (this.#ctx.stopped()) return;
        this.storeDown = false;
        if (pair === null) {
          if (!this.waiting) {
            this.#ctx.log?.info(`Waiting for the instance that is obtaining "${label}"`, {
              store: this.#ctx.store.label,
              retryInSeconds: this.#ctx.opts.lockRetryMs / 1000,
            });
          }
          this.waiting = true;
          this.schedule(this.#ctx.opts.lockRetryMs);
          return;
        }
        this.waiting = false;
        if (pair.certPem !== this.current?.certPem) this.#adopt(pair);
        if (this.#ruleAt(pair) > Date.now()) {
          await this.#pollRenewalInfo();
          if (this.#ctx.stopped()) return;
        }
      }
      this.failures = 0;
      this.storeDown = false;
      // A certificate that is due as soon as it is issued (renewal window longer than the CA's
      // lifetime, or a suggested window already past) waits a full interval, so the CA is never
      // asked in a tight loop.
      const now = Date.now();
      const untilRenew = this.#dueAt() - now;
      const interval = this.#ctx.opts.checkIntervalMs;
      let delay = untilRenew > 0 ? Math.min(interval, untilRenew) : interval;
      if (this.ari?.certPem === this.current!.certPem) {
        delay = Math.min(delay, Math.max(0, this.ari.nextPollAt - now));
      }
      this.schedule(delay);
    } catch (err) {
      if (this.#ctx.stopped()) return;
      if (isAcmeError(err, "store_unavailable")) {
        // Not the CA's fault: no backoff; the certificate in use keeps being served.
        const fields = {
          store: this.#ctx.store.label,
          retryInSeconds: this.#ctx.opts.lockRetryMs / 1000,
        };
        if (!this.storeDown) {
          this.#ctx.log?.warn(`Cannot check certificate for "${label}": ${errorText(err)}`, fields);
        }
        this.storeDown = true;
        this.schedule(this.#ctx.opts.lockRetryMs);
        return;
      }
      this.failures++;
      const delayMs = Math.min(
        this.#ctx.opts.retryMinMs * 2 ** (this.failures - 1),
        this.#ctx.opts.retryMaxMs,
      );
      this.#ctx.log?.warn(`Cannot obtain certificate for "${label}": ${errorText(err)}`, {
        attempt: this.failures,
        retryInSeconds: delayMs / 1000,
      });
      this.schedule(delayMs);
    }
  }

  /**
   * Takes the stored certificate when there is none in use yet, or (with a shared store) when
   * another instance stored a newer one. A store that cannot be read is an error only while
   * there is no certificate in use.
   */
  async takeStored(fromWatch: boolean): Promise<void> {
    if (this.#ctx.stopped() || (this.current && !this.#ctx.store.shared)) return;
    let stored: CertificatePair | null;
    try {
      stored = await this.#ctx.loadStored(this.names);
    } catch (err) {
      if (this.current || fromWatch) return;
      throw err;
    }
    if (this.#ctx.stopped() || !stored || !isNewer(stored, this.current)) return;
    // At start the stored certificate may be old; later it was just stored by another instance.
    const atStart = this.current === null && !fromWatch;
    this.#ctx.log?.info(
      atStart
        ? `Using stored certificate for "${this.names.join(",")}"`
        : `Using the certificate another instance stored for "${this.names.join(",")}"`,
      { notAfter: stored.notAfter.toISOString() },
    );
    this.#adopt(stored, atStart ? 0 : Date.now());
    this.waiting = false;
  }

  #adopt(pair: CertificatePair, since = Date.now()): void {
    this.current = pair;
    this.since = since;
    this.#deliver(pair);
  }

  /** A throwing callback is the caller's bug: logged, never mistaken for a failed order. */
  #deliver(pair: CertificatePair): void {
    try {
      this.onCertificate(pair);
    } catch (err) {
      this.#ctx.log?.error(
        `Cannot install certificate for "${this.names.join(",")}": ${errorText(err)}`,
      );
    }
  }

  /** When the expiry rule alone renews `pair`. */
  #ruleAt(pair: CertificatePair): number {
    return pair.notAfter.getTime() - this.#ctx.opts.renewBeforeDays * DAY_MS;
  }

  /** When the current certificate is due: its renewal time, but never within checkInterval of
   *  obtaining it (or taking it from another instance). */
  #dueAt(): number {
    return Math.max(this.#renewAt(), this.since + this.#ctx.opts.checkIntervalMs);
  }

  /** When to renew the current certificate: the expiry rule or the CA's suggestion, if sooner. */
  #renewAt(): number {
    const rule = this.#ruleAt(this.current!);
    const ari = this.ari?.certPem === this.current!.certPem ? this.ari.renewAt : undefined;
    return ari === undefined ? rule : Math.min(rule, ari);
  }

  /**
   * Asks the CA for renewal info on the current certificate when it is time to (first time for
   * this certificate, then after Retry-After). Never throws: any failure keeps the last known
   * suggestion (or the expiry rule alone) and is logged at debug level.
   */
  async #pollRenewalInfo(): Promise<void> {
    const cert = this.current!;
    if (this.ari?.certPem !== cert.certPem) {
      this.ari = { certPem: cert.certPem, nextPollAt: 0 };
    }
    const state = this.ari;
    if (state.nextPollAt > Date.now()) return;
    const label = this.names.join(",");
    try {
      const info = await this.#ctx.renewalInfo.lookup(cert.certPem);
      state.nextPollAt = Date.now() + (info?.retryAfterMs ?? ARI_POLL_DEFAULT_MS);
      if (!info) {
        this.#ctx.log?.debug(`No renewal info for "${label}": the CA does not offer it`);
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
          this.#ctx.log?.info(`Renewal info for "${label}" moves the renewal earlier`, fields);
        } else {
          this.#ctx.log?.debug(`Renewal info for "${label}" changes nothing`, fields);
        }
      }
    } catch (err) {
      if (this.#ctx.stopped()) return;
      state.nextPollAt = Date.now() + ARI_POLL_DEFAULT_MS;
      this.#ctx.log?.debug(`Cannot get renewal info for "${label}": ${errorText(err)}`, {
        renewAt: new Date(this.#renewAt()).toISOString(),
      });
    }
  }
}
