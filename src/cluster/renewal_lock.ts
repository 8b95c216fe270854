/**
 * A lock in Redis with an expiry and a fencing token: `SET key token NX PX ttl` takes it, the
 * holder extends it every third of the ttl, and renewal, release and fenced writes each check
 * the token in one Lua script, so a holder that paused past the expiry (and lost the lock to
 * another instance) can neither extend, free nor write over the new holder's work. A holder
 * that crashes stops extending: the lock is free again within one ttl.
 *
 * @module
 */

import type { RenewalLease } from "../acme/store.ts";
import { LuaScript, type RedisLink } from "./redis_link.ts";

/** KEYS[1] lock; ARGV: token, ttl ms. */
const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`);

/** KEYS[1] lock; ARGV[1] token. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);

/**
 * KEYS[1] lock, KEYS[2] the key to write; ARGV: token, value, channel ("" for none), message.
 * Writes and publishes only while the token holds the lock.
 */
export const FENCED_SET = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1
`);

/** Options of {@link RedisLocks}. */
export interface RedisLocksOptions {
  /** How long a lock outlives its last renewal. @default 60_000 */
  readonly ttlMs?: number;
  /** Names this process in tokens (seen with `GET` on a lock key). */
  readonly owner: string;
  /** Told when a held lock turns out to be lost. */
  readonly onLost?: (key: string, why: string) => void;
}

/** Takes locks in Redis (see the module doc). */
export class RedisLocks {
  readonly #link: RedisLink;
  readonly ttlMs: number;
  readonly #owner: string;
  readonly #onLost?: (key: string, why: string) => void;

  constructor(link: RedisLink, opts: RedisLocksOptions) {
    this.#link = link;
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.#owner = opts.owner;
    this.#onLost = opts.onLost;
  }

  /** The lock of `key`, kept alive until released; null when someone else holds it. Rejects
   *  (RedisUnavailableError) when Redis cannot be asked. */
  async acquire(key: string): Promise<RedisLease | null> {
    const token = `${this.#owner}/${crypto.randomUUID()}`;
    const started = Date.now();
    const reply = await this.#link.command(["SET", key, token, "NX", "PX", this.ttlMs]);
    if (reply !== "OK") return null;
    return new RedisLease(this.#link, key, token, this.ttlMs, started, this.#onLost);
  }
}

/** A held lock; renews itself until {@link RedisLease.release}. */
export class RedisLease implements RenewalLease {
  readonly key: string;
  readonly token: string;
  readonly #link: RedisLink;
  readonly #ttlMs: number;
  /** When the lock was last known ours (the start of the command that confirmed it). */
  #confirmedAt: number;
  #lost = false;
  #released = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onLost?: (key: string, why: string) => void;

  constructor(
    link: RedisLink,
    key: string,
    token: string,
    ttlMs: number,
    confirmedAt: number,
    onLost?: (key: string, why: string) => void,
  ) {
    this.#link = link;
    this.key = key;
    this.token = token;
    this.#ttlMs = ttlMs;
    this.#confirmedAt = confirmedAt;
    this.#onLost = onLost;
    this.#schedule();
  }

  /** Still ours: not refused by Redis, and confirmed within the ttl. */
  get held(): boolean {
    return !this.#lost && !this.#released && Date.now() - this.#confirmedAt < this.#ttlMs;
  }

  /** Extends the lock by one ttl; false (and lost for good) when the token no longer holds it. */
  async renew(): Promise<boolean> {
    if (this.#lost || this.#released) return false;
    const started = Date.now();
    const reply = await this.#link.eval(RENEW, [this.key], [this.token, this.#ttlMs]);
    if (reply === 1) {
      this.#confirmedAt = started;
      return true;
    }
    this.#lose("another instance holds it now");
    return false;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#timer);
    if (this.#lost) return;
    // Not ours any more (expired): nothing to free, and the new holder's lock stays.
    await this.#link.eval(RELEASE, [this.key], [this.token]).catch(() => {});
  }

  #lose(why: string): void {
    if (this.#lost) return;
    this.#lost = true;
    clearTimeout(this.#timer);
    this.#onLost?.(this.key, why);
  }

  #schedule(): void {
    this.#timer = setTimeout(async () => {
      if (this.#released || this.#lost) return;
      try {
        await this.renew();
      } catch {
        // Redis unreachable: the lock may still be ours; keep trying until the ttl has passed.
        if (!this.held) this.#lose("it could not be renewed before it expired");
      }
      if (!this.#released && !this.#lost) this.#schedule();
    }, Math.max(10, Math.floor(this.#ttlMs / 3)));
  }
}
