/**
 * Request bodies read straight from the client connection's buffer, with backpressure: bytes are
 * read from the socket only when the consumer asks, and each chunk is a view into the
 * connection's buffer (valid until the next read), so an upload of any size passes with one
 * buffer. Chunked bodies are decoded in place (output never overtakes input).
 *
 * @module
 */

import type { BodySource } from "./types.ts";
import { ChunkedBodyDecoder } from "./chunked_body.ts";
import { HttpError } from "./errors.ts";

/** What a body needs from its connection. */
export interface BodyHost {
  /** The read buffer: unread bytes are `buf[start, end)`. */
  readonly buf: Uint8Array;
  start: number;
  end: number;
  /**
   * Reads more bytes into the buffer (answering `Expect: 100-continue` first, guarded by the
   * body timeout). False at EOF; rejects with an {@link HttpError} (408 on timeout, 499 when the
   * client went away).
   */
  fillBody(): Promise<boolean>;
  /** The body was read to its end: the connection may read ahead. */
  bodyEnded(): void;
}

/** Largest request body the connection reads and discards to keep a connection alive. */
export const DRAIN_MAX = 256 * 1024;

/** A request body with state the connection needs after the response. */
export interface RequestBody extends BodySource {
  /** Body bytes read so far. */
  readonly bytesRead: number;
  /** Read to its end (or failed / cancelled: then `failed` is true). */
  readonly finished: boolean;
  readonly failed: boolean;
  /** Whether reading the rest to keep the connection is cheap enough. */
  drainable(): boolean;
}

function gone(): HttpError {
  return new HttpError(499, "Cannot read request body: the client closed the connection");
}

/** A body of known length (Content-Length > 0). */
export class LengthBody implements RequestBody {
  readonly #host: BodyHost;
  #remaining: number;
  bytesRead = 0;
  finished = false;
  failed = false;
  #error: unknown = null;
  #ended = false;

  constructor(host: BodyHost, length: number) {
    this.#host = host;
    this.#remaining = length;
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#error !== null) throw this.#error;
    if (this.#remaining === 0) {
      // The consumer is done with the last chunk: the connection may read ahead now.
      if (!this.#ended) {
        this.#ended = true;
        this.#host.bodyEnded();
      }
      return null;
    }
    const h = this.#host;
    try {
      if (h.start === h.end && !(await h.fillBody())) throw gone();
    } catch (err) {
      this.#fail(err);
      throw err;
    }
    if (this.#error !== null) throw this.#error;
    const take = Math.min(this.#remaining, h.end - h.start);
    const view = h.buf.subarray(h.start, h.start + take);
    h.start += take;
    this.#remaining -= take;
    this.bytesRead += take;
    if (this.#remaining === 0) this.finished = true;
    return view;
  }

  cancel(reason?: unknown): void {
    if (this.finished) return;
    this.#fail(reason ?? new HttpError(499, "Cannot read request body: cancelled"));
  }

  drainable(): boolean {
    return !this.failed && this.#remaining <= DRAIN_MAX;
  }

  #fail(err: unknown): void {
    if (this.#error !== null) return;
    this.#error = err;
    this.finished = true;
    this.failed = true;
  }
}

/** A chunked body, decoded in place; trailers are read and dropped. */
export class ChunkedBody implements RequestBody {
  readonly #host: BodyHost;
  readonly #decoder = new ChunkedBodyDecoder();
  bytesRead = 0;
  finished = false;
  failed = false;
  #error: unknown = null;

  #ended = false;

  constructor(host: BodyHost) {
    this.#host = host;
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#error !== null) throw this.#error;
    if (this.finished) {
      // The consumer is done with the last chunk: the connection may read ahead now.
      if (!this.#ended) {
        this.#ended = true;
        this.#host.bodyEnded();
      }
      return null;
    }
    const h = this.#host;
    const dec = this.#decoder;
    try {
      while (true) {
        if (h.start < h.end) {
          const from = h.start;
          dec.decode(h.buf, from, h.end, h.buf, from);
          h.start = from + dec.consumed;
          const produced = dec.produced;
          this.bytesRead += produced;
          if (dec.done) this.finished = true;
          if (produced > 0) return h.buf.subarray(from, from + produced);
          if (dec.done) return await this.read();
        }
        if (!(await h.fillBody())) throw gone();
      }
    } catch (err) {
      this.#fail(err);
      throw err;
    }
  }

  cancel(reason?: unknown): void {
    if (this.finished) return;
    this.#fail(reason ?? new HttpError(499, "Cannot read request body: cancelled"));
  }

  drainable(): boolean {
    return !this.failed && this.bytesRead <= DRAIN_MAX;
  }

  #fail(err: unknown): void {
    if (this.#error !== null) return;
    this.#error = err;
    this.finished = true;
    this.failed = true;
  }
}
