/**
 * Upstream response bodies as pull-based sources reading straight from the pooled connection's
 * buffer: each chunk is a view into that buffer, valid until the next read, so a body of any
 * size passes with one buffer and no garbage. The connection goes back to the pool (or is
 * closed) on the read that returns the end — after the consumer is done with the last chunk —
 * or when the body is cancelled.
 *
 * @module
 */

import type { CountingSource } from "../http1/body_adapters.ts";
import { ChunkedDecoder } from "./chunked_decoder.ts";
import type { Connection } from "./connection.ts";
import { UpstreamError } from "./errors.ts";
import { errorText } from "../log/error_text.ts";

/** Ends the exchange: `reusable` when the connection may serve another request. */
export type FinishExchange = (conn: Connection, reusable: boolean) => void;

/** A response body: a source that counts what it delivered. */
export type ResponseBodySource = CountingSource;

function asUpstreamError(err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  return new UpstreamError("reset", `Cannot talk to upstream: ${errorText(err)}`, {
    cause: err,
  });
}

function midBodyClose(conn: Connection): UpstreamError {
  return new UpstreamError(
    "closed",
    `Cannot read response body from upstream "${conn.origin}": connection closed mid-body`,
    { requestSent: true },
  );
}

/** Shared ending logic: the connection is handed back exactly once. */
abstract class ConnectionBody implements ResponseBodySource {
  protected readonly conn: Connection;
  readonly #finish: FinishExchange;
  #ended = false;
  #error: UpstreamError | null = null;
  bytesRead = 0;

  constructor(conn: Connection, finish: FinishExchange) {
    this.conn = conn;
    this.#finish = finish;
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#error !== null) throw this.#error;
    if (this.#ended) return null;
    let chunk: Uint8Array | null;
    try {
      chunk = await this.next();
    } catch (err) {
      const e = asUpstreamError(err);
      this.#error = e;
      this.#end(false);
      throw e;
    }
    if (chunk === null) {
      this.#end(this.reusable());
      return null;
    }
    this.bytesRead += chunk.length;
    return chunk;
  }

  cancel(): void {
    if (this.#ended) return;
    this.#error = new UpstreamError("aborted", "Cannot read response body: cancelled");
    this.#end(false);
  }

  #end(reusable: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#finish(this.conn, reusable);
  }

  /** The next chunk, or null at the end (the connection is then finished by `read`). */
  protected abstract next(): Promise<Uint8Array | null>;
  /** Whether the connection may be reused once the body ended. */
  protected abstract reusable(): boolean;
}

/** A body framed by Content-Length. */
export class LengthBody extends ConnectionBody {
  #remaining: number;
  readonly #keepAlive: boolean;

  constructor(conn: Connection, length: number, keepAlive: boolean, finish: FinishExchange) {
    super(conn, finish);
    this.#remaining = length;
    this.#keepAlive = keepAlive;
  }

  protected async next(): Promise<Uint8Array | null> {
    if (this.#remaining === 0) return null;
    const c = this.conn;
    if (c.start === c.end && !(await c.fill())) throw midBodyClose(c);
    const take = Math.min(this.#remaining, c.end - c.start);
    const view = c.buf.subarray(c.start, c.start + take);
    c.start += take;
    this.#remaining -= take;
    return view;
  }

  protected reusable(): boolean {
    return this.#keepAlive;
  }
}

/** A chunked body, decoded in place in the connection's buffer; trailers are dropped. */
export class ChunkedBody extends ConnectionBody {
  readonly #decoder = new ChunkedDecoder();
  readonly #keepAlive: boolean;

  constructor(conn: Connection, keepAlive: boolean, finish: FinishExchange) {
    super(conn, finish);
    this.#keepAlive = keepAlive;
  }

  protected async next(): Promise<Uint8Array | null> {
    const c = this.conn;
    const dec = this.#decoder;
    while (!dec.done) {
      if (c.start < c.end) {
        const from = c.start;
        dec.decode(c.buf, from, c.end, c.buf, from);
        c.start = from + dec.consumed;
        if (dec.produced > 0) return c.buf.subarray(from, from + dec.produced);
        if (dec.done) break;
      }
      if (!(await c.fill())) throw midBodyClose(c);
    }
    return null;
  }

  protected reusable(): boolean {
    return this.#keepAlive;
  }
}

/** A body delimited by the connection closing: never reusable. */
export class CloseBody extends ConnectionBody {
  protected async next(): Promise<Uint8Array | null> {
    const c = this.conn;
    if (c.start === c.end && !(await c.fill())) return null;
    const view = c.buf.subarray(c.start, c.end);
    c.start = c.end;
    return view;
  }

  protected reusable(): boolean {
    return false;
  }
}
