/**
 * Rate-limit buckets shared by every bws of a fleet: the same GCRA as `LocalBucketStore` (one
 * number per key, the instant its bucket is full again), kept in Redis and updated by one Lua
 * script per request, so a take is atomic across instances and costs one round trip.
 *
 * Time comes from the Redis server (`TIME`), in microseconds, so hosts whose clocks differ still
 * agree. A key expires from Redis when its bucket is full again.
 *
 * Redis down or slow: a take never waits longer than the link's request deadline. While the link
 * is not usable, takes go to a per-process `LocalBucketStore` without asking Redis; the keys
 * taken locally are remembered (up to a bound), and when Redis answers again each one's local
 * state is merged into Redis (the later "full again" instant wins), so a client that spent its
 * burst during the outage does not get a second one.
 *
 * @module
 */

import type { RateLimitConfig } from "../config/types.ts";
import {
  type BucketParams,
  type BucketStore,
  LocalBucketStore,
  type TakeResult,
} from "../edge/bucket_store.ts";
import type { BucketStoreFactory } from "../edge/rate_limit.ts";
import { LuaScript, type RedisLink, type RedisReply } from "./redis_link.ts";

/** KEYS[1] bucket; ARGV: µs per token, µs a full bucket stands for, tokens wanted. */
const TAKE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local ahead = tat + tonumber(ARGV[3]) * interval - now
if ahead > capacity then
  return {0, tat - now, ahead - capacity}
end
redis.call('SET', KEYS[1], string.format('%.0f', now + ahead), 'PX', math.ceil(ahead / 1000) + 1)
return {1, ahead, 0}
`);

/** KEYS[1] bucket; ARGV[1] µs until it is full again by the local store's reckoning. */
const MERGE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ahead = tonumber(ARGV[1])
local want = now + ahead
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < want then
  redis.call('SET', KEYS[1], string.format('%.0f', want), 'PX', math.ceil(ahead / 1000) + 1)
  return 1
end
return 0
`);

/** Options of {@link RedisBucketStore}. */
export interface RedisBucketStoreOptions {
  /** Most keys remembered for the merge after an outage. @default 10_000 */
  readonly maxCatchUpKeys?: number;
}

/** A bucket store in Redis with a local fallback (see the module doc). */
export class RedisBucketStore implements BucketStore {
  readonly params: BucketParams;
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #intervalUs: number;
  readonly #capacityUs: number;
  readonly #local: LocalBucketStore;
  readonly #touched = new Set<string>();
  readonly #maxTouched: number;
  /** Takes answered locally because Redis could not be asked (for tests and status). */
  fallbackTakes = 0;

  /** @param prefix prepended to every bucket key, e.g. `bws:rl:site/main:` */
  constructor(
    params: BucketParams,
    link: RedisLink,
    prefix: string,
    opts: RedisBucketStoreOptions = {},
  ) {
    this.#local = new LocalBucketStore(params); // validates params
    this.params = params;
    this.#link = link;
    this.#prefix = prefix;
    this.#intervalUs = 1e6 / params.rate;
    this.#capacityUs = params.burst * this.#intervalUs;
    this.#maxTouched = opts.maxCatchUpKeys ?? 10_000;
  }

  take(key: string, cost: number, now: number): TakeResult | Promise<TakeResult> {
    if (!this.#link.usable) return this.#takeLocally(key, cost, now);
    return this.#link.eval(
      TAKE,
      [this.#prefix + key],
      [this.#intervalUs.toFixed(3), this.#capacityUs.toFixed(3), cost],
      { urgent: true },
    ).then(
      (reply) => this.#result(reply),
      () => this.#takeLocally(key, cost, now),
    );
  }

  /**
   * Merges the buckets taken locally during an outage into Redis; keys whose merge fails stay
   * for the next try. Resolves with the number of keys merged.
   */
  async catchUp(now: number = Date.now()): Promise<number> {
    let merged = 0;
    for (const key of [...this.#touched]) {
      const fullAt = this.#local.fullAt(key);
      if (fullAt === undefined || fullAt <= now) {
        this.#touched.delete(key);
        continue;
      }
      try {
        await this.#link.eval(MERGE, [this.#prefix + key], [Math.ceil((fullAt - now) * 1000)]);
        this.#touched.delete(key);
        merged++;
      } catch {
        return merged; // Redis went away again: the rest waits for the next catch-up
      }
    }
    return merged;
  }

  #takeLocally(key: string, cost: number, now: number): TakeResult {
    this.fallbackTakes++;
    const result = this.#local.take(key, cost, now);
    if (result.allowed && this.#touched.size < this.#maxTouched) this.#touched.add(key);
    return result;
  }

  #result(reply: RedisReply): TakeResult {
    const [allowed, aheadUs, waitUs] = reply as number[];
    if (allowed === 1) {
      return {
        allowed: true,
        remaining: this.#tokens(aheadUs),
        retryAfterMs: 0,
        resetMs: aheadUs / 1000,
      };
    }
    return {
      allowed: false,
      remaining: this.#tokens(aheadUs),
      retryAfterMs: waitUs / 1000,
      resetMs: aheadUs / 1000,
    };
  }

  /** Whole tokens in a bucket that is full again in `aheadUs`. */
  #tokens(aheadUs: number): number {
    return Math.max(0, Math.floor((this.#capacityUs - aheadUs) / this.#intervalUs + 1e-9));
  }
}

/**
 * The fleet's bucket stores, one per rate-limit scope ("site/main", "site/main/route/api/"),
 * kept across reloads while a scope's rate and burst stay the same. After an outage, every store
 * merges what it took locally once Redis answers again.
 */
export class SharedBuckets {
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #stores = new Map<string, RedisBucketStore>();
  readonly #off: () => void;

  /** @param prefix the fleet's key prefix plus "rl:", e.g. `bws:rl:` */
  constructor(link: RedisLink, prefix: string) {
    this.#link = link;
    this.#prefix = prefix;
    let wasUp = link.state === "up";
    this.#off = link.onState((state) => {
      if (state === "up" && !wasUp) void this.catchUp();
      wasUp = state === "up";
    });
  }

  /** The factory handed to the plan compiler. */
  readonly factory: BucketStoreFactory = (config: RateLimitConfig, scope: string) => {
    const old = this.#stores.get(scope);
    if (old && old.params.rate === config.rate && old.params.burst === config.burst) return old;
    const store = new RedisBucketStore(
      { rate: config.rate, burst: config.burst },
      this.#link,
      `${this.#prefix}${scope}:`,
    );
    this.#stores.set(scope, store);
    return store;
  };

  /** Merges every store's local takes into Redis; resolves with the keys merged. */
  async catchUp(): Promise<number> {
    let n = 0;
    for (const store of this.#stores.values()) n += await store.catchUp();
    return n;
  }

  close(): void {
    this.#off();
  }
}
