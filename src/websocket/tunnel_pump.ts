/**
 * One direction of a WebSocket tunnel: reads from its source into one reused buffer, writes all
 * of it to its destination, and only then reads again, so a destination that does not read stops
 * the source from being read (backpressure) and memory stays at one buffer. A `FrameCursor`
 * follows the frames as they pass; control frames bws adds (close, ping) go out only between
 * frames.
 *
 * The buffer is small (4 KiB reads) while the direction is quiet, which is most of a WebSocket's
 * life, and a pooled one of the full `bufferSize` while reads fill the small one; after
 * {@link QUIET_READS} short reads in a row it goes back to its pool.
 *
 * @module
 */

import type { ByteStream } from "../http1/types.ts";
import { BufferPool } from "../net/buffer_pool.ts";
import { directReader, type ReadInto } from "../net/direct_read.ts";
import { FrameCursor, FrameError } from "./frame_cursor.ts";

/** Room before the read area for a held-back incomplete header (at most 13 bytes). */
const HEADROOM = 16;
/** Bytes read per call while the direction is quiet. */
const SMALL_READ = 4 * 1024;
/** Short reads in a row after which a full-size buffer goes back to its pool. */
const QUIET_READS = 16;
/** Full-size buffers not in use, by length (one length per configured `bufferSize`). */
const bigBuffers = new Map<number, BufferPool>();

function bigPool(length: number): BufferPool {
  let pool = bigBuffers.get(length);
  if (pool === undefined) {
    pool = new BufferPool(length, 64);
    bigBuffers.set(length, pool);
  }
  return pool;
}

/** What a pump tells the tunnel that owns it. Handlers must not throw. */
export interface PumpOwner {
  /** A close frame from the source has passed completely (forwarded, or dropped after bws
   * closed the destination itself). */
  sourceClosed(pump: Pump): void;
  /** A close frame has been written completely to the destination. */
  closeDelivered(pump: Pump): void;
  /** The source broke the frame rules (`pump.cursor.error`). Returns the close frame for the
   * destination, written at once (the stream towards it is at a frame boundary). */
  violation(pump: Pump): Uint8Array;
  /** The pump stopped on its own: the source ended (`error` null at EOF) or failed, or the
   * destination failed. */
  ended(pump: Pump, error: unknown, failed: "source" | "destination"): void;
}

/** How a pump is set up. */
export interface PumpOptions {
  readonly source: ByteStream;
  readonly destination: ByteStream;
  /** Rules of the source's frames (clients mask, servers do not; size limit). */
  readonly masked: boolean;
  readonly maxMessage: number;
  /** Bytes read per call. */
  readonly bufferSize: number;
  readonly owner: PumpOwner;
}

/** One direction of a tunnel; see the module comment. */
export class Pump {
  readonly cursor: FrameCursor;
  /** Bytes read from the source (activity for the ping check). */
  bytesRead = 0;
  /** The source sent a close frame (or broke the rules, after which nothing it sends counts). */
  sourceSentClose = false;
  /** A close frame reached the destination completely. */
  destinationGotClose = false;

  /** Reads the source (see {@link directReader}). */
  readonly #read: ReadInto;
  readonly #destination: ByteStream;
  readonly #owner: PumpOwner;
  #buf: Uint8Array;
  /** The read area: `#buf` past the headroom. */
  #view: Uint8Array;
  /** Pool of the full-size buffers (null when `bufferSize` is no bigger than a small read). */
  readonly #pool: BufferPool | null;
  /** Short reads in a row into the full-size buffer. */
  #quiet = 0;
  /** Bytes of an incomplete header kept just before the read area. */
  #held = 0;
  /** A control frame waiting for a frame boundary. */
  #pending: Uint8Array | null = null;
  #pendingIsClose = false;
  /** A close frame for the destination is pending, being written or written. */
  #closeQueued = false;
  /** An injected frame being written while the pump waits for its source. */
  #injecting: Promise<void> | null = null;
  /** The pump's own write in flight. */
  #inflight: Promise<number> | null = null;
  #inRead = false;
  #exited = false;
  #stopped = false;
  /** Source bytes are only followed (for its close frame), no longer forwarded. */
  #discard = false;
  /** The cursor lost the frame boundaries: source bytes are dropped unread. */
  #broken = false;

