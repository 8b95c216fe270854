/**
 * Token buckets for `[sites.rate_limit]`, behind a small interface so a shared store (Redis,
 * `src/cluster/redis_bucket_store.ts`) and this per-process one are interchangeable.
 *
 * The local store keeps one number per key, the time at which that key's bucket is full again
 * (the "theoretical arrival time" of GCRA, which is a token bucket refilled continuously). A
 * full bucket is the same as no bucket, so an entry whose time has passed is dropped: each
 * `take` looks at two more entries of the map and drops those that are full, and past
 * `maxKeys` the oldest entry goes. Memory is bounded whatever number of distinct keys arrive.
 *
 * @module
 */

/** The answer to one `take`. Times in ms, from `now`. */
export interface TakeResult {
  /** The tokens were taken: let the request through. */
  readonly allowed: boolean;
  /** Whole tokens left in the bucket after this take (0 when refused or empty). */
  readonly remaining: number;
  /** When refused: how long until `cost` tokens are there; 0 when allowed. */
  readonly retryAfterMs: number;
  /** How long until the bucket is full again (0 when it is full). */
  readonly resetMs: number;
}

/** The size and refill speed of every bucket of a store. */
export interface BucketParams {
  /** Tokens added per second, continuously (> 0). */
  readonly rate: number;
  /** Bucket size in tokens (≥ 1). */
  readonly burst: number;
}

/**
 * Where buckets live. `take` may answer synchronously (the local store always does; callers
 * pay no promise for it) or with a promise (a networked store).
 *
 * @param now epoch milliseconds (a shared store needs a clock all its users agree on)
 */
export interface BucketStore {
  readonly params: BucketParams;
  take(key: string, cost: number, now: number): TakeResult | Promise<TakeResult>;
}

/** Options of {@link LocalBucketStore}. */
export interface LocalBucketStoreOptions {
  /** Most keys kept at once; past it the oldest key's bucket is forgotten. @default 100_000 */
  readonly maxKeys?: number;
  /** Entries examined for expiry per `take`. @default 2 */
  readonly sweepPerTake?: number;
}

/** A per-process bucket store with bounded memory. */
export class LocalBucketStore implements BucketStore {
  readonly params: BucketParams;
  /** Key → epoch ms at which its bucket is full again. */
  readonly #full = new Map<string, number>();
  /** ms per token. */
  readonly #interval: number;
  /** ms a full bucket stands for (burst × interval). */
  readonly #capacity: number;
  readonly #maxKeys: number;
  readonly #sweepPerTake: number;
  #sweep: Iterator<[string, number]> = this.#full.entries();
  #oldest: Iterator<string> = this.#full.keys();

  constructor(params: BucketParams, opts: LocalBucketStoreOptions = {}) {
    if (!(params.rate > 0) || !(params.burst >= 1)) {
      throw new RangeError(
        `Cannot create a token bucket with rate ${params.rate} and burst ${params.burst}: ` +
          "rate must be > 0 and burst ≥ 1",
      );
    }
    this.params = params;
    this.#interval = 1000 / params.rate;
    this.#capacity = params.burst * this.#interval;
    this.#maxKeys = Math.max(1, opts.maxKeys ?? 100_000);
    this.#sweepPerTake = opts.sweepPerTake ?? 2;
  }

  /** Keys currently remembered (buckets that are not full). */
  get size(): number {
    return this.#full.size;
  }

  /** Epoch ms at which `key`'s bucket is full again, or undefined when it is full (or unknown). */
  fullAt(key: string): number | undefined {
    return this.#full.get(key);
  }

  take(key: string, cost: number, now: number): TakeResult {
    const map = this.#full;
    const known = map.get(key);
    this.#sweepSome(now);
    const base = known !== undefined && known > now ? known : now;
    const next = base + cost * this.#interval;
    const ahead = next - now;
    if (ahead > this.#capacity) {
      // Refused: nothing is taken (a refused request does not delay the next allowed one).
      const wait = ahead - this.#capacity;
      return {
        allowed: false,
        remaining: this.#tokens(base - now),
        retryAfterMs: wait,
        resetMs: base - now,
      };
    }
    if (known === undefined && map.size >= this.#maxKeys) this.#evict(now);
    map.set(key, next);
    return { allowed: true, remaining: this.#tokens(ahead), retryAfterMs: 0, resetMs: ahead };
  }

  /** Whole tokens in a bucket that is full again in `aheadMs`. */
  #tokens(aheadMs: number): number {
    return Math.max(0, Math.floor((this.#capacity - aheadMs) / this.#interval + 1e-9));
  }

  /** Advances the sweep over a few entries, dropping those whose bucket is full by `now`. */
  #sweepSome(now: number): void {
    for (let i = 0; i < this.#sweepPerTake; i++) {
      const step = this.#sweep.next();
      if (step.done) {
        this.#sweep = this.#full.entries();
        return;
      }
      if (step.value[1] <= now) this.#full.delete(step.value[0]);
    }
  }

  /** Makes room for one key: a full bucket found by a short scan, else the oldest key. */
  #evict(now: number): void {
    const before = this.#full.size;
    for (let i = 0; i < 4 && this.#full.size === before; i++) this.#sweepSome(now);
    if (this.#full.size < before) return;
    // A live iterator kept across calls: a fresh one would first step over every slot that
    // earlier evictions emptied.
    let oldest = this.#oldest.next();
    if (oldest.done) {
      this.#oldest = this.#full.keys();
      oldest = this.#oldest.next();
    }
    if (!oldest.done) this.#full.delete(oldest.value);
  }
}
