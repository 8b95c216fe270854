/**
 * The socket side of a client connection: its read buffer (a small head buffer, a pooled bigger
 * one while a request body arrives fast), the read-ahead that notices a client going away while
 * a request is handled, writes under the send timeout, and the deadlines one coarse ticker
 * checks. `ClientConnection` (connection.ts) runs the request loop on top of it, and
 * `response_writer.ts` writes responses through it.
 *
 * @module
 */

import { BufferPool } from "../net/buffer_pool.ts";
import { coarseNow, deadlines, TICK_MS, type Timed } from "../net/deadlines.ts";
import { directReader, type ReadInto } from "../net/direct_read.ts";
import { HttpError } from "./errors.ts";
import type { OptionsSource } from "./front_options.ts";
import type { FrontRequest } from "./front_request.ts";
import type { BodyHost } from "./request_body.ts";
import type { ByteStream, Peer } from "./types.ts";

/** Head buffer of a new connection; grows for larger heads. */
const HEAD_BUFFER = 4 * 1024;
/** First write buffer of a connection (response heads); grows for larger ones. */
const WRITE_BUFFER = 1024;
/** Buffer used while a request body streams (reused; from a small pool). */
const BODY_BUFFER = 64 * 1024;
const MAX_POOLED = 64;
/** Measured with one request per connection: allocating the two small buffers of every new
 * connection cost ~3 µs and a share of the GC's time; 256 of each are 1.25 MiB. */
const headBuffers = new BufferPool(HEAD_BUFFER, 256);
const writeBuffers = new BufferPool(WRITE_BUFFER, 256);
const bodyBuffers = new BufferPool(BODY_BUFFER, MAX_POOLED);
const NO_BYTES = new Uint8Array(0);
/** A write buffer bigger than this (a big chunk of a chunked response, a large head) is kept
 * only while the connection is busy; then it goes to `bigWriteBuffers` for the next that needs
 * one. */
const WRITE_BUFFER_IDLE = 16 * 1024;
const bigWriteBuffers: Uint8Array[] = [];

/** A write buffer nothing writes from any more, to the pool of its size. */
function giveWriteBuffer(w: Uint8Array): void {
  if (w.length <= WRITE_BUFFER_IDLE) writeBuffers.give(w);
  else if (bigWriteBuffers.length < MAX_POOLED) bigWriteBuffers.push(w);
}

const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

/**
 * A client connection's stream, buffers and deadlines. Its fields are the front end's shared
 * state (the request loop and the response writer read and set them); nothing outside
 * src/http1 touches them.
 */
export abstract class ConnectionIO implements Timed, ByteStream, BodyHost {
  deadline = 0;
  readonly peer: Peer;
  readonly tls: boolean;
  protected readonly stream: ByteStream;
  /** Reads `stream` for requests and their bodies (see {@link directReader}). */
  readonly #readInto: ReadInto;
  protected readonly source: OptionsSource;
  /** The read buffer: unread bytes are `buf[start, end)`. */
  buf: Uint8Array = headBuffers.take();
  start = 0;
  end = 0;
  protected readonly headBuffer: Uint8Array = this.buf;
  #wbuf: Uint8Array | null = null;
  /** The socket is closed. */
  closed = false;
  /** The client went away (EOF or error on a read). */
  gone = false;
  /** Handed to an upgrade or to HTTP/2: the loop no longer owns the stream. */
  handedOver = false;
  /** Stop after the current response (shutdown). */
  draining = false;
  /** The look-ahead read pending while a request is handled. */
  protected ahead: Promise<void> | null = null;
  /** The request in progress. */
  request: FrontRequest | null = null;
  responseStarted = false;
  /** `Expect: 100-continue` not answered yet. */
  expect100 = false;
  /** The front end answered the request in progress itself (408): the handler's answer is
   * dropped. */
  answered = false;
  /** What a deadline did: 408 (head or body timeout), 1 (send timeout), 0 (none). */
  protected timedOut = 0;
  protected headDeadline = 0;
  protected bodyDeadline = 0;
  protected sendDeadline = 0;
  /** The last body read filled the buffer: use the bigger body buffer from now on. */
  #growNext = false;
  /** A bigger buffer (grown for a large head, or a body buffer) the request in progress read
   * into, set aside when its read-ahead went to the head buffer: given back once the connection
   * is idle (the request is over), so an idle connection holds only the head buffer. */
  #spare: Uint8Array | null = null;
  /** A request of this connection had a body: a chunk of it may still be held as a view into
   * the head buffer, which therefore never goes back to its pool. */
  protected hadBody = false;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;
  /** Called once when the connection ends (closed, or its upgrade stream closed). */
  onClose: (() => void) | null = null;

