/**
 * A fixed-size hash table of string keys to one number each, in a `SharedArrayBuffer` that every
 * worker thread maps: the rate-limit buckets of the whole process (key → the time the bucket is
 * full again), and each worker's connections per client address (key → count).
 *
 * A key is stored as 64 bits of a hash seeded at random per process (so nobody can aim
 * collisions at it), in a group of 8 entries chosen by the hash; a group is changed under one
 * of 256 spin locks, held for a few hundred nanoseconds. When a group is full the caller says
 * which entries count as free (an expired bucket, a count of 0) and whether the smallest value
 * may be evicted. Memory is fixed whatever number of keys arrives.
 *
 * @module
 */

const HEADER_I32 = 4; // seed1, seed2, groups, stripes
const WAYS = 8;
const STRIPES = 256;
/** Spins before a held lock is presumed to belong to a terminated thread. */
const STEAL_AFTER_SPINS = 5_000_000;

/** How {@linkcode SharedKeyTable.update} treats the entries of a group. */
export interface UpdatePolicy {
  /** An entry whose value says it holds nothing (it may be reused). */
  isFree(value: number): boolean;
  /** May the entry with the smallest value be dropped to make room? */
  readonly evict: boolean;
}

/** Bytes a table of `entries` needs (rounded up to whole groups of a power of two). */
export function sharedKeyTableBytes(entries: number): number {
  const groups = groupCount(entries);
  return entriesOffset() + groups * WAYS * 16;
}

function groupCount(entries: number): number {
  let g = 1;
  while (g * WAYS < entries) g *= 2;
  return g;
}

function entriesOffset(): number {
  return Math.ceil(((HEADER_I32 + STRIPES) * 4) / 16) * 16;
}

/** One thread's view of a shared key table. */
export class SharedKeyTable {
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #groups: number;
  readonly #seed1: number;
  readonly #seed2: number;
  /** Int32 index of the first entry; an entry is [h1, h2, value(f64)]. */
  readonly #base: number;

  /** Maps a table (made by {@linkcode SharedKeyTable.create}). */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#i32 = new Int32Array(buffer);
    this.#f64 = new Float64Array(buffer);
    this.#seed1 = this.#i32[0];
    this.#seed2 = this.#i32[1];
    this.#groups = this.#i32[2];
    this.#base = entriesOffset() / 4;
  }

  /** A new table for about `entries` keys. */
  static create(entries: number): SharedKeyTable {
    const buffer = new SharedArrayBuffer(sharedKeyTableBytes(entries));
    const i32 = new Int32Array(buffer);
    const seeds = crypto.getRandomValues(new Int32Array(2));
    i32[0] = seeds[0];
    i32[1] = seeds[1];
    i32[2] = groupCount(entries);
    i32[3] = STRIPES;
    return new SharedKeyTable(buffer);
  }

  /** Keys the table holds at most. */
  get capacity(): number {
    return this.#groups * WAYS;
  }

  /**
   * Reads and replaces the value of `key` under its group's lock. `fn` gets the current value
   * (undefined when the key has none) and returns the new one (undefined leaves it as it is).
   * It must be quick and must not throw. Returns false when the key had no entry and none could
   * be made (the group is full of entries that are neither free nor evictable).
   */
  update(
    key: string,
    policy: UpdatePolicy,
    fn: (value: number | undefined) => number | undefined,
  ): boolean {
    return this.#locked(key, policy, fn, true);
  }

  /** The value of `key`, or undefined when it has none. */
  get(key: string, policy: UpdatePolicy): number | undefined {
    let found: number | undefined;
    this.#locked(key, policy, (v) => {
      found = v;
      return undefined;
    }, false);
    return found;
  }

  /** Forgets every key (its only writer is gone, see `SharedConnectionGate`). */
  clear(): void {
    new Float64Array(this.buffer, entriesOffset()).fill(0);
    new Int32Array(this.buffer, entriesOffset()).fill(0);
  }

  #locked(
    key: string,
    policy: UpdatePolicy,
    fn: (value: number | undefined) => number | undefined,
    insert: boolean,
  ): boolean {
    let h1 = this.#seed1 ^ 0x2545f491;
    let h2 = this.#seed2 ^ 0x6b43a9b5;
    for (let k = 0; k < key.length; k++) {
      const c = key.charCodeAt(k);
      h1 = Math.imul(h1 ^ c, 0x85ebca6b);
      h1 = (h1 << 13) | (h1 >>> 19);
      h2 = Math.imul(h2 ^ c, 0xc2b2ae35);
      h2 = (h2 << 17) | (h2 >>> 15);
    }
    h1 = fmix(h1 ^ key.length);
    h2 = fmix(h2 ^ h1);
    const group = h1 & (this.#groups - 1);
    const lock = HEADER_I32 + (group & (STRIPES - 1));
    const i32 = this.#i32;
    const f64 = this.#f64;
    const first = this.#base + group * WAYS * 4;
    this.#lock(lock);
    try {
      let free = -1;
      let smallest = -1;
      for (let w = 0; w < WAYS; w++) {
        const at = first + w * 4;
        const value = f64[at / 2 + 1];
        if (policy.isFree(value)) {
          if (free < 0) free = at;
          continue;
        }
        if (i32[at] === h1 && i32[at + 1] === h2) {
          const next = fn(value);
          if (next !== undefined) f64[at / 2 + 1] = next;
          return true;
        }
        if (smallest < 0 || value < f64[smallest / 2 + 1]) smallest = at;
      }
      const next = fn(undefined);
      if (!insert || next === undefined || policy.isFree(next)) return true;
      const at = free >= 0 ? free : policy.evict ? smallest : -1;
      if (at < 0) return false;
      i32[at] = h1;
      i32[at + 1] = h2;
      f64[at / 2 + 1] = next;
      return true;
    } finally {
      Atomics.store(i32, lock, 0);
    }
  }

  #lock(at: number): void {
    let spins = 0;
    while (Atomics.compareExchange(this.#i32, at, 0, 1) !== 0) {
      if (++spins >= STEAL_AFTER_SPINS) return; // the holder was terminated mid-update
    }
  }
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
