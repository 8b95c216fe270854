/**
 * One upstream socket with its reusable read and write buffers, read/write deadlines (one lazy
 * timer per connection) and the per-exchange state the client needs.
 *
 * @module
 */

import { socketErrorKind, UpstreamError } from "./errors.ts";
import { coarseNow, TICK_MS } from "../http1/deadlines.ts";
import type { AbortSource } from "../net/abort_source.ts";
import type { BodySource } from "../http1/types.ts";

const INITIAL_READ = 16 * 1024;
const BODY_READ = 64 * 1024;
const WRITE_BUFFER = 16 * 1024;

/** A pooled or fresh socket to one upstream origin. Used by one exchange at a time. */
export class Connection {
  readonly origin: string;
  readonly sock: Deno.Conn;
  /** Read buffer: unread response bytes are `buf[start, end)`. */
  buf: Uint8Array = new Uint8Array(INITIAL_READ);
  start = 0;
  end = 0;
  /** Reusable buffer for the request head (and a small body). */
  wbuf: Uint8Array = new Uint8Array(WRITE_BUFFER);
  closed = false;
  /** Date.now() when it was put into the idle pool. */
  idleSince = 0;
  /** Handed out by the pool (busy). */
  inUse = false;

  // --- per exchange ---
  /** First failure of the current exchange; pending reads and writes throw it. */
  failure: UpstreamError | null = null;
  /** Some response byte arrived in this exchange. */
  gotBytes = false;
  /** Some request byte was handed to the socket in this exchange. */
  requestSent = false;
  /** The request (head and body) was written completely. */
  sendDone = false;
  /** The request body is a stream still being sent (cannot wait for it to finish). */
  streaming = false;
  /** The final response head was received. */
  headReceived = false;
  /** The upstream answered early with an error: stop sending the request body. */
  stopSending = false;
  /** Resolves when the send side of this exchange settled (never rejects). */
  sendSettled: Promise<void> = Promise.resolve();
  /** A streamed request body being sent, to cancel it when the exchange ends early. */
  bodySource: BodySource | null = null;
  /** Limit for a streamed body of unknown length (set per exchange). */
  maxBodyLength = Infinity;
  readMs = 30_000;
  writeMs = 30_000;
  #abort: AbortSource | null = null;

  #readDeadline = 0;
  /** A fill() is waiting for bytes. */
  #reading = false;
  #writeDeadline = 0;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #timerAt = 0;
  #growNext = false;
  /** The read started by {@link Connection.watchIdle}; the next exchange's first fill takes it. */
  #idleRead: Promise<number | null> | null = null;

  constructor(origin: string, sock: Deno.Conn) {
    this.origin = origin;
    this.sock = sock;
  }

  /**
   * Starts reading while the connection sits idle in the pool. An idle HTTP/1.1 connection must
   * stay silent: bytes (a stray or smuggled response), EOF or an error close it at once, so they
   * are never read as the next request's answer. Otherwise this read is the next exchange's
   * first read (no extra read per request). It does not keep the process alive.
   */
  watchIdle(): void {
    this.#rewind();
    this.sock.unref();
    const read = this.sock.read(this.buf);
    this.#idleRead = read;
    read.then(this.#onIdleRead, this.#onIdleRead);
  }

  /** Takes the connection out of the pool (it holds the process again while in use). */
  takeFromPool(): void {
    this.inUse = true;
    this.sock.ref();
  }

  #onIdleRead = (): void => {
    if (!this.inUse) this.close();
  };

