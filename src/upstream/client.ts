/**
 * bws's own HTTP/1.1 upstream client over `Deno.connect` / `Deno.connectTls`, with a keep-alive
 * pool per origin. It exists because fetch decodes bodies, rewrites headers and costs about
 * 1.6x the CPU per proxied request (see shared/notes/deno-platform.md).
 *
 * @module
 */

import type { BodySource } from "../http1/types.ts";
import { BytesBody, sourceToStream, streamToSource } from "../http1/body_adapters.ts";
import { Connection } from "./connection.ts";
import { connectErrorKind, UpstreamError } from "./errors.ts";
import { findHeadEnd, parseResponseHead, type ResponseHead } from "./response_head.ts";
import { ChunkedBody, CloseBody, LengthBody, type ResponseBodySource } from "./response_body.ts";
import type { UpstreamTarget } from "./target.ts";
import { type AbortSource, toAbortSource } from "../net/abort_source.ts";

export type { AbortSource } from "../net/abort_source.ts";

/** One request to send upstream. */
export interface UpstreamRequest {
  method: string;
  /** Path + query exactly as to be sent on the request line ("/a/b?x=1"). */
  target: string;
  /** Header lines to send, in order, names as given. Includes Host. Must NOT include
   *  Content-Length / Transfer-Encoding / Connection: the client sets framing itself. */
  headers: [string, string][];
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
  /** Idle sockets kept per origin. @default 32 */
  maxIdlePerOrigin?: number;
  /** Seconds an idle socket may wait in the pool (below typical upstream keep-alive 5 s). @default 4 */
  idleTimeout?: number;
  /** Largest response head (status line + headers) in bytes. @default 65536 */
  maxHeadSize?: number;
  /** Extra PEM CA certificates for https upstreams (DENO_CERT is honoured by Deno itself). */
  caCerts?: string[];
}

interface OriginPool {
  idle: Connection[];
  busy: number;
}

const INLINE_BODY = 64 * 1024;
/** Interim (1xx) responses tolerated before the final one. */
const MAX_INTERIM = 16;
const encoder = new TextEncoder();
/** Methods whose bodiless requests still announce `Content-Length: 0` (RFC 9110 §8.6). */
const ZERO_LENGTH_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** Keep-alive HTTP/1.1 client with one pool per upstream origin. */
export class UpstreamClient {
  readonly #maxIdle: number;
  readonly #idleMs: number;
  readonly #maxHead: number;
  readonly #caCerts: string[] | undefined;
  readonly #pools = new Map<string, OriginPool>();
  #sweeper: ReturnType<typeof setInterval> | undefined = undefined;
  #closed = false;

  constructor(opts: UpstreamClientOptions = {}) {
    this.#maxIdle = opts.maxIdlePerOrigin ?? 32;
    this.#idleMs = (opts.idleTimeout ?? 4) * 1000;
    this.#maxHead = opts.maxHeadSize ?? 64 * 1024;
    this.#caCerts = opts.caCerts;
  }

