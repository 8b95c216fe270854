/**
 * Where a {@linkcode HostState} keeps its numbers: a block of cells in an `ArrayBuffer` of its
 * own (one thread), or a slot of a {@linkcode HostTable} over a `SharedArrayBuffer`, which every
 * worker thread of the process maps, so that in-flight counts, passive ejections and the active
 * verdict of an upstream member are one state for all of them (SPEC 12).
 *
 * A slot holds Int32 cells (a lock, the ring's position, and per-thread in-flight and WebSocket
 * counts), Float64 cells (times, and per-thread request and failure totals) and a few bytes for
 * the last error. A per-thread cell is written by its own thread only, so counting a request
 * costs no atomic operation, and a worker that dies takes its in-flight requests with it. The failure ring (the times of recent failures, `max_fails` of them) lives
 * elsewhere in the same buffer, so it can move when `max_fails` grows while the slot stays put.
 *
 * Only the thread that created a table (the supervisor) allocates in it; the others are handed
 * slot offsets. A slot's lock is a spin lock held for a few hundred nanoseconds around
 * multi-cell updates (a failure, an ejection, a probe); a thread terminated while holding it
 * cannot wedge the others: a lock held far longer than any holder needs is taken over.
 *
 * @module
 */

/** Int32 cell indices within a slot; the per-thread counts follow. */
export const I32 = {
  LOCK: 0,
  /** 1 while active checks say down. */
  ACTIVE_DOWN: 1,
  /** Failures held in the ring. */
  FAIL_COUNT: 2,
  /** Ring index of the oldest failure. */
  FAIL_HEAD: 3,
  /** Consecutive active passes since the current passive ejection began. */
  PASSES: 4,
  /** Bytes of the last error. */
  ERR_LEN: 5,
  /** Float64 index of the ring. */
  RING_AT: 6,
  /** Ring capacity (entries). */
  RING_CAP: 7,
  /**
   * First per-thread pair: requests in flight, open WebSocket pairs. Each thread writes only
   * its own pair (so a thread that dies can be taken out: {@linkcode HostTable.clearThread});
   * readers add them up.
   */
  COUNTS: 8,
} as const;

/** Float64 cell indices within a slot; the per-thread totals follow. */
export const F64 = {
  /** 0 when not ejected; else when the ejection ends (half-open from then on). */
  EJECTED_UNTIL: 0,
  /** When half-open: when the probe request was handed out (0 = none out). */
  PROBE_AT: 1,
  /** First per-thread pair: requests, failures (each thread writes its own). */
  TOTALS: 2,
} as const;

/** Bytes kept of the last error message (UTF-8, cut at a character boundary). */
export const ERROR_BYTES = 200;

/** Spins before a held lock is presumed to belong to a terminated thread. */
const STEAL_AFTER_SPINS = 5_000_000;

/** Bytes of the Int32 cells of a slot for `threads` threads (a multiple of 8). */
function int32Bytes(threads: number): number {
  return Math.ceil(((I32.COUNTS + 2 * threads) * 4) / 8) * 8;
}

/** Bytes of one slot (without its ring) for `threads` threads. */
export function slotBytes(threads: number): number {
  const raw = int32Bytes(threads) + (F64.TOTALS + 2 * threads) * 8 + ERROR_BYTES;
  return Math.ceil(raw / 8) * 8;
}

/** The views every cell access goes through. */
interface Views {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
}

function viewsOf(buffer: ArrayBufferLike): Views {
  return {
    i32: new Int32Array(buffer),
    f64: new Float64Array(buffer),
    u8: new Uint8Array(buffer),
  };
}

/** Describes a shared table so another thread can map it ({@linkcode HostTable.attach}). */
export interface HostTableShape {
  readonly buffer: SharedArrayBuffer;
  /** Threads with their own totals: the supervisor (0) and the workers (1..n). */
  readonly threads: number;
}

/**
 * Slots for the members of every upstream group of a process, in one `SharedArrayBuffer`. The
 * buffer has a fixed size (growable shared buffers make every access several times slower);
 * pages never touched cost no memory.
 */
export class HostTable {
  readonly buffer: SharedArrayBuffer;
  readonly threads: number;
  /** This thread's index: 0 in the supervisor, 1..n in the workers. */
  readonly thread: number;
  /** True in the thread that created the table: only it allocates. */
  readonly owner: boolean;
  readonly views: Views;
  #top = 8;
  /** Offsets of the slots allocated (owner only). */
  readonly #slots: number[] = [];
  /** Slots given back (owner only): each may serve another member once `after` (epoch ms) has
   * passed and no thread counts a request or WebSocket in it. */
  readonly #retired: { slot: number; after: number }[] = [];

