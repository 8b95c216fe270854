/**
 * What goes in and comes out of bws's upstream HTTP/1.1 client.
 *
 * @module
 */

import type { BodySource } from "../http1/types.ts";
import type { AbortSource } from "../net/abort_source.ts";
import type { ResponseBodySource } from "./response_body.ts";

/** One request to send upstream. */
export interface UpstreamRequest {
  method: string;
  /** Path + query exactly as to be sent on the request line ("/a/b?x=1"). */
  target: string;
  /** Header lines to send, in order, names as given. Includes Host. Must NOT include
   *  Content-Length / Transfer-Encoding / Connection: the client sets framing itself. */
  headers: [string, string][];
  /** More header fields as lines (`name: value\r\n` each, checked by the caller), sent after
   * `headers`. @default "" */
  lines?: string;
  /** null = no body. A source is read with backpressure (a client's upload passes straight
   * through); a ReadableStream is adapted to one. */
  body: BodySource | ReadableStream<Uint8Array> | Uint8Array | null;
  /** Known body length (from the client's Content-Length) or null = unknown → chunked. */
  bodyLength: number | null;
  /** For a body of unknown length: fail with "body_too_large" once more bytes than this were
   *  read from it. @default Infinity */
  maxBodyLength?: number;
  /** Client went away → abort everything, close the connection. A bws request is an
   * {@link AbortSource} itself (subscribing costs a field write); an AbortSignal is adapted. */
  signal?: AbortSource | AbortSignal;
  /** Milliseconds: connect (TCP + TLS), read (head wait and longest body gap), write stall. */
  timeouts: UpstreamTimeouts;
}

/** Upstream timeouts in milliseconds. */
export interface UpstreamTimeouts {
  readonly connectMs: number;
  readonly readMs: number;
  readonly writeMs: number;
}

/** The upstream's final response; the body streams straight from the socket. */
export interface UpstreamResponse {
  status: number;
  statusText: string;
  /** As received, in order, repeated names kept (multiple Set-Cookie). Names lower-cased. */
  headers: [string, string][];
  /** The body read with backpressure, each chunk a view into the connection's buffer (valid
   *  until the next read); null for HEAD / 1xx / 204 / 304 / Content-Length: 0. Rejects
   *  (UpstreamError) when the upstream fails mid-body, so a truncated body is never mistaken for
   *  a complete one. The connection returns to the pool once it has been read to its end. */
  readonly source: ResponseBodySource | null;
  /** The same body as a ReadableStream (built on first access; copies each chunk). */
  readonly body: ReadableStream<Uint8Array> | null;
  /** The whole body when it arrived together with the head (Content-Length framing), else
   *  null. Answering with these bytes instead of `body` skips the stream machinery, which costs
   *  more than the rest of a small proxied request. */
  readonly bytes: Uint8Array<ArrayBuffer> | null;
  /** The upstream's valid Content-Length header when it framed the message that way (also on
   *  HEAD / 304 where no body follows), else null (chunked or close-delimited). */
  contentLength: number | null;
  /** True when the connection came from the pool (for retry decisions / tests). */
  reused: boolean;
}

/** What {@link UpstreamClient.upgrade} resolves with. */
export type UpstreamUpgrade =
  | {
    readonly upgraded: true;
    /** The 101's header fields (names lower-cased). */
    readonly headers: readonly [string, string][];
    /** The upstream socket, now the caller's. */
    readonly stream: Deno.Conn;
    /** Bytes the upstream sent after the 101 head. */
    readonly buffered: Uint8Array;
  }
  | { readonly upgraded: false; readonly response: UpstreamResponse };

/** Options of {@link UpstreamClient}. */
export interface UpstreamClientOptions {
  /** Idle sockets kept per origin. @default 256 */
  maxIdlePerOrigin?: number;
  /** Milliseconds an idle socket may wait in the pool (below the usual upstream keep-alive of
   *  5 s). @default 4000 */
  idleTimeoutMs?: number;
  /** Largest response head (status line + headers) in bytes. @default 65536 */
  maxHeadSize?: number;
  /** Extra PEM CA certificates for https upstreams (DENO_CERT is honoured by Deno itself). */
  caCerts?: string[];
}
