/**
 * Live state of one upstream member: request counters, passive health (sliding failure window,
 * ejection, half-open probe) and the verdict of active checks. One instance per
 * `${site}/${group}/${url}` key, owned by {@linkcode HostRegistry} so it survives reloads.
 *
 * Times are `performance.now()` milliseconds (monotonic).
 *
 * @module
 */

import type { PassiveHealthConfig } from "../config/types.ts";

/** Monotonic clock in milliseconds used by every health decision. */
export function monotonicNow(): number {
  return performance.now();
}

/**
 * State of one upstream member shared by the balancer, the proxy and the health checkers.
 *
 * Concurrency note: everything runs on the JS event loop, so counter updates cannot interleave;
 * a request that started before an ejection may still report afterwards, which only adds a
 * failure to the window or, when half-open, decides the probe early (harmless either way).
 */
export class HostState {
  /** `${site}/${group}/${url}`. */
  readonly key: string;
  /** Requests currently in flight (incremented and decremented by the proxy). */
  inFlight = 0;
  /** Open WebSocket pairs (incremented and decremented by the WebSocket relay). */
  webSockets = 0;

  #passive: PassiveHealthConfig;
  /** Times of recent failures, oldest first; never longer than `maxFails`. */
  #failures: number[] = [];
  /** 0 when not ejected; else the time the ejection ends (half-open from then on). */
  #ejectedUntil = 0;
  /** When half-open: time the probe request was handed out (0 = no probe out). */
  #probeAt = 0;
  #activeUp = true;
  /** The checker whose results count (the newest started group's); null when none. */
  #activeOwner: object | null = null;
  #activePasses = 0;
  #activeFails = 0;
  /** Consecutive passing active checks since the current passive ejection began. */
  #passesSinceEject = 0;
  #lastError = "";
  #totalRequests = 0;
  #totalFailures = 0;

  constructor(key: string, passive: PassiveHealthConfig) {
    this.key = key;
    this.#passive = passive;
  }

  /** Replaces the passive health settings (after a reload); the failure window is kept. */
  configure(passive: PassiveHealthConfig): void {
    this.#passive = passive;
    if (!passive.enabled) this.#resetPassive();
  }

  /** Verdict of active checks; true when they are disabled. */
  get activeUp(): boolean {
    return this.#activeUp;
  }

  /** Last failure reason reported (passive or active), "" when none yet. */
  get lastError(): string {
    return this.#lastError;
  }

  /** Requests that completed with a success or a failure report. */
  get totalRequests(): number {
    return this.#totalRequests;
  }

  /** Requests that reported a failure. */
  get totalFailures(): number {
    return this.#totalFailures;
  }

  /** Failures inside the current `fail_timeout` window. */
  recentFailures(now: number = monotonicNow()): number {
    this.#expire(now);
    return this.#failures.length;
  }

  /** True while passively ejected (before the half-open point). */
  isEjected(now: number = monotonicNow()): boolean {
    return this.#ejectedUntil > 0 && now < this.#ejectedUntil;
  }

  /**
   * True when the member may receive requests: active checks say up, and it is not passively
   * ejected. After `fail_timeout` an ejected member is half-open: live until one probe request
   * has been handed out (see {@linkcode claimProbe}), and again if that probe never reports
   * within another `fail_timeout`.
   */
  isLive(now: number = monotonicNow()): boolean {
    if (!this.#activeUp) return false;
    if (this.#ejectedUntil === 0) return true;
    if (now < this.#ejectedUntil) return false;
    return this.#probeAt === 0 || now - this.#probeAt >= this.#passive.failTimeout * 1000;
  }

  /** Called by the balancer for the member it picked: takes the half-open probe slot. */
  claimProbe(now: number = monotonicNow()): void {
    if (this.#ejectedUntil > 0 && now >= this.#ejectedUntil) this.#probeAt = now;
  }

  /**
   * Reports a request that reached the upstream and got a response (any HTTP status). Ends a
   * passive ejection when it was the half-open probe, or when `probe` is true: the proxy sent
   * this request to the member on purpose while it was ejected (`retry.try_duration`).
   *
   * @param probe the request was a deliberate probe of an ejected member @default false
   */
  recordSuccess(probe = false): void {
    this.#totalRequests++;
    if (this.#ejectedUntil > 0 && (probe || monotonicNow() >= this.#ejectedUntil)) {
      this.#resetPassive();
    }
  }

  /** Reports a connect failure, reset or timeout (not an HTTP 5xx). */
  recordFailure(reason: string): void {
    this.#totalRequests++;
    this.#totalFailures++;
    this.#lastError = reason;
    const p = this.#passive;
    if (!p.enabled) return;
    const now = monotonicNow();
    if (this.#ejectedUntil > 0) {
      // Half-open probe failed (or a late report after the window): eject again.
      if (now >= this.#ejectedUntil) this.#eject(now);
      return;
    }
    this.#expire(now);
    this.#failures.push(now);
    if (this.#failures.length >= p.maxFails) this.#eject(now);
  }

  /**
   * Makes `owner` the only active checker whose results count (a reload starts the new group's
   * checker before the old one is stopped). `null` means checks are off: the member is up.
   */
  claimActive(owner: object | null): void {
    if (owner === this.#activeOwner) return;
    this.#activeOwner = owner;
    this.#activePasses = 0;
    this.#activeFails = 0;
    if (owner === null) this.#activeUp = true;
  }

  /**
   * Records one active check result from `owner` (ignored unless it holds the claim). Returns
   * the new `activeUp` when it changed, else null. Down after `retries` consecutive failures,
   * up after `rise` consecutive passes. `rise` consecutive passes that all came after a passive
   * ejection also end that ejection early: the checks have seen the member recover (a restarted
   * backend is back after about interval × rise instead of a whole `fail_timeout`).
   */
  recordCheck(
    owner: object,
    ok: boolean,
    retries: number,
    rise: number,
    error = "",
  ): boolean | null {
    if (owner !== this.#activeOwner) return null;
    if (ok) {
      this.#activeFails = 0;
      this.#activePasses++;
      if (this.#ejectedUntil > 0 && ++this.#passesSinceEject >= rise) this.#resetPassive();
      if (!this.#activeUp && this.#activePasses >= rise) {
        this.#activeUp = true;
        return true;
      }
    } else {
      this.#activePasses = 0;
      this.#passesSinceEject = 0;
      this.#activeFails++;
      if (error) this.#lastError = error;
      if (this.#activeUp && this.#activeFails >= retries) {
        this.#activeUp = false;
        return false;
      }
    }
    return null;
  }

  #eject(now: number): void {
    this.#ejectedUntil = now + this.#passive.failTimeout * 1000;
    this.#probeAt = 0;
    this.#passesSinceEject = 0;
    this.#failures.length = 0;
  }

  #resetPassive(): void {
    this.#ejectedUntil = 0;
    this.#probeAt = 0;
    this.#failures.length = 0;
  }

  #expire(now: number): void {
    const horizon = now - this.#passive.failTimeout * 1000;
    let drop = 0;
    while (drop < this.#failures.length && this.#failures[drop] <= horizon) drop++;
    if (drop > 0) this.#failures.splice(0, drop);
  }
}
