/**
 * Credentials that passed a bcrypt check recently, so a kept-alive browser (which sends the
 * same Authorization on every request) does not pay ~60 ms of bcrypt per request.
 *
 * Entries are keyed by a SHA-256 of user, password and the stored hash: the password itself is
 * not kept, and a changed password or a changed hash (after a reload) misses at once. Entries
 * expire, and the cache holds at most `maxEntries` (the oldest goes first).
 *
 * @module
 */

import { createHash } from "node:crypto";

/** The cache key of one credential checked against one stored hash. */
export function credentialKey(user: string, password: string, storedHash: string): string {
  return createHash("sha256").update(`${user}\0${password}\0${storedHash}`).digest("base64");
}

/** A bounded set of verified credential keys with expiry. */
export class CredentialCache {
  readonly #expires = new Map<string, number>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;

  /**
   * @param maxEntries @default 1024
   * @param ttlMs @default 300_000 (5 minutes)
   */
  constructor(maxEntries = 1024, ttlMs = 300_000) {
    this.#maxEntries = maxEntries;
    this.#ttlMs = ttlMs;
  }

  get size(): number {
    return this.#expires.size;
  }

  /** Whether `key` was verified less than the TTL before `now` (epoch ms). */
  has(key: string, now: number): boolean {
    const until = this.#expires.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#expires.delete(key);
    return false;
  }

  /** Records `key` as verified at `now`. */
  add(key: string, now: number): void {
    const map = this.#expires;
    map.delete(key); // re-inserted at the end: the oldest entries stay at the front
    while (map.size >= this.#maxEntries) map.delete(map.keys().next().value!);
    map.set(key, now + this.#ttlMs);
  }
}