  constructor(opts: PumpOptions) {
    this.#read = directReader(opts.source);
    this.#destination = opts.destination;
    this.#owner = opts.owner;
    this.cursor = new FrameCursor({ masked: opts.masked, maxMessage: opts.maxMessage });
    const small = Math.min(SMALL_READ, opts.bufferSize);
    this.#pool = opts.bufferSize > small ? bigPool(HEADROOM + opts.bufferSize) : null;
    this.#buf = new Uint8Array(HEADROOM + small);
    this.#view = this.#buf.subarray(HEADROOM);
  }

  /**
   * Before a read (no write from the buffer in flight): the full-size buffer when the last read
   * filled the small one, the small one again after a quiet spell. A held incomplete header
   * moves along.
   */
  #fit(lastRead: number): void {
    const pool = this.#pool;
    if (pool === null) return;
    if (!this.#big) {
      if (lastRead < this.#view.length) return;
      this.#swap(pool.take());
      this.#quiet = 0;
    } else if (lastRead >= SMALL_READ) {
      this.#quiet = 0;
    } else if (++this.#quiet >= QUIET_READS) {
      const big = this.#buf;
      this.#swap(new Uint8Array(HEADROOM + SMALL_READ));
      pool.give(big);
    }
  }

  /** Reading into one of the pool's full-size buffers. */
  get #big(): boolean {
    return this.#buf.length > HEADROOM + SMALL_READ;
  }

  #swap(next: Uint8Array): void {
    const held = this.#held;
    if (held > 0) next.set(this.#buf.subarray(HEADROOM - held, HEADROOM), HEADROOM - held);
    this.#buf = next;
    this.#view = next.subarray(HEADROOM);
  }

  /** After the pump's last read and write: its full-size buffer back to the pool. */
  #release(): void {
    if (!this.#big) return;
    const big = this.#buf;
    this.#buf = this.#view = new Uint8Array(0);
    this.#pool!.give(big);
  }

  /** Bytes of the buffer the pump reads into now. */
  get bufferBytes(): number {
    return this.#buf.length;
  }

  /** Relays `initial` (bytes already read from the source), then the source, until it ends or
   * `stop()`. Never rejects. */
  async run(initial: Uint8Array): Promise<void> {
    try {
      for (let off = 0; off < initial.length && !this.#stopped;) {
        const n = Math.min(initial.length - off, this.#view.length);
        this.#view.set(initial.subarray(off, off + n));
        off += n;
        this.bytesRead += n;
        await this.#relaySlow(HEADROOM - this.#held, HEADROOM + n);
      }
      await this.#loop();
    } catch (err) {
      const failed = this.#inRead ? "source" : "destination";
      this.#inRead = false;
      this.#exited = true;
      if (!this.#stopped) this.#owner.ended(this, err, failed);
    }
    this.#release();
  }

  async #loop(): Promise<void> {
    const read = this.#read;
    const destination = this.#destination;
    const cursor = this.cursor;
    let lastRead = 0;
    while (!this.#stopped) {
      this.#fit(lastRead);
      const buf = this.#buf;
      this.#inRead = true;
      // A frame asked for while the pump was writing goes out now, beside the read.
      if (this.#pending !== null) this.#injectIfIdle();
      const n = await read(this.#view);
      this.#inRead = false;
      if (!n) {
        this.#exited = true;
        if (!this.#stopped) this.#owner.ended(this, null, "source");
        return;
      }
      this.bytesRead += n;
      lastRead = n;
      if (this.#injecting !== null) await this.#injecting;
      if (this.#stopped) return;
      const start = HEADROOM - this.#held;
      const end = HEADROOM + n;
      if (this.#pending !== null || this.#discard) {
        await this.#relaySlow(start, end);
        continue;
      }
      // The hot path: one pass of the cursor, one write of everything up to a held header.
      const stop = cursor.feed(buf, start, end);
      for (let off = start; off < stop;) {
        const write = destination.write(buf.subarray(off, stop));
        this.#inflight = write;
        off += await write;
      }
      this.#inflight = null;
      if (cursor.error !== FrameError.None) {
        await this.#violated();
        continue;
      }
      this.#hold(stop, end);
      if (cursor.closeSeen && !this.sourceSentClose) this.#forwardedClose();
    }
    this.#exited = true;
  }

  /** The path for anything but plain relaying: a control frame to put in, or a closed
   * destination. */
  async #relaySlow(start: number, end: number): Promise<void> {
    const cursor = this.cursor;
    const buf = this.#buf;
    let pos = start;
    while (true) {
      if (this.#pending !== null && cursor.atBoundary) await this.#writePending();
      if (this.#broken) {
        this.#held = 0;
        return;
      }
      if (this.#discard) {
        const stop = cursor.feed(buf, pos, end);
        if (cursor.error !== FrameError.None) {
          this.#broken = true;
          this.#held = 0;
          return;
        }
        this.#hold(stop, end);
        if (cursor.closeSeen && !this.sourceSentClose) {
          this.sourceSentClose = true;
          this.#owner.sourceClosed(this);
        }
        return;
      }
      const stop = cursor.feed(buf, pos, end, this.#pending !== null);
      if (stop > pos) await this.#writeAll(buf.subarray(pos, stop));
      if (cursor.error !== FrameError.None) return await this.#violated();
      if (cursor.closeSeen && !this.sourceSentClose) this.#forwardedClose();
      if (stop === end || stop === pos || this.#pending === null) {
        this.#hold(stop, end);
        return;
      }
      pos = stop;
    }
  }

  /** Keeps `buf[stop, end)` (an incomplete header) just before the read area. */
  #hold(stop: number, end: number): void {
    const held = end - stop;
    if (held > 0) this.#buf.copyWithin(HEADROOM - held, stop, end);
    this.#held = held;
  }

  #forwardedClose(): void {
    this.sourceSentClose = true;
    this.destinationGotClose = true;
    this.#closeQueued = true;
    this.#owner.sourceClosed(this);
  }

  /** The source broke the rules: nothing more of it is forwarded; the destination gets the
   * owner's close frame at once (everything before the bad frame has been written). */
  async #violated(): Promise<void> {
    this.#broken = true;
    this.#discard = true;
    this.#held = 0;
    this.sourceSentClose = true;
    const frame = this.#owner.violation(this);
    if (this.#pending !== null && this.#pendingIsClose) return await this.#writePending();
    if (this.#closeQueued) return;
    this.#closeQueued = true;
    this.#pending = null;
    await this.#writeAll(frame);
    this.#delivered();
  }

  async #writePending(): Promise<void> {
    const frame = this.#pending!;
    const isClose = this.#pendingIsClose;
    this.#pending = null;
    if (this.destinationGotClose) return;
    if (isClose) this.#discard = true;
    await this.#writeAll(frame);
    if (isClose) this.#delivered();
  }

  #delivered(): void {
    this.destinationGotClose = true;
    this.#owner.closeDelivered(this);
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.length;) {
      const write = this.#destination.write(off === 0 ? bytes : bytes.subarray(off));
      this.#inflight = write;
      off += await write;
    }
    this.#inflight = null;
  }

  /**
   * Puts a control frame into the stream towards the destination at the next frame boundary:
   * at once when the pump is waiting for its source between frames, else once the frame in
   * passage has been written. A close goes out at most once, and after it nothing more from the
   * source is forwarded; a ping is dropped when one is already on its way or after a close.
   */
  inject(frame: Uint8Array, isClose: boolean): void {
    if (this.#closeQueued || this.#stopped) return;
    if (!isClose && (this.#pending !== null || this.#injecting !== null)) return;
    if (isClose) this.#closeQueued = true;
    this.#pending = frame;
    this.#pendingIsClose = isClose;
    this.#injectIfIdle();
  }

  /** Writes the pending frame now when nothing else writes to the destination. */
  #injectIfIdle(): void {
    if (this.#pending === null || this.#injecting !== null || this.#stopped) return;
    if (!(this.#inRead || this.#exited) || !this.cursor.atBoundary) return;
    this.#injecting = this.#writePending().then(() => {
      this.#injecting = null;
      this.#injectIfIdle();
    }, (err) => {
      this.#injecting = null;
      if (!this.#stopped) this.#owner.ended(this, err, "destination");
    });
  }

  /** The pump reads nothing more once its current read or write is done. */
  stop(): void {
    this.#stopped = true;
  }

  /** Resolves once no write of this pump is in flight (a write to a stalled destination keeps
   * it waiting: bound it). */
  async drain(): Promise<void> {
    while (this.#inflight !== null || this.#injecting !== null) {
      try {
        await (this.#inflight ?? this.#injecting);
      } catch {
        return;
      }
    }
  }
}
