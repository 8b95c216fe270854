/**
 * One upstream socket with its reusable read and write buffers, read/write deadlines (one lazy
 * timer per connection) and the state of the exchange it carries (`ex`).
 *
 * @module
 */

import { socketErrorKind, UpstreamError } from "./errors.ts";
import { coarseNow, TICK_MS } from "../net/deadlines.ts";
import type { AbortSource } from "../net/abort_source.ts";
import { directReader, type ReadInto } from "../net/direct_read.ts";
import { abortedByClient, ExchangeState } from "./exchange_state.ts";
import { errorText } from "../log/error_text.ts";

const INITIAL_READ = 16 * 1024;
const BODY_READ = 64 * 1024;
const WRITE_BUFFER = 16 * 1024;

/** A pooled or fresh socket to one upstream origin. Used by one exchange at a time. */
export class Connection {
  readonly origin: string;
  readonly sock: Deno.Conn;
  /** Reads `sock` for responses (see {@link directReader}). */
  readonly #readInto: ReadInto;
  /** Read buffer: unread response bytes are `buf[start, end)`. */
  buf: Uint8Array = new Uint8Array(INITIAL_READ);
  start = 0;
  end = 0;
  /** Reusable buffer for the request head (and a small body, or a chunk frame). */
  wbuf: Uint8Array = new Uint8Array(WRITE_BUFFER);
  closed = false;
  /** Date.now() when it was put into the idle pool. */
  idleSince = 0;
  /** Handed out by the pool (busy). */
  inUse = false;
  /** The exchange this connection carries (reset for each one). */
  readonly ex: ExchangeState = new ExchangeState();

  #readDeadline = 0;
  /** A fill() is waiting for bytes. */
  #reading = false;
  #writeDeadline = 0;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #timerAt = 0;
  #growNext = false;
  /** Free bytes of the buffer when the pending read started. */
  #space = 0;
  /** The read started by {@link Connection.watchIdle}; the next exchange's first fill takes it. */
  #idleRead: Promise<number | null> | null = null;

  constructor(origin: string, sock: Deno.Conn) {
    this.origin = origin;
    this.sock = sock;
    this.#readInto = directReader(sock);
  }

  /**
   * Starts reading while the connection sits idle in the pool. An idle HTTP/1.1 connection must
   * stay silent: bytes (a stray or smuggled response), EOF or an error close it at once, so they
   * are never read as the next request's answer. Otherwise this read is the next exchange's
   * first read (no extra read per request). It keeps the process alive like any socket (an
   * unref/ref pair per request cost two ops): the pool's sweeper or `close()` ends it.
   */
  watchIdle(): void {
    this.#rewind();
    const read = this.#readInto(this.buf);
    this.#idleRead = read;
    read.then(this.#onIdleRead, this.#onIdleRead);
  }

  /** Takes the connection out of the pool. */
  takeFromPool(): void {
    this.inUse = true;
  }

  #onIdleRead = (): void => {
    if (!this.inUse) this.close();
  };

