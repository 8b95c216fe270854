/**
 * A table from string keys to a time (a float), kept in typed arrays: a key is stored as a
 * 64-bit hash (two 32-bit words, seeded per process), so an entry costs 20 bytes of
 * typed arrays and no object on the JavaScript heap. It exists for the rate limiter's
 * per-process bucket store, where a flood of distinct client addresses must not grow the heap
 * (and the garbage collector's headroom with it) by an object per address.
 *
 * Open addressing with linear probing, at most half full; no single entry is ever removed (the
 * table is cleared as a whole, in constant time: a slot is in use only when it carries the
 * table's current epoch), so no tombstones. Two keys whose 64-bit hashes are equal share
 * an entry: with 100 000 keys the chance that any two do is about 3 in 10^10.
 *
 * @module
 */

const SEEDS = crypto.getRandomValues(new Uint32Array(2));
const SEED_A = SEEDS[0];
const SEED_B = SEEDS[1] | 1;

/** The two hash words of the last {@link hashKey} call (no allocation per call). */
let hashA = 0;
let hashB = 0;

/** Hashes `key` into `hashA`/`hashB`. */
function hashKey(key: string): void {
  let a = SEED_A ^ key.length;
  let b = SEED_B;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x9e3779b1);
    a ^= a >>> 15;
    b = Math.imul(b + c, 0x85ebca77);
    b ^= b >>> 13;
  }
  // murmur3's finaliser for each word.
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  a = Math.imul(a, 0xc2b2ae35);
  a ^= a >>> 16;
  b ^= b >>> 16;
  b = Math.imul(b, 0x7feb352d);
  b ^= b >>> 15;
  b = Math.imul(b, 0x846ca68b);
  b ^= b >>> 16;
  hashA = a >>> 0;
  hashB = b >>> 0;
}

const INITIAL_SLOTS = 256;

/** Key → time, for at most `maxEntries` keys. */
export class KeyTimeTable {
  #a: Uint32Array;
  #b: Uint32Array;
  #time: Float64Array;
  /** A slot is in use when its stamp is `#epoch`. */
  #stamp: Uint32Array;
  #epoch = 1;
  #mask: number;
  #size = 0;
  /** Most slots the table grows to: at most half of them are ever used. */
  readonly #maxSlots: number;
  readonly maxEntries: number;

  constructor(maxEntries: number) {
    this.maxEntries = Math.max(1, maxEntries);
    let slots = INITIAL_SLOTS;
    while (slots < 2 * this.maxEntries) slots *= 2;
    this.#maxSlots = slots;
    const first = Math.min(INITIAL_SLOTS, slots);
    this.#a = new Uint32Array(first);
    this.#b = new Uint32Array(first);
    this.#time = new Float64Array(first);
    this.#stamp = new Uint32Array(first);
    this.#mask = first - 1;
  }

  /** Keys in the table. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of the typed arrays the table holds now. */
  get bytes(): number {
    return this.#a.byteLength + this.#b.byteLength + this.#time.byteLength +
      this.#stamp.byteLength;
  }

  /** Whether another new key fits. */
  get full(): boolean {
    return this.#size >= this.maxEntries;
  }

  /** The time stored for `key`, or NaN. */
  get(key: string): number {
    hashKey(key);
    return this.#at(this.#find());
  }

  /**
   * Stores `time` for the key of the last {@link get} (callers look a key up before they set
   * it; this saves hashing it twice). Returns false, storing nothing, when it is a new key and
   * the table is {@link full}.
   */
  setLast(time: number): boolean {
    let slot = this.#find();
    if (this.#stamp[slot] !== this.#epoch) {
      if (this.#size >= this.maxEntries) return false;
      if (2 * (this.#size + 1) > this.#a.length) {
        this.#grow();
        slot = this.#find();
      }
      this.#a[slot] = hashA;
      this.#b[slot] = hashB;
      this.#stamp[slot] = this.#epoch;
      this.#size++;
    }
    this.#time[slot] = time;
    return true;
  }

  /** Stores `time` for `key`; false when it is new and the table is full. */
  set(key: string, time: number): boolean {
    hashKey(key);
    return this.setLast(time);
  }

  /** Forgets every key (keeps the buffers). */
  clear(): void {
    if (this.#size === 0) return;
    this.#size = 0;
    if (++this.#epoch === 0xffffffff) {
      this.#stamp.fill(0);
      this.#epoch = 1;
    }
  }

  /** The slot holding the current hash, or the empty slot where it would go. */
  #find(): number {
    const a = this.#a;
    const b = this.#b;
    const stamp = this.#stamp;
    const epoch = this.#epoch;
    const mask = this.#mask;
    let i = hashA & mask;
    while (stamp[i] === epoch && (a[i] !== hashA || b[i] !== hashB)) i = (i + 1) & mask;
    return i;
  }

  #at(slot: number): number {
    return this.#stamp[slot] === this.#epoch ? this.#time[slot] : NaN;
  }

  #grow(): void {
    const slots = Math.min(this.#maxSlots, this.#a.length * 2);
    if (slots === this.#a.length) return;
    const [oa, ob, ot, os] = [this.#a, this.#b, this.#time, this.#stamp];
    const epoch = this.#epoch;
    const [ha, hb] = [hashA, hashB];
    this.#a = new Uint32Array(slots);
    this.#b = new Uint32Array(slots);
    this.#time = new Float64Array(slots);
    this.#stamp = new Uint32Array(slots);
    this.#mask = slots - 1;
    for (let i = 0; i < oa.length; i++) {
      if (os[i] !== epoch) continue;
      hashA = oa[i];
      hashB = ob[i];
      const s = this.#find();
      this.#a[s] = hashA;
      this.#b[s] = hashB;
      this.#time[s] = ot[i];
      this.#stamp[s] = epoch;
    }
    hashA = ha;
    hashB = hb;
  }
}
