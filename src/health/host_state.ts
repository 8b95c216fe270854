/**
 * Live state of one upstream member: request counters, passive health (sliding failure window,
 * ejection, half-open probe) and the verdict of active checks. One instance per
 * `${site}/${group}/${url}` key, owned by {@linkcode HostRegistry} so it survives reloads.
 *
 * The numbers live in {@linkcode HostCells}: a private block, or a slot of a shared table that
 * every worker thread maps (`server.workers`, SPEC 12), so that a failure one worker sees counts
 * for all and least_connections reads the in-flight requests of the whole process.
 *
 * Times are {@linkcode monotonicNow} milliseconds.
 *
 * @module
 */

import { ERROR_BYTES, F64, HostCells, I32 } from "./host_cells.ts";

/** Added to `performance.now()` so that every thread of the process reads the same clock. */
let clockOffset = 0;

/**
 * Aligns this thread's {@linkcode monotonicNow} with the thread whose `performance.timeOrigin`
 * is `originMs` (a worker thread calls it with its supervisor's origin before anything else).
 */
export function alignClock(originMs: number): void {
  clockOffset = performance.timeOrigin - originMs;
}

/** Monotonic clock in milliseconds used by every health decision (the same in every thread). */
export function monotonicNow(): number {
  return performance.now() + clockOffset;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * State of one upstream member shared by the balancer, the proxy and the health checkers.
 *
 * Concurrency note: within a thread everything runs on the event loop; across threads each
 * thread counts in cells of its own and multi-cell updates hold the slot's lock. A request
 * that started before an ejection may still report afterwards, which only adds a failure to the
 * window or, when half-open, decides the probe early (harmless either way).
 */
/** `[sites.proxy.passive_health]` as the state runs it (the plan converts it once). */
export interface PassiveHealth {
  readonly enabled: boolean;
  /** Failures inside the window that eject the member. */
  readonly maxFails: number;
  /** The failure window, and how long an ejection lasts. */
  readonly failTimeoutMs: number;
}

export class HostState {
  /** `${site}/${group}/${url}`. */
  readonly key: string;
  readonly #c: HostCells;
  #passive: PassiveHealth;
  /** The checker whose results count (the newest started group's); null when none. Only the
   * thread running active checks (the supervisor) uses it. */
  #activeOwner: object | null = null;
  #activePasses = 0;
  #activeFails = 0;

  /** @param cells where the numbers live @default a private block */
  constructor(key: string, passive: PassiveHealth, cells?: HostCells) {
    this.key = key;
    this.#passive = passive;
    this.#c = cells ?? HostCells.private(ringSize(passive));
    this.#c.lock();
    this.#c.ensureRing(ringSize(passive));
    this.#c.unlock();
  }

  /** Requests currently in flight (every thread's). Change it with {@linkcode addInFlight}. */
  get inFlight(): number {
    return this.#sumCounts(0);
  }

  /** Sets the count outright (tests). */
  set inFlight(n: number) {
    this.#c.i32[this.#c.counts] += n - this.#sumCounts(0);
  }

  /** Open WebSocket pairs (every thread's). Change it with {@linkcode addWebSockets}. */
  get webSockets(): number {
    return this.#sumCounts(1);
  }

  /** Sets the count outright (tests). */
  set webSockets(n: number) {
    this.#c.i32[this.#c.counts + 1] += n - this.#sumCounts(1);
  }

  /** Adds `delta` to this thread's in-flight requests (+1 when sent, -1 when over). */
  addInFlight(delta: number): void {
    this.#c.i32[this.#c.counts] += delta;
  }

  /** Adds `delta` to this thread's open WebSocket pairs. */
  addWebSockets(delta: number): void {
    this.#c.i32[this.#c.counts + 1] += delta;
  }

  /** Replaces the passive health settings (after a reload); the failure window is kept. */
  configure(passive: PassiveHealth): void {
    this.#passive = passive;
    const c = this.#c;
    c.lock();
    c.ensureRing(ringSize(passive));
    if (!passive.enabled) this.#resetPassive();
    c.unlock();
  }

  /** Verdict of active checks; true when they are disabled. */
  get activeUp(): boolean {
    return this.#c.i32[this.#c.i + I32.ACTIVE_DOWN] === 0;
  }

  /** Last failure reason reported (passive or active), "" when none yet. */
  get lastError(): string {
    const c = this.#c;
    c.lock();
    const n = c.i32[c.i + I32.ERR_LEN];
    const text = n === 0 ? "" : decoder.decode(c.u8.slice(c.b, c.b + n));
    c.unlock();
    return text;
  }

  /** Requests that completed with a success or a failure report (every thread's). */
  get totalRequests(): number {
    return this.#sumTotals(0);
  }

  /** Requests that reported a failure (every thread's). */
  get totalFailures(): number {
    return this.#sumTotals(1);
  }

  /** Failures inside the current `fail_timeout` window. */
  recentFailures(now: number = monotonicNow()): number {
    const c = this.#c;
    c.lock();
    this.#expire(now);
    const n = c.i32[c.i + I32.FAIL_COUNT];
    c.unlock();
    return n;
  }

  /** True while passively ejected (before the half-open point). */
  isEjected(now: number = monotonicNow()): boolean {
    const until = this.#c.f64[this.#c.f + F64.EJECTED_UNTIL];
    return until > 0 && now < until;
  }

  /**
   * True when the member may receive requests: active checks say up, and it is not passively
   * ejected. After `fail_timeout` an ejected member is half-open: live until one probe request
   * has been handed out (see {@linkcode claimProbe}), and again if that probe never reports
   * within another `fail_timeout`.
   */
  isLive(now?: number): boolean {
    const c = this.#c;
    if (c.i32[c.i + I32.ACTIVE_DOWN] !== 0) return false;
    const until = c.f64[c.f + F64.EJECTED_UNTIL];
    if (until === 0) return true;
    // The clock is read only for an ejected member (not on every pick).
    now ??= monotonicNow();
    if (now < until) return false;
    const probeAt = c.f64[c.f + F64.PROBE_AT];
    return probeAt === 0 || now - probeAt >= this.#passive.failTimeoutMs;
  }

  /** Called by the balancer for the member it picked: takes the half-open probe slot. */
  claimProbe(now?: number): void {
    const c = this.#c;
    const until = c.f64[c.f + F64.EJECTED_UNTIL];
    if (until === 0) return;
    now ??= monotonicNow();
    if (now < until) return;
    c.lock();
    const u = c.f64[c.f + F64.EJECTED_UNTIL];
    if (u > 0 && now >= u) c.f64[c.f + F64.PROBE_AT] = now;
    c.unlock();
  }

  /**
   * Reports a request that reached the upstream and got a response (any HTTP status). Ends a
   * passive ejection when it was the half-open probe, or when `probe` is true: the proxy sent
   * this request to the member on purpose while it was ejected (`retry.try_duration`).
   *
   * @param probe the request was a deliberate probe of an ejected member @default false
   */
  recordSuccess(probe = false): void {
    const c = this.#c;
    c.f64[c.totals]++;
    if (c.f64[c.f + F64.EJECTED_UNTIL] === 0) return;
    c.lock();
    const until = c.f64[c.f + F64.EJECTED_UNTIL];
    if (until > 0 && (probe || monotonicNow() >= until)) this.#resetPassive();
    c.unlock();
  }

  /** Reports a connect failure, reset or timeout (not an HTTP 5xx). */
  recordFailure(reason: string): void {
    const c = this.#c;
    c.f64[c.totals]++;
    c.f64[c.totals + 1]++;
    const p = this.#passive;
    c.lock();
    this.#setError(reason);
    if (p.enabled) {
      const now = monotonicNow();
      const until = c.f64[c.f + F64.EJECTED_UNTIL];
      if (until > 0) {
        // Half-open probe failed (or a late report after the window): eject again.
        if (now >= until) this.#eject(now);
      } else {
        this.#expire(now);
        this.#pushFailure(now);
        if (c.i32[c.i + I32.FAIL_COUNT] >= p.maxFails) this.#eject(now);
      }
    }
    c.unlock();
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
    if (owner === null) Atomics.store(this.#c.i32, this.#c.i + I32.ACTIVE_DOWN, 0);
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
    const c = this.#c;
    const up = this.activeUp;
    c.lock();
    let changed: boolean | null = null;
    if (ok) {
      this.#activeFails = 0;
      this.#activePasses++;
      if (c.f64[c.f + F64.EJECTED_UNTIL] > 0 && ++c.i32[c.i + I32.PASSES] >= rise) {
        this.#resetPassive();
      }
      if (!up && this.#activePasses >= rise) changed = true;
    } else {
      this.#activePasses = 0;
      c.i32[c.i + I32.PASSES] = 0;
      this.#activeFails++;
      if (error) this.#setError(error);
      if (up && this.#activeFails >= retries) changed = false;
    }
    c.unlock();
    if (changed !== null) Atomics.store(c.i32, c.i + I32.ACTIVE_DOWN, changed ? 0 : 1);
    return changed;
  }

  #sumCounts(which: 0 | 1): number {
    const c = this.#c;
    if (c.threads === 1) return c.i32[c.counts + which];
    let n = 0;
    for (let t = 0; t < c.threads; t++) n += c.i32[c.i + I32.COUNTS + 2 * t + which];
    return n;
  }

  #sumTotals(which: 0 | 1): number {
    const c = this.#c;
    let n = 0;
    for (let t = 0; t < c.threads; t++) n += c.f64[c.f + F64.TOTALS + 2 * t + which];
    return n;
  }

  /** Under the lock. */
  #setError(text: string): void {
    const c = this.#c;
    if (text.length > ERROR_BYTES) text = text.slice(0, ERROR_BYTES);
    const { written } = encoder.encodeInto(text, c.u8.subarray(c.b, c.b + ERROR_BYTES));
    c.i32[c.i + I32.ERR_LEN] = written;
  }

  /** Under the lock. */
  #pushFailure(now: number): void {
    const c = this.#c;
    const i32 = c.i32;
    const cap = i32[c.i + I32.RING_CAP];
    const count = i32[c.i + I32.FAIL_COUNT];
    const head = i32[c.i + I32.FAIL_HEAD];
    const at = i32[c.i + I32.RING_AT];
    if (count < cap) {
      c.f64[at + ((head + count) % cap)] = now;
      i32[c.i + I32.FAIL_COUNT] = count + 1;
    } else {
      // Full (a worker's view of a ring the supervisor could not grow): drop the oldest.
      c.f64[at + head] = now;
      i32[c.i + I32.FAIL_HEAD] = (head + 1) % cap;
    }
  }

  /** Under the lock. */
  #eject(now: number): void {
    const c = this.#c;
    c.f64[c.f + F64.EJECTED_UNTIL] = now + this.#passive.failTimeoutMs;
    c.f64[c.f + F64.PROBE_AT] = 0;
    c.i32[c.i + I32.PASSES] = 0;
    c.i32[c.i + I32.FAIL_COUNT] = 0;
    c.i32[c.i + I32.FAIL_HEAD] = 0;
  }

  /** Under the lock. */
  #resetPassive(): void {
    const c = this.#c;
    c.f64[c.f + F64.EJECTED_UNTIL] = 0;
    c.f64[c.f + F64.PROBE_AT] = 0;
    c.i32[c.i + I32.FAIL_COUNT] = 0;
    c.i32[c.i + I32.FAIL_HEAD] = 0;
  }

  /** Under the lock: drops failures older than `fail_timeout`. */
  #expire(now: number): void {
    const c = this.#c;
    const i32 = c.i32;
    const horizon = now - this.#passive.failTimeoutMs;
    const cap = i32[c.i + I32.RING_CAP];
    const at = i32[c.i + I32.RING_AT];
    let count = i32[c.i + I32.FAIL_COUNT];
    let head = i32[c.i + I32.FAIL_HEAD];
    while (count > 0 && c.f64[at + head] <= horizon) {
      head = (head + 1) % cap;
      count--;
    }
    i32[c.i + I32.FAIL_COUNT] = count;
    i32[c.i + I32.FAIL_HEAD] = count === 0 ? 0 : head;
  }
}

/** Ring entries a passive config needs. */
function ringSize(passive: PassiveHealth): number {
  return Math.max(1, passive.maxFails);
}
