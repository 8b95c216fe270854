/**
 * Token buckets for `[sites.rate_limit]`, behind a small interface so a shared store (Redis,
 * `src/cluster/redis_bucket_store.ts`) and this per-process one are interchangeable.
 *
 * The local store keeps one number per key, the time at which that key's bucket is full again
 * (the "theoretical arrival time" of GCRA, which is a token bucket refilled continuously). A
 * full bucket is the same as no bucket, so keys are kept in two generations of typed-array
 * tables (no heap object per key): a generation whose buckets are all full again is dropped as
 * a whole, a new one begins once the last was dropped and the current one is a token interval
 * old (at least 50 ms), and past `maxKeys` the older generation is forgotten, full or not.
 * Memory is bounded whatever number of distinct keys arrive: 16 bytes per slot, at most
 * 2 x maxKeys slots (3.2 MB for the default 100 000 keys, allocated as they are needed).
 *
 * @module
 */

import { KeyTimeTable } from "./key_time_table.ts";

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
  /** Most keys kept at once; past it the oldest keys' buckets are forgotten. @default 100_000 */
  readonly maxKeys?: number;
}

/** Shortest time between two generations. */
const MIN_GENERATION_MS = 50;

/** A per-process bucket store with bounded memory. */
export class LocalBucketStore implements BucketStore {
  readonly params: BucketParams;
  /** Keys taken from since `#youngSince` → epoch ms at which their bucket is full again. */
  #young: KeyTimeTable;
  /** The generation before: looked at when a key is not in `#young`, never written. */
  #old: KeyTimeTable;
  #youngSince = -Infinity;
  /** Every bucket of the young / old generation is full again by then. */
  #youngFullBy = -Infinity;
  #oldFullBy = -Infinity;
  /** ms per token. */
  readonly #interval: number;
  /** ms a full bucket stands for (burst × interval): no bucket stays not-full longer. */
  readonly #capacity: number;
  /** How long a generation lasts at least before the next begins. */
  readonly #generationMs: number;

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
    this.#generationMs = Math.max(MIN_GENERATION_MS, this.#interval);
    const perGeneration = Math.max(1, Math.floor((opts.maxKeys ?? 100_000) / 2));
    this.#young = new KeyTimeTable(perGeneration);
    this.#old = new KeyTimeTable(perGeneration);
  }

  /** Keys currently remembered (a key taken from in both generations counts twice). */
  get size(): number {
    return this.#young.size + this.#old.size;
  }

  /** Bytes of the tables holding the keys (allocated as keys arrive, never more than
   * 40 × maxKeys rounded up to powers of two). */
  get bytes(): number {
    return this.#young.bytes + this.#old.bytes;
  }

  /** Epoch ms at which `key`'s bucket is full again, or undefined when it is full (or unknown). */
  fullAt(key: string): number | undefined {
    let t = this.#young.get(key);
    if (t !== t) t = this.#old.get(key); // NaN: not in the young generation
    return t === t ? t : undefined;
  }

  take(key: string, cost: number, now: number): TakeResult {
    this.#age(now);
    const young = this.#young;
    let known = young.get(key);
    const inYoung = known === known; // not NaN
    if (!inYoung && this.#old.size > 0) known = this.#old.get(key);
    const base = known > now ? known : now; // NaN > now is false
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
    // Past the key cap the old generation is forgotten, full or not.
    if (!inYoung && young.full) this.#rotate(now);
    this.#young.setLast(next); // every lookup above hashed this key
    if (next > this.#youngFullBy) this.#youngFullBy = next;
    return { allowed: true, remaining: this.#tokens(ahead), retryAfterMs: 0, resetMs: ahead };
  }

  /** Whole tokens in a bucket that is full again in `aheadMs`. */
  #tokens(aheadMs: number): number {
    return Math.max(0, Math.floor((this.#capacity - aheadMs) / this.#interval + 1e-9));
  }

  /**
   * Forgets the generations whose buckets are all full again, and starts a new generation once
   * the young one is old enough and the old one is gone: keys that stopped coming are dropped
   * about a generation after their bucket is full.
   */
  #age(now: number): void {
    if (now >= this.#oldFullBy) this.#old.clear();
    if (now >= this.#youngFullBy) {
      this.#young.clear();
      this.#youngSince = now;
    } else if (this.#old.size === 0 && now - this.#youngSince >= this.#generationMs) {
      this.#rotate(now);
    }
  }

  #rotate(now: number): void {
    const dropped = this.#old;
    dropped.clear();
    this.#old = this.#young;
    this.#oldFullBy = this.#youngFullBy;
    this.#young = dropped;
    this.#youngFullBy = -Infinity;
    this.#youngSince = now;
  }
}