  /** Resets per-exchange state and watches `abort` (closing the socket when it fires). */
  begin(readMs: number, writeMs: number, abort: AbortSource | undefined): void {
    this.failure = null;
    this.gotBytes = false;
    this.requestSent = false;
    this.sendDone = false;
    this.streaming = false;
    this.headReceived = false;
    this.stopSending = false;
    this.bodySource = null;
    this.readMs = readMs;
    this.writeMs = writeMs;
    if (abort !== undefined) {
      this.#abort = abort;
      abort.onAbort(this.#onAbort);
    }
  }

  /** Stops watching the abort source and the deadlines of this exchange. */
  finishExchange(): void {
    const abort = this.#abort;
    if (abort !== null) {
      abort.onAbort(null);
      this.#abort = null;
    }
    this.#readDeadline = 0;
  }

  #onAbort = (): void => {
    this.fail(
      new UpstreamError("aborted", "Cannot finish upstream request: aborted by the client"),
    );
  };

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
    if (this.failure === null) this.failure = err;
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
    if (this.bodySource !== null) {
      this.bodySource.cancel();
      this.bodySource = null;
    }
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
    if (this.failure !== null) throw this.failure;
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
    const space = this.buf.length - this.end;
    // The read timeout counts from the end of the request (as nginx's proxy_read_timeout): a
    // long upload is guarded by the write timeout while it streams, not cut off by this one.
    this.#reading = true;
    if (!this.streaming || this.sendDone) {
      this.#readDeadline = Date.now() + this.readMs;
      this.#arm(this.#readDeadline);
    }
    let n: number | null;
    try {
      n = await (idleRead ?? this.sock.read(this.buf.subarray(this.end)));
    } catch (err) {
      throw this.failure ?? new UpstreamError(
        socketErrorKind(err),
        `Cannot read from upstream "${this.origin}": ${(err as Error).message}`,
        { cause: err },
      );
    } finally {
      this.#readDeadline = 0;
      this.#reading = false;
    }
    if (this.failure !== null) throw this.failure;
    if (n === null) return false;
    if (n === space && this.start === 0 && this.end === 0) this.#growNext = true;
    this.end += n;
    this.gotBytes = true;
    return true;
  }

  /** Empties the read buffer, growing it first when the last read filled it. */
  #rewind(): void {
    this.start = this.end = 0;
    if (this.#growNext && this.buf.length < BODY_READ) this.buf = new Uint8Array(BODY_READ);
    this.#growNext = false;
  }

  /** Marks the request as completely sent; a pending read starts its read timeout now. */
  markSent(): void {
    this.sendDone = true;
    if (this.#reading && this.#readDeadline === 0 && !this.closed) {
      this.#readDeadline = Date.now() + this.readMs;
      this.#arm(this.#readDeadline);
    }
  }

  /** Writes all of `data`, each write bounded by the write timeout. */
  async writeAll(data: Uint8Array): Promise<void> {
    this.requestSent = true;
    let off = 0;
    while (off < data.length) {
      if (this.failure !== null) throw this.failure;
      this.#writeDeadline = coarseNow() + this.writeMs + TICK_MS;
      this.#arm(this.#writeDeadline);
      try {
        off += await this.sock.write(off === 0 ? data : data.subarray(off));
      } catch (err) {
        const kind = socketErrorKind(err);
        throw this.failure ?? new UpstreamError(
          kind === "read_timeout" ? "write_timeout" : kind,
          `Cannot write to upstream "${this.origin}": ${(err as Error).message}`,
          { cause: err, requestSent: true },
        );
      } finally {
        this.#writeDeadline = 0;
      }
    }
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
    if (r !== 0 && now >= r) {
      this.fail(
        new UpstreamError(
          "read_timeout",
          `Cannot read from upstream "${this.origin}": no data for ${this.readMs / 1000} s`,
          { requestSent: this.requestSent },
        ),
      );
      return;
    }
    if (w !== 0 && now >= w) {
      this.fail(
        new UpstreamError(
          "write_timeout",
          `Cannot write to upstream "${this.origin}": stalled for ${this.writeMs / 1000} s`,
          { requestSent: true },
        ),
      );
      return;
    }
    const next = r === 0 ? w : w === 0 ? r : Math.min(r, w);
    if (next !== 0) this.#arm(next);
  };
}
