/**
 * bws's own HTTP/1.1 upstream client over `Deno.connect` / `Deno.connectTls`, with a keep-alive
 * pool per origin. It exists because fetch decodes bodies, rewrites headers and costs about
 * 1.6x the CPU per proxied request.
 *
 * The layers, as undici has them: `dial.ts` connects, `pool.ts` keeps idle connections,
 * `request_writer.ts` writes a request, `response_reader.ts` reads a response and hands out its
 * body (`response_body.ts`); `connection.ts` is one socket with its buffers and deadlines, and
 * `exchange_state.ts` the state of the exchange it carries. This file joins them.
 *
 * @module
 */

import { streamToSource } from "../http1/body_adapters.ts";
import { type AbortSource, toAbortSource } from "../net/abort_source.ts";
import type { Connection } from "./connection.ts";
import { dial } from "./dial.ts";
import { UpstreamError } from "./errors.ts";
import { ConnectionPool } from "./pool.ts";
import { sendRequest } from "./request_writer.ts";
import {
  bufferedResponseHead,
  closedBeforeHead,
  readResponseHead,
  responseFor,
} from "./response_reader.ts";
import type { ResponseHead } from "./response_head.ts";
import type { UpstreamTarget } from "./target.ts";
import type {
  UpstreamClientOptions,
  UpstreamRequest,
  UpstreamResponse,
  UpstreamUpgrade,
} from "./types.ts";
import { errorText } from "../log/error_text.ts";

/**
 * Idle connections kept per upstream origin by default. Measured (2026-12): with 32, a load of
 * 128 requests in flight to one upstream (8 HTTP/2 connections of 16 streams) opened a new
 * upstream connection every ~14 requests (each completed burst left more idle than 32, closed
 * at once, and redialled for the next), 20 % of the CPU per request and a TIME_WAIT socket each
 * time. Idle ones still go after the idle timeout, and all of them at a shortage of descriptors
 * ({@link UpstreamClient.closeIdle}).
 */
const DEFAULT_MAX_IDLE = 256;

export type { AbortSource } from "../net/abort_source.ts";
export type {
  UpstreamClientOptions,
  UpstreamRequest,
  UpstreamResponse,
  UpstreamTimeouts,
  UpstreamUpgrade,
} from "./types.ts";

/** Keep-alive HTTP/1.1 client with one pool per upstream origin. */
export class UpstreamClient {
  readonly #maxHead: number;
  readonly #caCerts: string[] | undefined;
  readonly #pool: ConnectionPool;
  #closed = false;