  private constructor(buffer: SharedArrayBuffer, threads: number, thread: number, owner: boolean) {
    this.buffer = buffer;
    this.threads = threads;
    this.thread = thread;
    this.owner = owner;
    this.views = viewsOf(buffer);
  }

  /** A new table (this thread owns it, as thread 0). */
  static create(threads: number, bytes: number): HostTable {
    return new HostTable(new SharedArrayBuffer(Math.ceil(bytes / 8) * 8), threads, 0, true);
  }

  /** Maps a table another thread created, as thread `thread`. */
  static attach(shape: HostTableShape, thread: number): HostTable {
    if (!(thread >= 1 && thread < shape.threads)) {
      throw new RangeError(`Cannot map host table as thread ${thread} of ${shape.threads}`);
    }
    return new HostTable(shape.buffer, shape.threads, thread, false);
  }

  get shape(): HostTableShape {
    return { buffer: this.buffer, threads: this.threads };
  }

  /** Bytes allocated so far. */
  get used(): number {
    return this.#top;
  }

  /**
   * Allocates a zeroed slot with a ring of `ringCapacity`: a retired one that may be used again
   * (see {@link release}), else a new one. Its byte offset, or null when full (or when this
   * thread does not own the table).
   */
  allocate(ringCapacity: number, now: number = Date.now()): number | null {
    if (!this.owner) return null;
    const reused = this.#reuse(ringCapacity, now);
    if (reused !== null) return reused;
    const slot = this.#take(slotBytes(this.threads));
    if (slot === null) return null;
    const ring = this.#take(ringCapacity * 8);
    if (ring === null) return null;
    const i = slot / 4;
    this.views.i32[i + I32.RING_AT] = ring / 8;
    this.views.i32[i + I32.RING_CAP] = ringCapacity;
    this.#slots.push(slot);
    return slot;
  }

  /**
   * Gives `slot` back (owner only; its member left the config). Requests of the plan it served
   * may still be finishing in every thread, so it serves another member only from `after`
   * (epoch ms) on, and only once no thread counts a request or WebSocket in it: without this a
   * process that reloads changing upstreams would run out of slots after ~25k members.
   */
  release(slot: number, after: number): void {
    if (this.owner) this.#retired.push({ slot, after });
  }

  /** Slots given back and not used again yet (for tests and diagnostics). */
  get retired(): number {
    return this.#retired.length;
  }

  #reuse(ringCapacity: number, now: number): number | null {
    const retired = this.#retired;
    for (let k = 0; k < retired.length; k++) {
      const { slot, after } = retired[k];
      if (after > now || this.#counting(slot)) continue;
      const i32 = this.views.i32;
      const i = slot / 4;
      let ringAt = i32[i + I32.RING_AT];
      let ringCap = i32[i + I32.RING_CAP];
      if (ringCap < ringCapacity) {
        const ring = this.#take(ringCapacity * 8);
        if (ring === null) continue; // another retired slot's ring may be big enough
        ringAt = ring / 8;
        ringCap = ringCapacity;
      }
      retired[k] = retired[retired.length - 1];
      retired.pop();
      this.views.u8.fill(0, slot, slot + slotBytes(this.threads));
      i32[i + I32.RING_AT] = ringAt;
      i32[i + I32.RING_CAP] = ringCap;
      return slot;
    }
    return null;
  }

  /** Whether some thread counts a request in flight or an open WebSocket in `slot`. */
  #counting(slot: number): boolean {
    const i32 = this.views.i32;
    const first = slot / 4 + I32.COUNTS;
    for (let at = first; at < first + 2 * this.threads; at++) {
      if (Atomics.load(i32, at) !== 0) return true;
    }
    return false;
  }

  /**
   * Takes the requests and WebSockets of thread `thread` out of every slot (owner only): that
   * worker died, and what it had in flight went with it.
   */
  clearThread(thread: number): void {
    const i32 = this.views.i32;
    for (const slot of this.#slots) {
      const at = slot / 4 + I32.COUNTS + 2 * thread;
      Atomics.store(i32, at, 0);
      Atomics.store(i32, at + 1, 0);
    }
  }

  /** Gives `slot` a ring of `capacity` (owner only, under the slot's lock); false when full. */
  growRing(slot: number, capacity: number): boolean {
    if (!this.owner) return false;
    const ring = this.#take(capacity * 8);
    if (ring === null) return false;
    const { i32, f64 } = this.views;
    const i = slot / 4;
    const oldAt = i32[i + I32.RING_AT];
    const oldCap = i32[i + I32.RING_CAP];
    const count = i32[i + I32.FAIL_COUNT];
    const head = i32[i + I32.FAIL_HEAD];
    const at = ring / 8;
    for (let k = 0; k < count; k++) f64[at + k] = f64[oldAt + ((head + k) % oldCap)];
    i32[i + I32.FAIL_HEAD] = 0;
    i32[i + I32.RING_AT] = at;
    Atomics.store(i32, i + I32.RING_CAP, capacity);
    return true;
  }

  #take(bytes: number): number | null {
    const at = this.#top;
    const end = at + Math.ceil(bytes / 8) * 8;
    if (end > this.buffer.byteLength) return null;
    this.#top = end;
    return at;
  }
}

