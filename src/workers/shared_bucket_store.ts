/**
 * Rate-limit buckets shared by every worker thread of the process (`server.workers`, SPEC 12):
 * the same GCRA as {@linkcode LocalBucketStore} (one number per key, the time its bucket is full
 * again), kept in a {@linkcode SharedKeyTable}. A take is answered synchronously, under a lock
 * held for a few hundred nanoseconds; a full bucket is the same as no bucket, so such entries
 * are reused first, and past the table's size the bucket nearest to full is forgotten.
 *
 * @module
 */

import type { BucketParams, BucketStore, TakeResult } from "../edge/bucket_store.ts";
import type { BucketStoreFactory } from "../edge/rate_limit.ts";
import type { SharedKeyTable, UpdatePolicy } from "./shared_key_table.ts";

/** One rate limit's buckets in the shared table (keys are namespaced by its scope). */
export class SharedBucketStore implements BucketStore {
  readonly params: BucketParams;
  readonly #table: SharedKeyTable;
  readonly #prefix: string;
  /** ms per token. */
  readonly #interval: number;
  /** ms a full bucket stands for (burst × interval). */
  readonly #capacity: number;

  constructor(table: SharedKeyTable, params: BucketParams, scope: string) {
    if (!(params.rate > 0) || !(params.burst >= 1)) {
      throw new RangeError(
        `Cannot create a token bucket with rate ${params.rate} and burst ${params.burst}: ` +
          "rate must be > 0 and burst ≥ 1",
      );
    }
    this.params = params;
    this.#table = table;
    this.#prefix = `${scope}\u0000`;
    this.#interval = 1000 / params.rate;
    this.#capacity = params.burst * this.#interval;
  }

  take(key: string, cost: number, now: number): TakeResult {
    let result: TakeResult | null = null;
    const policy: UpdatePolicy = { isFree: (full) => full <= now, evict: true };
    this.#table.update(this.#prefix + key, policy, (known) => {
      const base = known !== undefined && known > now ? known : now;
      const next = base + cost * this.#interval;
      const ahead = next - now;
      if (ahead > this.#capacity) {
        // Refused: nothing is taken (a refused request does not delay the next allowed one).
        result = {
          allowed: false,
          remaining: this.#tokens(base - now),
          retryAfterMs: ahead - this.#capacity,
          resetMs: base - now,
        };
        return undefined;
      }
      result = { allowed: true, remaining: this.#tokens(ahead), retryAfterMs: 0, resetMs: ahead };
      return next;
    });
    return result!;
  }

  /** Whole tokens in a bucket that is full again in `aheadMs`. */
  #tokens(aheadMs: number): number {
    return Math.max(0, Math.floor((this.#capacity - aheadMs) / this.#interval + 1e-9));
  }
}

/** Stores for every rate limit of a plan, all in `table`. */
export function sharedBucketStores(table: SharedKeyTable): BucketStoreFactory {
  return (config, scope) =>
    new SharedBucketStore(table, { rate: config.rate, burst: config.burst }, scope);
}