  /**
   * Sends one request and resolves with the response head; the body streams afterwards.
   * Rejects with {@link UpstreamError}. A pooled connection that fails before any response byte
   * is retried once on a fresh connection when the body is replayable (null or bytes).
   */
  async request(target: UpstreamTarget, req: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.#closed) {
      throw new UpstreamError("closed", "Cannot send upstream request: the client is closed", {
        dial: true,
      });
    }
    if (req.signal?.aborted) {
      throw new UpstreamError("aborted", "Cannot send upstream request: aborted by the client", {
        dial: true,
      });
    }
    const body = req.body;
    if (body !== null && !(body instanceof Uint8Array) && isReadableStream(body)) {
      req = { ...req, body: streamToSource(body) };
    }
    if (req.signal instanceof AbortSignal) req = { ...req, signal: toAbortSource(req.signal) };
    const pooled = this.#takeIdle(target.origin);
    if (pooled !== null) {
      try {
        return await this.#exchange(pooled, req, true);
      } catch (err) {
        const replayable = req.body === null || req.body instanceof Uint8Array;
        if (
          !(err instanceof UpstreamError) || !err.reusedConnection || !replayable ||
          req.signal?.aborted || this.#closed
        ) throw err;
      }
    }
    const conn = await this.#dial(target, req);
    return await this.#exchange(conn, req, false);
  }

  /**
   * Sends an upgrade request (a WebSocket handshake) on a fresh connection, never pooled. A 101
   * hands over the socket and the bytes already read after the head; any other answer is a
   * normal response whose connection is closed after its body. Rejects with
   * {@link UpstreamError}.
   */
  async upgrade(target: UpstreamTarget, req: UpstreamRequest): Promise<UpstreamUpgrade> {
    if (this.#closed) {
      throw new UpstreamError("closed", "Cannot send upstream request: the client is closed", {
        dial: true,
      });
    }
    if (req.signal instanceof AbortSignal) req = { ...req, signal: toAbortSource(req.signal) };
    const conn = await this.#dial(target, req);
    conn.begin(req.timeouts.readMs, req.timeouts.writeMs, req.signal as AbortSource | undefined);
    let head: ResponseHead;
    try {
      this.#send(conn, req);
      head = await this.#readHead(conn, true);
    } catch (err) {
      this.#finish(conn, false);
      throw exchangeError(err, conn, false);
    }
    if (head.status !== 101) {
      return { upgraded: false, response: this.#response(conn, req, head, false, false) };
    }
    conn.finishExchange();
    conn.detach();
    if (conn.inUse) {
      conn.inUse = false;
      this.#pool(conn.origin).busy--;
    }
    return {
      upgraded: true,
      headers: head.headers,
      stream: conn.sock,
      buffered: conn.buf.slice(conn.start, conn.end),
    };
  }

  /** Pool stats for status/metrics: idle and busy sockets per origin. */
  stats(): { origin: string; idle: number; busy: number }[] {
    const out: { origin: string; idle: number; busy: number }[] = [];
    for (const [origin, p] of this.#pools) out.push({ origin, idle: p.idle.length, busy: p.busy });
    return out;
  }

  /** Closes every pooled connection; busy ones close when their exchange ends. */
  close(): void {
    this.#closed = true;
    for (const p of this.#pools.values()) {
      for (const c of p.idle) c.close();
      p.idle.length = 0;
    }
    this.#stopSweeper();
  }

  // ---------------------------------------------------------------- pool

  #pool(origin: string): OriginPool {
    let p = this.#pools.get(origin);
    if (p === undefined) {
      p = { idle: [], busy: 0 };
      this.#pools.set(origin, p);
    }
    return p;
  }

  #takeIdle(origin: string): Connection | null {
    const p = this.#pools.get(origin);
    if (p === undefined) return null;
    const now = Date.now();
    while (p.idle.length > 0) {
      const c = p.idle.pop()!;
      if (c.closed || now - c.idleSince >= this.#idleMs) {
        c.close();
        continue;
      }
      c.takeFromPool();
      p.busy++;
      return c;
    }
    return null;
  }

  #finishBody = (conn: Connection, reusable: boolean): void => this.#finish(conn, reusable);

  /** Ends the exchange on `conn`: back to the pool when `reusable`, else closed. */
  #finish(conn: Connection, reusable: boolean): void {
    conn.finishExchange();
    if (
      !reusable || conn.failure !== null || conn.closed || conn.start !== conn.end || this.#closed
    ) {
      this.#drop(conn);
      return;
    }
    if (conn.sendDone) {
      this.#release(conn);
    } else if (conn.streaming) {
      // The upstream answered before taking the whole body: the connection's state is unknown.
      this.#drop(conn);
    } else {
      // Only the (unawaited) head write is still settling.
      conn.sendSettled.then(() => {
        if (conn.sendDone && conn.failure === null) this.#release(conn);
        else this.#drop(conn);
      });
    }
  }

  #drop(conn: Connection): void {
    conn.close();
    if (conn.inUse) {
      conn.inUse = false;
      this.#pool(conn.origin).busy--;
    }
  }

  #release(conn: Connection): void {
    const p = this.#pool(conn.origin);
    if (conn.inUse) {
      conn.inUse = false;
      p.busy--;
    }
    if (this.#closed || conn.closed || p.idle.length >= this.#maxIdle) {
      conn.close();
      return;
    }
    conn.idleSince = Date.now();
    conn.watchIdle();
    p.idle.push(conn);
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, this.#idleMs / 4));
      Deno.unrefTimer(this.#sweeper);
    }
  }

  #sweep(): void {
    const now = Date.now();
    let left = 0;
    for (const p of this.#pools.values()) {
      let stale = 0;
      while (stale < p.idle.length && now - p.idle[stale].idleSince >= this.#idleMs) {
        p.idle[stale++].close();
      }
      if (stale > 0) p.idle.splice(0, stale);
      left += p.idle.length;
    }
    if (left === 0) this.#stopSweeper();
  }

  #stopSweeper(): void {
    if (this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  // ---------------------------------------------------------------- connect

  async #dial(target: UpstreamTarget, req: UpstreamRequest): Promise<Connection> {
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, req.timeouts.connectMs);
    const abort = req.signal as AbortSource | undefined;
    abort?.onAbort(() => ctl.abort());
    let handshaking = false;
    let sock: Deno.Conn | null = null;
    try {
      if (target.tls) {
        const opts: Deno.ConnectTlsOptions = { hostname: target.hostname, port: target.port };
        if (this.#caCerts !== undefined) opts.caCerts = this.#caCerts;
        const tlsConn = await untilAborted(Deno.connectTls(opts), ctl.signal);
        sock = tlsConn;
        handshaking = true;
        await untilAborted(tlsConn.handshake(), ctl.signal);
      } else {
        const tcp = await Deno.connect({
          hostname: target.hostname,
          port: target.port,
          signal: ctl.signal,
        });
        sock = tcp;
        tcp.setNoDelay(true);
      }
    } catch (err) {
      if (sock !== null) {
        try {
          sock.close();
        } catch { /* already closed */ }
      }
      const kind = timedOut
        ? "connect_timeout"
        : abort?.aborted
        ? "aborted"
        : handshaking
        ? (connectErrorKind(err, true) === "connect_timeout" ? "connect_timeout" : "tls")
        : connectErrorKind(err, target.tls);
      const detail = timedOut
        ? `no connection after ${req.timeouts.connectMs / 1000} s`
        : errText(err);
      throw new UpstreamError(kind, `Cannot connect to upstream "${target.origin}": ${detail}`, {
        dial: true,
        cause: err,
      });
    } finally {
      clearTimeout(timer);
      abort?.onAbort(null);
    }
    if (this.#closed) {
      sock.close();
      throw new UpstreamError("closed", "Cannot send upstream request: the client is closed", {
        dial: true,
      });
    }
    const conn = new Connection(target.origin, sock);
    conn.inUse = true;
    this.#pool(target.origin).busy++;
    return conn;
  }

  // ---------------------------------------------------------------- exchange

  async #exchange(
    conn: Connection,
    req: UpstreamRequest,
    reused: boolean,
  ): Promise<UpstreamResponse> {
    conn.begin(req.timeouts.readMs, req.timeouts.writeMs, req.signal as AbortSource | undefined);
    let head: ResponseHead;
    try {
      this.#send(conn, req);
      head = await this.#readHead(conn);
    } catch (err) {
      this.#finish(conn, false);
      throw exchangeError(err, conn, reused);
    }
    return this.#response(conn, req, head, reused, head.keepAlive);
  }

  /** The response for a final head read on `conn`; its body reads on from the connection. */
  #response(
    conn: Connection,
    req: UpstreamRequest,
    head: ResponseHead,
    reused: boolean,
    keepAlive: boolean,
  ): UpstreamResponse {
    conn.headReceived = true;
    if (!conn.sendDone && conn.streaming && head.status >= 300) {
      // An early error answer (e.g. 413): stop sending the rest of the body.
      conn.stopSending = true;
      conn.bodySource?.cancel();
    }
    const res = new ResponseParts(
      head.status,
      head.statusText,
      head.headers,
      head.hasTransferEncoding ? null : head.contentLength,
      reused,
    );
    const s = head.status;
    const finish = this.#finishBody;
    if (req.method === "HEAD" || s === 204 || s === 304) {
      this.#finish(conn, keepAlive);
    } else if (head.hasTransferEncoding) {
      res.source = head.chunked
        ? new ChunkedBody(conn, keepAlive, finish)
        : new CloseBody(conn, finish);
    } else if (head.contentLength !== null) {
      const length = head.contentLength;
      if (length === 0) {
        this.#finish(conn, keepAlive);
      } else if (conn.end - conn.start >= length) {
        // The whole body is already buffered: hand the socket back before the consumer reads.
        res.bytes = conn.buf.slice(conn.start, conn.start + length) as Uint8Array<ArrayBuffer>;
        conn.start += length;
        this.#finish(conn, keepAlive);
      } else {
        res.source = new LengthBody(conn, length, keepAlive, finish);
      }
    } else {
      res.source = new CloseBody(conn, finish);
    }
    return res;
  }

  /** Starts writing the request; never awaited by the reader (platform note), never rejects. */
  #send(conn: Connection, req: UpstreamRequest): void {
    const body = req.body;
    let h = req.method + " " + req.target + " HTTP/1.1\r\n";
    const hs = req.headers;
    for (let i = 0; i < hs.length; i++) h += hs[i][0] + ": " + hs[i][1] + "\r\n";
    let inline: Uint8Array | null = null;
    let rest: Uint8Array | null = null;
    let stream: BodySource | null = null;
    if (body === null) {
      if (ZERO_LENGTH_METHODS.has(req.method)) h += "Content-Length: 0\r\n";
    } else if (body instanceof Uint8Array) {
      h += "Content-Length: " + body.length + "\r\n";
      if (body.length <= INLINE_BODY) inline = body;
      else rest = body;
    } else {
      stream = body as BodySource;
      conn.maxBodyLength = req.maxBodyLength ?? Infinity;
      h += req.bodyLength !== null
        ? "Content-Length: " + req.bodyLength + "\r\n"
        : "Transfer-Encoding: chunked\r\n";
    }
    h += "\r\n";
    const bytes = encodeHead(conn, h, inline);
    conn.streaming = stream !== null;
    conn.sendSettled = this.#write(conn, bytes, rest, stream, req.bodyLength);
  }

  async #write(
    conn: Connection,
    head: Uint8Array,
    rest: Uint8Array | null,
    stream: BodySource | null,
    length: number | null,
  ): Promise<void> {
    try {
      await conn.writeAll(head);
      if (rest !== null) await conn.writeAll(rest);
      if (stream !== null) await this.#pump(conn, stream, length);
      conn.markSent();
    } catch (err) {
      if (conn.headReceived) {
        // The answer is already here (e.g. 413 and close): keep reading it; sendDone stays
        // false, so the connection is not reused.
        conn.bodySource?.cancel();
        conn.bodySource = null;
        return;
      }
      const e = asUpstreamError(err, "reset");
      // A socket error ends the read side by itself (and the upstream may still have answered);
      // anything else (timeout, abort, bad body) must interrupt the reader.
      if (e.kind === "reset" && conn.failure === null) {
        conn.bodySource?.cancel();
        conn.bodySource = null;
        return;
      }
      conn.fail(e);
    }
  }

  /** Copies a streamed request body upstream (re-framed as chunked when its length is not
   * known); each chunk is written before the next is asked for. */
  async #pump(conn: Connection, body: BodySource, length: number | null) {
    conn.bodySource = body;
    let sent = 0;
    try {
      while (true) {
        let chunk: Uint8Array | null;
        try {
          chunk = await body.read();
        } catch (err) {
          throw new UpstreamError(
            "client_body",
            `Cannot read the request body for upstream "${conn.origin}": ${errText(err)}`,
            { cause: err, requestSent: true },
          );
        }
        if (conn.failure !== null) throw conn.failure;
        if (conn.stopSending) throw STOPPED;
        if (chunk === null) break;
        if (chunk.length === 0) continue;
        sent += chunk.length;
        if (length !== null) {
          if (sent > length) throw lengthMismatch(conn, length, "more");
          await conn.writeAll(chunk);
        } else {
          if (sent > conn.maxBodyLength) throw bodyTooLarge(conn);
          await conn.writeAll(chunkFrame(conn, chunk));
        }
      }
      if (length !== null && sent !== length) throw lengthMismatch(conn, length, "fewer");
      if (length === null) await conn.writeAll(LAST_CHUNK);
    } finally {
      if (conn.bodySource === body) conn.bodySource = null;
    }
  }

  async #readHead(conn: Connection, upgrade = false): Promise<ResponseHead> {
    let interim = 0;
    while (true) {
      const headEnd = findHeadEnd(conn.buf, conn.start, conn.end);
      if (headEnd === -1) {
        if (conn.end - conn.start > this.#maxHead) throw headTooLarge(conn, this.#maxHead);
        if (!(await conn.fill())) {
          throw new UpstreamError(
            "closed",
            `Cannot read response from upstream "${conn.origin}": connection closed before the response head`,
          );
        }
        continue;
      }
      if (headEnd - conn.start > this.#maxHead) throw headTooLarge(conn, this.#maxHead);
      const head = parseResponseHead(conn.buf, conn.start, headEnd);
      conn.start = headEnd;
      if (head.status >= 200 || (upgrade && head.status === 101)) return head;
      if (head.status === 101) {
        // The client never asks for an upgrade (WebSockets have their own path): the bytes
        // after this are another protocol.
        throw new UpstreamError(
          "protocol",
          `Cannot read response from upstream "${conn.origin}": 101 Switching Protocols to a request that asked for no upgrade`,
          { requestSent: true },
        );
      }
      // 1xx interim (100 Continue, 103 Early Hints): skip, the final response follows.
      if (++interim > MAX_INTERIM) {
        throw new UpstreamError(
          "protocol",
          `Cannot read response from upstream "${conn.origin}": more than ${MAX_INTERIM} interim responses`,
          { requestSent: true },
        );
      }
    }
  }
}

