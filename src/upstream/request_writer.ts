/**
 * Writes one request upstream: the head (with a small body) in one write from the connection's
 * reusable buffer, then a larger body or a streamed one, read with backpressure and framed by
 * its Content-Length or re-chunked. The write is started, never awaited by the reader (waiting
 * for it before reading the response costs a round of the event loop per request).
 *
 * @module
 */

import type { BodySource } from "../http1/types.ts";
import type { Connection } from "./connection.ts";
import { UpstreamError } from "./errors.ts";
import type { UpstreamRequest } from "./types.ts";
import { errorText } from "../log/error_text.ts";

/** Bodies up to this size go out in the same write as the head. */
const INLINE_BODY = 64 * 1024;
const encoder = new TextEncoder();
/** Methods whose bodiless requests still announce `Content-Length: 0` (RFC 9110 §8.6). */
const ZERO_LENGTH_METHODS = new Set(["POST", "PUT", "PATCH"]);
const LAST_CHUNK = new Uint8Array([48, 13, 10, 13, 10]); // "0\r\n\r\n"

/** Thrown inside the body pump when an early answer made sending pointless (never escapes). */
const STOPPED = new UpstreamError(
  "aborted",
  "Cannot send request body: the upstream already answered",
);

/** Starts writing `req` on `conn`; `conn.ex.sendSettled` settles when it is done (never
 * rejects: failures are recorded on the exchange). */
export function sendRequest(conn: Connection, req: UpstreamRequest): void {
  const body = req.body;
  const ex = conn.ex;
  let h = req.method + " " + req.target + " HTTP/1.1\r\n";
  const hs = req.headers;
  for (let i = 0; i < hs.length; i++) h += hs[i][0] + ": " + hs[i][1] + "\r\n";
  if (req.lines !== undefined) h += req.lines;
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
    ex.maxBodyLength = req.maxBodyLength ?? Infinity;
    h += req.bodyLength !== null
      ? "Content-Length: " + req.bodyLength + "\r\n"
      : "Transfer-Encoding: chunked\r\n";
  }
  h += "\r\n";
  const bytes = encodeHead(conn, h, inline);
  ex.streaming = stream !== null;
  ex.sendSettled = rest === null && stream === null
    ? writeHead(conn, bytes)
    : write(conn, bytes, rest, stream, req.bodyLength);
}

/**
 * Sends a request that is all in `head` (no body, or a small one inline): one write and a `then`,
 * no async frames (two of them cost ~900 bytes of allocation per request).
 */
function writeHead(conn: Connection, head: Uint8Array): Promise<void> {
  let written: Promise<number>;
  try {
    written = conn.writeOnce(head);
  } catch (err) {
    sendFailed(conn, conn.writeFailed(err));
    return Promise.resolve();
  }
  return written.then((n) => {
    conn.wroteOnce();
    if (n < head.length) return write(conn, head.subarray(n), null, null, null);
    conn.markSent();
  }, (err) => sendFailed(conn, conn.writeFailed(err)));
}

async function write(
  conn: Connection,
  head: Uint8Array,
  rest: Uint8Array | null,
  stream: BodySource | null,
  length: number | null,
): Promise<void> {
  try {
    await conn.writeAll(head);
    if (rest !== null) await conn.writeAll(rest);
    if (stream !== null) await pump(conn, stream, length);
    conn.markSent();
  } catch (err) {
    sendFailed(conn, err);
  }
}

/** What a failed send does to the exchange (never throws). */
function sendFailed(conn: Connection, err: unknown): void {
  const ex = conn.ex;
  if (ex.headReceived) {
    // The answer is already here (e.g. 413 and close): keep reading it; sendDone stays
    // false, so the connection is not reused.
    ex.cancelBody();
    return;
  }
  const e = err instanceof UpstreamError
    ? err
    : new UpstreamError("reset", `Cannot talk to upstream: ${errorText(err)}`, { cause: err });
  // A socket error ends the read side by itself (and the upstream may still have answered);
  // anything else (timeout, abort, bad body) must interrupt the reader.
  if (e.kind === "reset" && ex.failure === null) {
    ex.cancelBody();
    return;
  }
  conn.fail(e);
}

/** Copies a streamed request body upstream (re-framed as chunked when its length is not
 * known); each chunk is written before the next is asked for. */
async function pump(conn: Connection, body: BodySource, length: number | null) {
  const ex = conn.ex;
  ex.bodySource = body;
  let sent = 0;
  try {
    while (true) {
      let chunk: Uint8Array | null;
      try {
        chunk = await body.read();
      } catch (err) {
        throw new UpstreamError(
          "client_body",
          `Cannot read the request body for upstream "${conn.origin}": ${errorText(err)}`,
          { cause: err, requestSent: true },
        );
      }
      if (ex.failure !== null) throw ex.failure;
      if (ex.stopSending) throw STOPPED;
      if (chunk === null) break;
      if (chunk.length === 0) continue;
      sent += chunk.length;
      if (length !== null) {
        if (sent > length) throw lengthMismatch(conn, length, "more");
        await conn.writeAll(chunk);
      } else {
        if (sent > ex.maxBodyLength) throw bodyTooLarge(conn);
        await conn.writeAll(chunkFrame(conn, chunk));
      }
    }
    if (length !== null && sent !== length) throw lengthMismatch(conn, length, "fewer");
    if (length === null) await conn.writeAll(LAST_CHUNK);
  } finally {
    if (ex.bodySource === body) ex.bodySource = null;
  }
}

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

function bodyTooLarge(conn: Connection): UpstreamError {
  return new UpstreamError(
    "body_too_large",
    `Cannot send request body to upstream "${conn.origin}": larger than ${conn.ex.maxBodyLength} bytes`,
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
