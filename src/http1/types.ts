/**
 * The messages every bws handler works with, whatever the wire: bws's own HTTP/1.1 front end,
 * or HTTP/2 through the internal `Deno.serve` bridge. A request carries a pull-based body, a
 * response carries bytes or a pull-based body; no fetch `Request`/`Response`/`Headers` on the
 * hot path (building them costs more than the rest of a small proxied request).
 *
 * @module
 */

import type { AbortSource } from "../net/abort_source.ts";

/**
 * A body read with backpressure: the producer only produces when the consumer asks.
 *
 * A chunk is only valid until the next `read()` (it may be a view into a reused buffer): write
 * it out or copy it before asking for the next one. That rule is what lets a 1 GB body pass
 * through bws with one buffer per direction and no garbage.
 */
export interface BodySource {
  /**
   * The next chunk (never empty), or null at the end of the body. Rejects when the body cannot
   * be read completely (the peer went away, a timeout, bad framing): a truncated body is never
   * mistaken for a complete one.
   */
  read(): Promise<Uint8Array | null>;
  /** Stops reading and releases what the body holds (idempotent, never throws). */
  cancel(reason?: unknown): void;
}

/** A request body: a source that counts what it delivered (for the access log). */
export interface RequestBodySource extends BodySource {
  /** Body bytes read so far. */
  readonly bytesRead: number;
}

/** A bidirectional byte stream: a `Deno.Conn`, a TLS connection, or an adapter to one. */
export interface ByteStream {
  /** Reads into `p`; resolves with the count, or null at EOF. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p` (at least one byte); resolves with the count written. */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions (idempotent in bws's wrappers; a raw Deno.Conn throws twice). */
  close(): void;
}

/** The address of the other end of a connection. */
export interface Peer {
  readonly hostname: string;
  readonly port: number;
}

/** The HTTP version a request arrived with. */
export type HttpVersion = "1.0" | "1.1" | "2";

/** Header fields in arrival order, names lower-cased, values as received (OWS trimmed). */
export class Fields {
  /** `[name, value]` pairs; repeated names stay separate entries. */
  readonly list: readonly (readonly [string, string])[];

  constructor(list: readonly (readonly [string, string])[]) {
    this.list = list;
  }

  /**
   * The value of `name` (lower-case), or null. Repeated fields are joined with ", " as
   * RFC 9110 §5.3 allows (not for Set-Cookie, which requests do not carry).
   */
  get(name: string): string | null {
    const list = this.list;
    let found: string | null = null;
    for (let i = 0; i < list.length; i++) {
      if (list[i][0] === name) found = found === null ? list[i][1] : found + ", " + list[i][1];
    }
    return found;
  }

  /** Whether a field `name` (lower-case) is present. */
  has(name: string): boolean {
    const list = this.list;
    for (let i = 0; i < list.length; i++) if (list[i][0] === name) return true;
    return false;
  }
}

/** One request as every handler sees it. As an {@link AbortSource} it aborts when the client
 * goes away before the response is complete. */
export interface HttpRequest extends AbortSource {
  /** The method token as received (case-sensitive: "GET"). */
  readonly method: string;
  /** The request-target as received: `/a/b?x=1` (origin form), or absolute form. */
  readonly target: string;
  /** The raw (still percent-encoded) path: "/a/b". */
  readonly path: string;
  /** "" or the query with its "?": "?x=1". Kept byte-for-byte. */
  readonly query: string;
  readonly version: HttpVersion;
  readonly headers: Fields;
  /**
   * The host the client asked for: the authority of an absolute-form target, else the Host
   * header (HTTP/1.x) or `:authority` (HTTP/2); null when absent (HTTP/1.0 without Host).
   */
  readonly host: string | null;
  /** The request body, or null when the request has none (no Content-Length / chunked, or 0). */
  readonly body: RequestBodySource | null;
  /** The body's declared Content-Length, or null when it is chunked (or absent). */
  readonly bodyLength: number | null;
  /** The client: the socket peer, or the address a trusted PROXY protocol header named. */
  readonly peer: Peer;
  /** The request came over TLS. */
  readonly tls: boolean;
  /** Epoch milliseconds when the request head was complete. */
  readonly time: number;
  /** `performance.now()` when the request head was complete. */
  readonly started: number;
  /**
   * Aborts when the client goes away before the response is complete. Built on first access
   * (most requests never need it).
   */
  readonly signal: AbortSignal;
  /** The client went away (cheap to read; no signal is built). */
  readonly clientGone: boolean;
  /** Same as `clientGone` (the {@link AbortSource} view). */
  readonly aborted: boolean;
}

/** One response as a handler returns it. The front end adds the framing headers. */
export interface HttpResponse {
  readonly status: number;
  /**
   * Header fields to send, in order. Must not contain Content-Length, Transfer-Encoding or
   * Connection: the front end writes the framing itself (from `body` and `length`).
   */
  readonly headers: readonly (readonly [string, string])[];
  /** The body: all of it, a source read with backpressure, or none. */
  readonly body: Uint8Array | BodySource | null;
  /**
   * The Content-Length to announce: for a `BodySource` whose length is known (else it goes out
   * chunked, or close-delimited to an HTTP/1.0 client), or with `body: null` for a HEAD or 304
   * answer that states the length of what a GET would send. Ignored for a `Uint8Array` body.
   */
  readonly length?: number | null;
  /** Close the connection once this response is sent. */
  readonly close?: boolean;
  /**
   * For a 101: called with the client's stream once the 101 head is written, and the bytes
   * the client already sent after its request. The connection is then the callee's.
   */
  readonly upgrade?: (stream: ByteStream, buffered: Uint8Array) => void;
  /**
   * Called once the response is written completely (`error` null) or abandoned (the client
   * went away, a write stalled, the body failed), with the body bytes written. Writable: the
   * request path attaches its bookkeeping to the (fresh) response object it returns.
   */
  done?: (bytes: number, error: unknown) => void;
}

/** What every handler is: a request in, a response out (it never rejects on purpose). */
export type HttpHandler = (req: HttpRequest) => Promise<HttpResponse> | HttpResponse;
