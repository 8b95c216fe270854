/**
 * Reads one response from an upstream connection: interim (1xx) heads skipped, the final head
 * parsed, and the body handed out as a pull-based source framed by Content-Length, chunked
 * encoding or the connection's close — or as bytes when it all arrived with the head.
 *
 * @module
 */

import { BytesBody, sourceToStream } from "../http1/body_adapters.ts";
import { copyBytes } from "../net/small_copies.ts";
import type { Connection } from "./connection.ts";
import { UpstreamError } from "./errors.ts";
import {
  ChunkedBody,
  CloseBody,
  type FinishExchange,
  LengthBody,
  type ResponseBodySource,
} from "./response_body.ts";
import { findHeadEnd, readResponseHeadIn, type ResponseHead } from "./response_head.ts";
import type { UpstreamRequest, UpstreamResponse } from "./types.ts";

/** Interim (1xx) responses tolerated before the final one. */
const MAX_INTERIM = 16;

/**
 * Reads the final response head (or a 101 when `upgrade` is asked for). Throws
 * {@link UpstreamError}: "closed" when the connection ends first, "head_too_large", "protocol".
 */
export async function readResponseHead(
  conn: Connection,
  maxHead: number,
  upgrade = false,
): Promise<ResponseHead> {
  let head: ResponseHead | null;
  while ((head = bufferedResponseHead(conn, maxHead, upgrade)) === null) {
    if (!(await conn.fill())) throw closedBeforeHead(conn);
  }
  return head;
}

/**
 * The final response head when it is buffered on `conn` (interim 1xx heads are skipped on the
 * way), or null: read more, then ask again. The steps of {@link readResponseHead}, for a caller
 * that awaits the socket itself (an async layer less per request). Throws as it does.
 */
export function bufferedResponseHead(
  conn: Connection,
  maxHead: number,
  upgrade: boolean,
): ResponseHead | null {
  const ex = conn.ex;
  while (true) {
    // Usually the whole head is there at the first try: one pass parses it. Otherwise the parse
    // waits until a cheap scan of the new bytes finds the head's end (a head trickling in a byte
    // at a time is not parsed again for every byte).
    const s = conn.start;
    const scanned = ex.headScanned;
    const head = scanned < 0 || findHeadEnd(conn.buf, s, conn.end, s + scanned) !== -1
      ? readResponseHeadIn(conn.buf, s, conn.end)
      : null;
    if (head === null) {
      if (conn.end - s > maxHead) throw headTooLarge(conn, maxHead);
      // Nothing buffered yet (the usual case: the request was just sent): the first read is
      // parsed at once, not scanned for the head's end first and then parsed.
      ex.headScanned = conn.end - s > 3 ? conn.end - s - 3 : -1;
      return null;
    }
    if (head.end - conn.start > maxHead) throw headTooLarge(conn, maxHead);
    conn.start = head.end;
    ex.headScanned = -1;
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
    if (++ex.interimHeads > MAX_INTERIM) {
      throw new UpstreamError(
        "protocol",
        `Cannot read response from upstream "${conn.origin}": more than ${MAX_INTERIM} interim responses`,
        { requestSent: true },
      );
    }
  }
}

/** What a read that meets the end of the connection before the head throws. */
export function closedBeforeHead(conn: Connection): UpstreamError {
  return new UpstreamError(
    "closed",
    `Cannot read response from upstream "${conn.origin}": connection closed before the response head`,
  );
}

/**
 * The response for a final head read on `conn`; its body reads on from the connection. `finish`
 * ends the exchange (back to the pool when reusable) once the body is read or given up.
 */
export function responseFor(
  conn: Connection,
  req: UpstreamRequest,
  head: ResponseHead,
  reused: boolean,
  keepAlive: boolean,
  finish: FinishExchange,
): UpstreamResponse {
  const ex = conn.ex;
  ex.headReceived = true;
  if (!ex.sendDone && ex.streaming && head.status >= 300) {
    // An early error answer (e.g. 413): stop sending the rest of the body.
    ex.stopSending = true;
    ex.cancelBody();
  }
  const res = new ResponseParts(
    head.status,
    head.statusText,
    head.headers,
    head.hasTransferEncoding ? null : head.contentLength,
    reused,
  );
  const s = head.status;
  if (req.method === "HEAD" || s === 204 || s === 304) {
    finish(conn, keepAlive);
  } else if (head.hasTransferEncoding) {
    res.source = head.chunked
      ? new ChunkedBody(conn, keepAlive, finish)
      : new CloseBody(conn, finish);
  } else if (head.contentLength !== null) {
    const length = head.contentLength;
    if (length === 0) {
      finish(conn, keepAlive);
    } else if (conn.end - conn.start >= length) {
      // The whole body is already buffered: hand the socket back before the consumer reads.
      res.bytes = copyBytes(conn.buf, conn.start, conn.start + length);
      conn.start += length;
      finish(conn, keepAlive);
    } else {
      res.source = new LengthBody(conn, length, keepAlive, finish);
    }
  } else {
    res.source = new CloseBody(conn, finish);
  }
  return res;
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

function headTooLarge(conn: Connection, max: number): UpstreamError {
  return new UpstreamError(
    "head_too_large",
    `Cannot read response from upstream "${conn.origin}": head exceeds ${max} bytes`,
    { requestSent: true },
  );
}