  /** @param initial bytes already read from `stream` (after a PROXY protocol header) */
  constructor(
    stream: ByteStream,
    peer: Peer,
    tls: boolean,
    source: OptionsSource,
    initial?: Uint8Array,
  ) {
    this.stream = stream;
    this.#readInto = directReader(stream);
    this.peer = peer;
    this.tls = tls;
    this.source = source;
    this.#done = new Promise((r) => (this.#resolveDone = r));
    if (initial !== undefined && initial.length > 0) {
      if (initial.length <= this.buf.length) this.buf.set(initial);
      else this.buf = initial.slice();
      this.end = initial.length;
    }
  }

  /** Bytes of the read and write buffers this connection holds now (for tests and
   * diagnostics). */
  get bufferBytes(): number {
    return this.buf.length + (this.#spare?.length ?? 0) + (this.#wbuf?.length ?? 0);
  }

  /** Settles when the connection is closed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Called by the deadline ticker once a deadline passed. */
  abstract expire(now: number): void;

  // ------------------------------------------------------------------ ByteStream (upgrades)

  read(p: Uint8Array): Promise<number | null> {
    return this.stream.read(p);
  }

  /** How a tunnel reads this connection after an upgrade: as the request loop does (see
   * {@link directReader}; 0 or null at EOF). */
  get readInto(): ReadInto {
    return this.#readInto;
  }

  write(p: Uint8Array): Promise<number> {
    return this.stream.write(p);
  }

  /** Closes the socket (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.deadline = 0;
    deadlines.delete(this);
    try {
      this.stream.close();
    } catch {
      // already closed
    }
    // A request the front end answered itself (408 on a stalled body) ends through its body read,
    // which fails with that status: aborting it here would log the client as gone (499).
    if (!this.answered) this.request?.abort();
    const cb = this.onClose;
    this.onClose = null;
    cb?.();
    this.#resolveDone();
  }

  /** Gives the stream away (an upgrade, HTTP/2): no more deadlines, and the loop ends. Returns
   * a copy of the bytes read but not consumed (they stay in the buffer). */
  handOver(): Uint8Array {
    this.handedOver = true;
    this.deadline = 0;
    deadlines.delete(this);
    return this.buf.slice(this.start, this.end);
  }

  // ------------------------------------------------------------------ reading

  /** Reads more bytes into `buf[end, …)` (or waits for the read-ahead); false at EOF. */
  protected async fill(): Promise<boolean> {
    if (this.closed) return false;
    if (this.ahead !== null) {
      const before = this.end;
      await this.ahead;
      this.ahead = null;
      if (this.end > before) return true;
      if (this.gone || this.closed) return false;
    }
    if (this.start === this.end) {
      this.start = this.end = 0;
    } else if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf.subarray(0, this.end));
        if (this.buf !== this.headBuffer) this.releaseBodyBuffer();
        this.buf = bigger;
      }
    }
    const space = this.buf.length - this.end;
    let n: number | null;
    try {
      n = await this.#readInto(this.end === 0 ? this.buf : this.buf.subarray(this.end));
    } catch {
      n = null;
    }
    if (!n) {
      // A read ended by our own close is not the client going away.
      if (!this.closed) this.gone = true;
      return false;
    }
    this.end += n;
    if (n === space && this.buf === this.headBuffer) this.#growNext = true;
    return true;
  }

  /** BodyHost: reads more request body bytes (100-continue first, body timeout). */
  async fillBody(): Promise<boolean> {
    const opts = this.source.options;
    if (this.expect100) {
      this.expect100 = false;
      if (!this.responseStarted) {
        try {
          await this.writeAll(CONTINUE);
        } catch {
          throw new HttpError(499, "Cannot read request body: the client closed the connection");
        }
      }
    }
    if (
      this.#growNext && this.ahead === null && this.start === this.end &&
      this.buf === this.headBuffer
    ) {
      // A fast upload: read it in bigger pieces (slow ones keep the small buffer).
      this.start = this.end = 0;
      this.buf = bodyBuffers.take();
    }
    this.#growNext = false;
    this.bodyDeadline = this.deadlineIn(opts.timeouts.bodyMs);
    this.arm();
    let ok: boolean;
    try {
      ok = await this.fill();
    } finally {
      this.bodyDeadline = 0;
      this.arm();
    }
    if (this.timedOut === 408) {
      throw new HttpError(408, "Cannot read request body: no data within the body timeout");
    }
    if (!ok) {
      throw new HttpError(499, "Cannot read request body: the client closed the connection");
    }
    return true;
  }

  /** BodyHost: the body was read to its end. */
  bodyEnded(): void {
    this.readAhead();
  }

  /** Starts the next request's first read while the current one is handled. */
  protected readAhead(): void {
    if (this.ahead !== null || this.closed) return;
    if (this.start === this.end) {
      this.start = this.end = 0;
      // The read-ahead may wait for as long as the connection idles: not in a bigger buffer.
      if (this.buf !== this.headBuffer) {
        this.#spare = this.buf;
        this.buf = this.headBuffer;
      }
    }
    if (this.end === this.buf.length) return; // full: read again after the response
    const read = this.#readInto(this.end === 0 ? this.buf : this.buf.subarray(this.end));
    this.ahead = read.then(this.#aheadRead, this.#clientGone);
  }

  // Bound once per connection (not two closures per request).
  #aheadRead = (n: number | null): void => {
    if (!n) this.#clientGone();
    else this.end += n;
  };

  #clientGone = (): void => {
    this.gone = true;
    this.request?.abort();
  };

  /** A connection went idle, its last response written: back to small buffers (see
   * {@link releaseBodyBuffer}), a big write buffer to its pool. */
  protected releaseIdleBuffers(): void {
    const w = this.#wbuf;
    if (w !== null && w.length > WRITE_BUFFER_IDLE) {
      this.#wbuf = null;
      giveWriteBuffer(w);
    }
    this.releaseBodyBuffer();
  }

  /** Back to the small head buffer once a connection goes idle (its body buffer to the pool:
   * the request it served is over, nothing holds a view into it any more). */
  protected releaseBodyBuffer(): void {
    const spare = this.#spare;
    if (spare !== null) {
      this.#spare = null;
      bodyBuffers.give(spare);
    }
    const b = this.buf;
    if (b === this.headBuffer) return;
    if (this.start === this.end && this.ahead === null) {
      bodyBuffers.give(b);
      this.buf = this.headBuffer;
      this.start = this.end = 0;
    }
  }

  // ------------------------------------------------------------------ writing

  /** Writes all of `data` within the send timeout per write. */
  async writeAll(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      try {
        off += await this.writeSome(off === 0 ? data : data.subarray(off));
      } finally {
        this.wrote();
      }
    }
  }

  /**
   * One write of `data` under the send timeout; the caller awaits it, then calls
   * {@link wrote} (writes the rest with {@link writeAll} when it was partial). For the response
   * writer, which so awaits the socket itself: a promise hop less per response.
   */
  writeSome(data: Uint8Array): Promise<number> {
    if (this.closed) throw new Error("Cannot write: connection closed");
    const sendMs = this.source.options.timeouts.sendMs;
    this.sendDeadline = sendMs > 0 ? coarseNow() + sendMs + TICK_MS : 0;
    this.arm();
    return this.stream.write(data);
  }

  /** A write of {@link writeSome} settled. */
  wrote(): void {
    this.sendDeadline = 0;
    this.arm();
  }

  /** The connection's reusable write buffer, at least `size` bytes. */
  writeBuffer(size: number): Uint8Array {
    let w = this.#wbuf;
    if (w === null || w.length < size) {
      // Writes are sequential: nothing is being written from the buffer outgrown here.
      if (w !== null) giveWriteBuffer(w);
      if (w === null && size <= WRITE_BUFFER) w = writeBuffers.take();
      else {
        const pooled = bigWriteBuffers.pop();
        if (pooled !== undefined && pooled.length >= size) w = pooled;
        else {
          if (pooled !== undefined) bigWriteBuffers.push(pooled);
          w = new Uint8Array(Math.max(size, w === null ? WRITE_BUFFER : w.length * 2));
        }
      }
      this.#wbuf = w;
    }
    return w;
  }

  /**
   * Gives the head and write buffers back to their pools. Only for a connection that is closed,
   * with every read and write into them settled, that was not handed over and never had a
   * request body (nothing can hold a view into them any more).
   */
  protected recycleBuffers(): void {
    if (!this.closed || this.handedOver || this.hadBody || this.ahead !== null) return;
    headBuffers.give(this.headBuffer);
    if (this.#wbuf !== null) giveWriteBuffer(this.#wbuf);
    this.#wbuf = null;
    this.#spare = null;
    this.buf = NO_BYTES;
    this.start = this.end = 0;
  }

  // ------------------------------------------------------------------ deadlines

  protected deadlineIn(ms: number): number {
    return ms > 0 ? Date.now() + ms : 0;
  }

  /** Sets `deadline` to the earliest of the phase deadlines. */
  protected arm(): void {
    let d = this.headDeadline;
    const b = this.bodyDeadline;
    const s = this.sendDeadline;
    if (b !== 0 && (d === 0 || b < d)) d = b;
    if (s !== 0 && (d === 0 || s < d)) d = s;
    this.deadline = d;
  }
}