// ------------------------------------------------------------------ helpers

/** Not `instanceof ReadableStream`: reading that global runs Deno's lazy getter every time. */
function isReadableStream(b: object): b is ReadableStream<Uint8Array> {
  return typeof (b as { getReader?: unknown }).getReader === "function";
}

/** Thrown inside the body pump when an early answer made sending pointless (never escapes). */
const STOPPED = new UpstreamError(
  "aborted",
  "Cannot send request body: the upstream already answered",
);

const LAST_CHUNK = new Uint8Array([48, 13, 10, 13, 10]); // "0\r\n\r\n"

/** `chunk` framed as one chunk, in the connection's write buffer (no allocation once grown). */
function chunkFrame(conn: Connection, chunk: Uint8Array): Uint8Array {
  const size = chunk.length.toString(16);
  const need = size.length + 2 + chunk.length + 2;
  if (conn.wbuf.length < need) conn.wbuf = new Uint8Array(Math.max(need, conn.wbuf.length * 2));
  const frame = conn.wbuf;
  for (let i = 0; i < size.length; i++) frame[i] = size.charCodeAt(i);
  let p = size.length;
  frame[p++] = 13;
  frame[p++] = 10;
  frame.set(chunk, p);
  p += chunk.length;
  frame[p++] = 13;
  frame[p] = 10;
  return frame.subarray(0, need);
}