/**
 * The cells of one host state: a slot of a shared table, or a private block (single thread,
 * which it may reallocate to grow the ring).
 */
export class HostCells {
  #views: Views;
  /** Int32 index of the slot. */
  readonly i: number;
  /** Float64 index of the slot. */
  readonly f: number;
  /** Byte index of the last error. */
  readonly b: number;
  /** Int32 index of this thread's in-flight count (its WebSocket count follows). */
  readonly counts: number;
  /** Float64 index of this thread's request total (its failure total follows). */
  readonly totals: number;
  readonly threads: number;
  readonly #table: HostTable | null;
  readonly #slot: number;

  private constructor(
    views: Views,
    slot: number,
    threads: number,
    thread: number,
    table: HostTable | null,
  ) {
    this.#views = views;
    this.#slot = slot;
    this.i = slot / 4;
    this.f = (slot + int32Bytes(threads)) / 8;
    this.b = slot + int32Bytes(threads) + (F64.TOTALS + 2 * threads) * 8;
    this.counts = this.i + I32.COUNTS + 2 * thread;
    this.totals = this.f + F64.TOTALS + 2 * thread;
    this.threads = threads;
    this.#table = table;
  }

  /** A private block with a ring of `ringCapacity`. */
  static private(ringCapacity: number): HostCells {
    const bytes = slotBytes(1);
    const views = viewsOf(new ArrayBuffer(bytes + ringCapacity * 8));
    views.i32[I32.RING_AT] = bytes / 8;
    views.i32[I32.RING_CAP] = ringCapacity;
    return new HostCells(views, 0, 1, 0, null);
  }

  /** The slot at byte offset `slot` of `table`. */
  static inTable(table: HostTable, slot: number): HostCells {
    return new HostCells(table.views, slot, table.threads, table.thread, table);
  }

  get i32(): Int32Array {
    return this.#views.i32;
  }

  get f64(): Float64Array {
    return this.#views.f64;
  }

  get u8(): Uint8Array {
    return this.#views.u8;
  }

  /** True when other threads see these cells. */
  get shared(): boolean {
    return this.#table !== null;
  }

  /** Takes the slot's lock (spins; the critical sections are a few hundred ns). */
  lock(): void {
    const i32 = this.#views.i32;
    const at = this.i + I32.LOCK;
    let spins = 0;
    while (Atomics.compareExchange(i32, at, 0, 1) !== 0) {
      if (++spins >= STEAL_AFTER_SPINS) {
        // The holder was terminated inside its critical section: take the lock over.
        Atomics.store(i32, at, 1);
        return;
      }
    }
  }

  unlock(): void {
    Atomics.store(this.#views.i32, this.i + I32.LOCK, 0);
  }

  /**
   * Makes the ring hold at least `capacity` failures (call under the lock). A worker's view of
   * a shared slot cannot allocate: the supervisor grows it before the workers see the config.
   */
  ensureRing(capacity: number): void {
    const i32 = this.#views.i32;
    if (i32[this.i + I32.RING_CAP] >= capacity) return;
    if (this.#table !== null) {
      this.#table.growRing(this.#slot, capacity);
      return;
    }
    const old = this.#views;
    const bytes = slotBytes(1);
    const next = viewsOf(new ArrayBuffer(bytes + capacity * 8));
    next.u8.set(old.u8.subarray(0, bytes));
    const oldAt = old.i32[I32.RING_AT];
    const oldCap = old.i32[I32.RING_CAP];
    const count = old.i32[I32.FAIL_COUNT];
    const head = old.i32[I32.FAIL_HEAD];
    const at = bytes / 8;
    for (let k = 0; k < count; k++) next.f64[at + k] = old.f64[oldAt + ((head + k) % oldCap)];
    next.i32[I32.FAIL_HEAD] = 0;
    next.i32[I32.RING_AT] = at;
    next.i32[I32.RING_CAP] = capacity;
    this.#views = next;
  }
}