  constructor(opts: UpstreamClientOptions = {}) {
    this.#maxHead = opts.maxHeadSize ?? 64 * 1024;
    this.#caCerts = opts.caCerts;
    this.#pool = new ConnectionPool({
      maxIdlePerOrigin: opts.maxIdlePerOrigin ?? DEFAULT_MAX_IDLE,
      idleMs: opts.idleTimeoutMs ?? 4000,
    });
  }

  /**
   * Sends one request and resolves with the response head; the body streams afterwards.
   * Rejects with {@link UpstreamError}. A pooled connection that fails before any response byte
   * is retried once on a fresh connection when the body is replayable (null or bytes).
   */
  async request(target: UpstreamTarget, req: UpstreamRequest): Promise<UpstreamResponse> {
    req = this.#prepare(req);
    let conn = this.#pool.take(target.origin);
    let reused = conn !== null;
    if (conn === null) conn = await this.#dial(target, req);
    // One async function for the whole exchange: every async layer between the socket and the
    // caller costs a promise hop per request.
    while (true) {
      conn.begin(req.timeouts.readMs, req.timeouts.writeMs, req.signal as AbortSource | undefined);
      let head: ResponseHead | null;
      try {
        sendRequest(conn, req);
        // readResponseHead, without its async frames (a promise hop and ~0.5 KB per request).
        while ((head = bufferedResponseHead(conn, this.#maxHead, false)) === null) {
          if (!conn.afterRead(await conn.startRead())) throw closedBeforeHead(conn);
        }
      } catch (err) {
        // A failed read becomes the recorded failure or a socket error of this upstream.
        const failure = conn.readFailed(err);
        this.#finish(conn, false);
        const e = exchangeError(failure, conn, reused);
        const replayable = req.body === null || req.body instanceof Uint8Array;
        if (!e.reusedConnection || !replayable || req.signal?.aborted || this.#closed) throw e;
        // A pooled connection the upstream had closed: once more on a fresh one.
        conn = await this.#dial(target, req);
        reused = false;
        continue;
      }
      return responseFor(conn, req, head, reused, head.keepAlive, this.#finish);
    }
  }

  /**
   * Sends an upgrade request (a WebSocket handshake) on a fresh connection, never pooled. A 101
   * hands over the socket and the bytes already read after the head; any other answer is a
   * normal response whose connection is closed after its body. Rejects with
   * {@link UpstreamError}.
   */
  async upgrade(target: UpstreamTarget, req: UpstreamRequest): Promise<UpstreamUpgrade> {
    req = this.#prepare(req);
    const conn = await this.#dial(target, req);
    conn.begin(req.timeouts.readMs, req.timeouts.writeMs, req.signal as AbortSource | undefined);
    let head: ResponseHead;
    try {
      sendRequest(conn, req);
      head = await readResponseHead(conn, this.#maxHead, true);
    } catch (err) {
      this.#finish(conn, false);
      throw exchangeError(err, conn, false);
    }
    if (head.status !== 101) {
      return {
        upgraded: false,
        response: responseFor(conn, req, head, false, false, this.#finish),
      };
    }
    conn.finishExchange();
    conn.detach();
    this.#pool.forget(conn);
    return {
      upgraded: true,
      headers: head.headers,
      stream: conn.sock,
      buffered: conn.buf.slice(conn.start, conn.end),
    };
  }

  /** Pool stats for status/metrics: idle and busy sockets per origin. */
  stats(): { origin: string; idle: number; busy: number }[] {
    return this.#pool.stats();
  }

  /**
   * Closes the idle pooled connections (the client stays open): descriptors ran out, and an
   * idle upstream connection is the cheapest one to give back. Gives how many were closed.
   */
  closeIdle(): number {
    return this.#pool.closeIdle();
  }

  /** Closes every pooled connection; busy ones close when their exchange ends. */
  close(): void {
    this.#closed = true;
    this.#pool.close();
  }

  /** Checks the client and the request can go, and adapts a stream body or a signal. */
  #prepare(req: UpstreamRequest): UpstreamRequest {
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
    return req;
  }

  async #dial(target: UpstreamTarget, req: UpstreamRequest): Promise<Connection> {
    const conn = await dial(target, req, this.#caCerts);
    if (this.#closed) {
      conn.close();
      throw new UpstreamError("closed", "Cannot send upstream request: the client is closed", {
        dial: true,
      });
    }
    this.#pool.addBusy(conn);
    return conn;
  }

  /** Ends the exchange on `conn`: back to the pool when `reusable`, else closed. */
  #finish = (conn: Connection, reusable: boolean): void => {
    conn.finishExchange();
    const ex = conn.ex;
    const pool = this.#pool;
    if (
      !reusable || ex.failure !== null || conn.closed || conn.start !== conn.end || this.#closed
    ) {
      pool.drop(conn);
      return;
    }
    if (ex.sendDone) {
      pool.release(conn);
    } else if (ex.streaming) {
      // The upstream answered before taking the whole body: the connection's state is unknown.
      pool.drop(conn);
    } else {
      // Only the (unawaited) head write is still settling.
      ex.sendSettled.then(() => {
        if (ex.sendDone && ex.failure === null) pool.release(conn);
        else pool.drop(conn);
      });
    }
  };
}

/** Not `instanceof ReadableStream`: reading that global runs Deno's lazy getter every time. */
function isReadableStream(b: object): b is ReadableStream<Uint8Array> {
  return typeof (b as { getReader?: unknown }).getReader === "function";
}

function exchangeError(err: unknown, conn: Connection, reused: boolean): UpstreamError {
  const e = err instanceof UpstreamError ? err : new UpstreamError(
    "reset",
    `Cannot talk to upstream: ${errorText(err)}`,
    { cause: err },
  );
  e.requestSent = conn.ex.requestSent;
  if (reused && !conn.ex.gotBytes && (e.kind === "reset" || e.kind === "closed")) {
    e.reusedConnection = true;
  }
  return e;
}