/** Encodes the head (and a small body) into the connection's write buffer, one write. */
function encodeHead(conn: Connection, head: string, body: Uint8Array | null): Uint8Array {
  const need = head.length + (body === null ? 0 : body.length);
  if (conn.wbuf.length < need) conn.wbuf = new Uint8Array(Math.max(need, conn.wbuf.length * 2));
  const buf = conn.wbuf;
  const r = encoder.encodeInto(head, buf);
  if (r.read !== head.length || r.written !== head.length) {
    // Header values are byte strings: send chars 0x80-0xFF as single latin1 bytes.
    for (let i = 0; i < head.length; i++) buf[i] = head.charCodeAt(i) & 0xff;
  }
  if (body === null) return buf.subarray(0, head.length);
  buf.set(body, head.length);
  return buf.subarray(0, need);
}

/** An UpstreamResponse whose `source` and `body` over `bytes` are only built when asked for. */
class ResponseParts implements UpstreamResponse {
  bytes: Uint8Array<ArrayBuffer> | null = null;
  #source: ResponseBodySource | null = null;
  #body: ReadableStream<Uint8Array> | null = null;

  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly headers: [string, string][],
    readonly contentLength: number | null,
    readonly reused: boolean,
  ) {}

  get source(): ResponseBodySource | null {
    if (this.#source === null && this.bytes !== null) this.#source = new BytesBody(this.bytes);
    return this.#source;
  }

  set source(src: ResponseBodySource | null) {
    this.#source = src;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#body === null) {
      const src = this.source;
      if (src !== null) this.#body = sourceToStream(src);
    }
    return this.#body;
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function asUpstreamError(err: unknown, kind: UpstreamError["kind"]): UpstreamError {
  if (err instanceof UpstreamError) return err;
  return new UpstreamError(kind, `Cannot talk to upstream: ${errText(err)}`, { cause: err });
}

function exchangeError(err: unknown, conn: Connection, reused: boolean): UpstreamError {
  const e = asUpstreamError(err, "reset");
  e.requestSent = conn.requestSent;
  if (reused && !conn.gotBytes && (e.kind === "reset" || e.kind === "closed")) {
    e.reusedConnection = true;
  }
  return e;
}

function headTooLarge(conn: Connection, max: number): UpstreamError {
  return new UpstreamError(
    "head_too_large",
    `Cannot read response from upstream "${conn.origin}": head exceeds ${max} bytes`,
    { requestSent: true },
  );
}

function bodyTooLarge(conn: Connection): UpstreamError {
  return new UpstreamError(
    "body_too_large",
    `Cannot send request body to upstream "${conn.origin}": larger than ${conn.maxBodyLength} bytes`,
    { requestSent: true },
  );
}

function lengthMismatch(conn: Connection, length: number, what: string): UpstreamError {
  return new UpstreamError(
    "protocol",
    `Cannot send request body to upstream "${conn.origin}": stream delivered ${what} bytes than its length ${length}`,
    { requestSent: true },
  );
}

/** Resolves like `p` unless `signal` aborts first; a late result is closed if it is a socket. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.then((v) => (v as { close?: () => void }).close?.(), () => {});
    return Promise.reject(new DOMException("aborted", "AbortError"));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      p.then((v) => (v as { close?: () => void }).close?.(), () => {});
      reject(new DOMException("aborted", "AbortError"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) return;
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