  /** Starts an exchange: resets its state and closes the socket if `abort` fires. */
  begin(readMs: number, writeMs: number, abort: AbortSource | undefined): void {
    this.ex.begin(readMs, writeMs, abort, this.#onAbort);
  }

  /** Ends the exchange: no more abort watching, no read deadline. */
  finishExchange(): void {
    this.ex.end();
    this.#readDeadline = 0;
  }

  #onAbort = (): void => this.fail(abortedByClient());

  /** Gives the socket away (an upgrade): no timer or abort watch of this object touches it. */
  detach(): void {
    this.closed = true;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#readDeadline = 0;
    this.#writeDeadline = 0;
  }

  /** Records the first failure and closes the socket so every pending operation ends. */
  fail(err: UpstreamError): void {
    this.ex.recordFailure(err);
    this.close();
  }

  /** Closes the socket (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.ex.cancelBody();
    try {
      this.sock.close();
    } catch {
      // already closed by the platform
    }
  }

  /**
   * Reads more bytes into `buf[end, …)`, compacting or growing the buffer when it is full.
   * Returns false at EOF. Throws the recorded failure or a mapped socket error.
   */
  async fill(): Promise<boolean> {
    let n: number | null;
    try {
      n = await this.startRead();
    } catch (err) {
      throw this.readFailed(err);
    }
    return this.afterRead(n);
  }

  /**
   * The first half of {@link fill}: starts the read (the pool's idle read when there is one).
   * Its result goes to {@link afterRead}, its failure to {@link readFailed}. The response-head
   * reader awaits the socket's promise itself: one promise hop less per request than `fill`.
   */
  startRead(): Promise<number | null> {
    const ex = this.ex;
    if (ex.failure !== null) throw ex.failure;
    const idleRead = this.#idleRead;
    if (idleRead !== null) {
      // Already reading into buf[0, …) since the pool: nothing was buffered in between.
      this.#idleRead = null;
    } else if (this.start === this.end) {
      this.#rewind();
    } else if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf.subarray(0, this.end));
        this.buf = bigger;
      }
    }
    this.#space = this.buf.length - this.end;
    // The read timeout counts from the end of the request (as nginx's proxy_read_timeout): a
    // long upload is guarded by the write timeout while it streams, not cut off by this one.
    this.#reading = true;
    if (!ex.streaming || ex.sendDone) {
      // Coarse clock + a tick: never early, and no clock read per request.
      this.#readDeadline = coarseNow() + ex.readMs + TICK_MS;
      this.#arm(this.#readDeadline);
    }
    return idleRead ?? this.#readInto(this.end === 0 ? this.buf : this.buf.subarray(this.end));
  }

  /** Takes the result of {@link startRead}: false at EOF. Throws the recorded failure. */
  afterRead(n: number | null): boolean {
    this.#readDeadline = 0;
    this.#reading = false;
    const ex = this.ex;
    if (ex.failure !== null) throw ex.failure;
    if (!n) return false;
    if (n === this.#space && this.start === 0 && this.end === 0) this.#growNext = true;
    this.end += n;
    ex.gotBytes = true;
    return true;
  }

  /** The error to throw when the read of {@link startRead} failed. */
  readFailed(err: unknown): UpstreamError {
    this.#readDeadline = 0;
    this.#reading = false;
    return this.ex.failure ?? (err instanceof UpstreamError ? err : new UpstreamError(
      socketErrorKind(err),
      `Cannot read from upstream "${this.origin}": ${errorText(err)}`,
      { cause: err },
    ));
  }

  /** Empties the read buffer, growing it first when the last read filled it. */
  #rewind(): void {
    this.start = this.end = 0;
    if (this.#growNext && this.buf.length < BODY_READ) this.buf = new Uint8Array(BODY_READ);
    this.#growNext = false;
  }

  /** Marks the request as completely sent; a pending read starts its read timeout now. */
  markSent(): void {
    this.ex.sendDone = true;
    if (this.#reading && this.#readDeadline === 0 && !this.closed) {
      this.#readDeadline = coarseNow() + this.ex.readMs + TICK_MS;
      this.#arm(this.#readDeadline);
    }
  }

  /** Writes all of `data`, each write bounded by the write timeout. */
  async writeAll(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      try {
        off += await this.writeOnce(off === 0 ? data : data.subarray(off));
      } catch (err) {
        throw this.writeFailed(err);
      }
      this.#writeDeadline = 0;
    }
  }

  /**
   * One write of `data` under the write timeout (throws the recorded failure first); then
   * {@link wroteOnce}, or {@link writeFailed} for its error. The request writer sends a head-only
   * request with it and a `then`, not through `writeAll`'s async frame.
   */
  writeOnce(data: Uint8Array): Promise<number> {
    const ex = this.ex;
    ex.requestSent = true;
    if (ex.failure !== null) throw ex.failure;
    this.#writeDeadline = coarseNow() + ex.writeMs + TICK_MS;
    this.#arm(this.#writeDeadline);
    return this.sock.write(data);
  }

  /** A write of {@link writeOnce} succeeded. */
  wroteOnce(): void {
    this.#writeDeadline = 0;
  }

  /** The error to throw for a failed {@link writeOnce}. */
  writeFailed(err: unknown): UpstreamError {
    this.#writeDeadline = 0;
    const ex = this.ex;
    if (ex.failure !== null) return ex.failure;
    if (err instanceof UpstreamError) return err;
    const kind = socketErrorKind(err);
    return new UpstreamError(
      kind === "read_timeout" ? "write_timeout" : kind,
      `Cannot write to upstream "${this.origin}": ${errorText(err)}`,
      { cause: err, requestSent: true },
    );
  }

  #arm(deadline: number): void {
    if (this.closed) return;
    if (this.#timer !== undefined) {
      if (this.#timerAt <= deadline) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = deadline;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, deadline - Date.now()));
    Deno.unrefTimer(this.#timer);
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    const now = Date.now();
    const r = this.#readDeadline;
    const w = this.#writeDeadline;
    const ex = this.ex;
    if (r !== 0 && now >= r) {
      this.fail(
        new UpstreamError(
          "read_timeout",
          `Cannot read from upstream "${this.origin}": no data for ${ex.readMs / 1000} s`,
          { requestSent: ex.requestSent },
        ),
      );
      return;
    }
    if (w !== 0 && now >= w) {
      this.fail(
        new UpstreamError(
          "write_timeout",
          `Cannot write to upstream "${this.origin}": stalled for ${ex.writeMs / 1000} s`,
          { requestSent: true },
        ),
      );
      return;
    }
    const next = r === 0 ? w : w === 0 ? r : Math.min(r, w);
    if (next !== 0) this.#arm(next);
  };
}
