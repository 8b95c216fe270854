/**
 * A bounded free list of equally sized buffers, for buffers a connection or a body needs for its
 * whole life: taking one from the list saves allocating (and zeroing) it and the GC work of an
 * ArrayBuffer per connection. A buffer may go back only when nothing holds a view into it any
 * more and no read or write into it is pending.
 *
 * @module
 */

/** A bounded free list of equally sized buffers. */
export class BufferPool {
  readonly size: number;
  readonly maxFree: number;
  readonly #free: Uint8Array[] = [];

  constructor(size: number, maxFree: number) {
    this.size = size;
    this.maxFree = maxFree;
  }

  /** A free buffer, or a new one when none is free. */
  take(): Uint8Array {
    return this.#free.pop() ?? new Uint8Array(this.size);
  }

  /** Hands `buf` back; nothing may use it any more. */
  give(buf: Uint8Array): void {
    if (buf.length === this.size && this.#free.length < this.maxFree) this.#free.push(buf);
  }

  /** Buffers waiting in the pool. */
  get free(): number {
    return this.#free.length;
  }
}
