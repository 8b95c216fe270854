/**
 * Writes one response onto a client connection: the head (framing chosen here: Content-Length,
 * chunked for HTTP/1.1, close-delimited for HTTP/1.0), the body (bytes, inline with the head
 * when small, or a `BodySource` pumped chunk by chunk through the connection's reusable write
 * buffer), whether the connection stays open, and the 101 that hands the stream to an upgrade.
 *
 * @module
 */

import type { ConnectionIO } from "./connection_io.ts";
import type { FrontRequest } from "./front_request.ts";
import { encodeHead, statusLine } from "./head_bytes.ts";
import type { RequestBody } from "./request_body.ts";
import type { RequestHead } from "./request_head.ts";
import type { BodySource, HttpResponse } from "./types.ts";

/** Bodies up to this size go out in the same write as the head. */
const INLINE_BODY = 16 * 1024;
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");

/**
 * Writes the response; gives (or resolves with) whether the connection stays open for another
 * request. A response that fits one write (no body, or a small one) takes no async frame: its
 * write settles in a `then`.
 */
export function writeResponse(
  conn: ConnectionIO,
  req: FrontRequest,
  head: RequestHead,
  body: RequestBody | null,
  res: HttpResponse,
): boolean | Promise<boolean> {
  const status = res.status;
  const src = res.body;
  if (conn.answered || conn.closed) {
    if (src !== null && !(src instanceof Uint8Array)) src.cancel();
    try {
      res.done?.(0, new Error("Cannot send the response: the connection was closed"));
    } catch {
      // ignore
    }
    return false;
  }
  if (status === 101 && res.upgrade !== undefined) return writeUpgrade(conn, res);
  const noBody = req.method === "HEAD" || status < 200 || status === 204 || status === 304;
  let keep = head.keepAlive && res.close !== true && !conn.draining && !conn.gone;
  if (keep && body !== null && !body.finished && (!body.drainable() || conn.expect100)) {
    keep = false;
  }
  let h = statusLine(status);
  const hs = res.headers;
  for (let i = 0; i < hs.length; i++) h += hs[i][0] + ": " + hs[i][1] + "\r\n";
  // 0 none, 1 bytes, 2 source with length, 3 chunked source, 4 close-delimited source
  let mode = 0;
  let length = 0;
  if (noBody) {
    if (status >= 200 && status !== 204) {
      const len = src instanceof Uint8Array ? src.length : res.length;
      if (len !== undefined && len !== null) h += "content-length: " + len + "\r\n";
    }
    if (src !== null && !(src instanceof Uint8Array)) src.cancel();
  } else if (src === null) {
    h += "content-length: 0\r\n";
  } else if (src instanceof Uint8Array) {
    mode = 1;
    length = src.length;
    h += "content-length: " + length + "\r\n";
  } else if (res.length !== undefined && res.length !== null) {
    mode = 2;
    length = res.length;
    h += "content-length: " + length + "\r\n";
  } else if (head.version === "1.1") {
    mode = 3;
    h += "transfer-encoding: chunked\r\n";
  } else {
    mode = 4;
    keep = false;
  }
  if (!keep) h += "connection: close\r\n";
  else if (head.version === "1.0") h += "connection: keep-alive\r\n";
  h += "\r\n";

  conn.responseStarted = true;
  const inline = mode === 1 && length <= INLINE_BODY;
  const w = conn.writeBuffer(h.length + (inline ? length : 0));
  let n = encodeHead(h, w);
  if (inline) {
    w.set(src as Uint8Array, n);
    n += length;
  }
  const first = w.subarray(0, n);
  if (mode >= 2 || (mode === 1 && !inline)) {
    return writeStreamed(conn, res, body, first, mode, length, keep);
  }
  // The whole response is in `first`.
  const sent = inline ? length : 0;
  let written: Promise<number>;
  try {
    written = conn.writeSome(first);
  } catch (err) {
    conn.wrote();
    conn.close();
    return responseDone(res, body, conn, sent, err, false);
  }
  return written.then((k) => {
    conn.wrote();
    if (k < n) return writeRest(conn, res, body, first.subarray(k), sent, keep);
    return responseDone(res, body, conn, sent, null, keep);
  }, (err) => {
    conn.wrote();
    conn.close();
    return responseDone(res, body, conn, sent, err, false);
  });
}

/** What is left of a response that was all in one buffer, after a short write. */
async function writeRest(
  conn: ConnectionIO,
  res: HttpResponse,
  body: RequestBody | null,
  rest: Uint8Array,
  sent: number,
  keep: boolean,
): Promise<boolean> {
  let error: unknown = null;
  try {
    await conn.writeAll(rest);
  } catch (err) {
    error = err;
    keep = false;
    conn.close();
  }
  return responseDone(res, body, conn, sent, error, keep);
}

/** A response whose body goes out after its head: large bytes, or a source pumped through. */
async function writeStreamed(
  conn: ConnectionIO,
  res: HttpResponse,
  body: RequestBody | null,
  first: Uint8Array,
  mode: number,
  length: number,
  keep: boolean,
): Promise<boolean> {
  const src = res.body;
  let sent = 0;
  let error: unknown = null;
  try {
    let written: number;
    try {
      written = await conn.writeSome(first);
    } finally {
      conn.wrote();
    }
    if (written < first.length) await conn.writeAll(first.subarray(written));
    if (mode === 1) {
      await conn.writeAll(src as Uint8Array);
      sent = length;
    } else {
      sent = await pump(conn, src as BodySource, mode === 3);
      if (mode === 2 && sent !== length) {
        throw new Error(`Cannot send response body: ${sent} bytes for Content-Length ${length}`);
      }
    }
  } catch (err) {
    error = err;
    keep = false;
    if (mode >= 2) (src as BodySource).cancel(err);
    conn.close();
  }
  return responseDone(res, body, conn, sent, error, keep);
}

/**
 * The response is over (sent, or given up with `error`): the rest of the request body is read
 * when the connection stays, then the response's `done` runs. Gives whether the connection
 * stays open.
 */
function responseDone(
  res: HttpResponse,
  body: RequestBody | null,
  conn: ConnectionIO,
  sent: number,
  error: unknown,
  keep: boolean,
): boolean | Promise<boolean> {
  if (keep && body !== null && !body.finished) {
    return drain(body).then((drained) => finishResponse(res, conn, sent, error, drained));
  }
  return finishResponse(res, conn, sent, error, keep);
}

function finishResponse(
  res: HttpResponse,
  conn: ConnectionIO,
  sent: number,
  error: unknown,
  keep: boolean,
): boolean {
  try {
    res.done?.(sent, error);
  } catch {
    // a done callback must not end the connection loop
  }
  return keep && !conn.closed;
}

/** Copies a streamed body to the client; resolves with the body bytes sent. */
async function pump(conn: ConnectionIO, src: BodySource, chunked: boolean): Promise<number> {
  let sent = 0;
  while (true) {
    const chunk = await src.read();
    if (chunk === null) break;
    if (chunk.length === 0) continue;
    if (chunked) {
      const size = chunk.length.toString(16);
      const w = conn.writeBuffer(size.length + chunk.length + 4);
      let p = 0;
      for (let i = 0; i < size.length; i++) w[p++] = size.charCodeAt(i);
      w[p++] = 13;
      w[p++] = 10;
      w.set(chunk, p);
      p += chunk.length;
      w[p++] = 13;
      w[p++] = 10;
      await conn.writeAll(w.subarray(0, p));
    } else {
      await conn.writeAll(chunk);
    }
    sent += chunk.length;
  }
  if (chunked) await conn.writeAll(LAST_CHUNK);
  return sent;
}

/** Reads and discards what is left of a request body; false when it cannot be done. */
async function drain(body: RequestBody): Promise<boolean> {
  if (!body.drainable()) return false;
  try {
    while ((await body.read()) !== null) {
      if (!body.drainable()) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** Writes a 101 head and hands the stream to the upgrade. */
async function writeUpgrade(conn: ConnectionIO, res: HttpResponse): Promise<boolean> {
  let h = statusLine(101);
  for (const [name, value] of res.headers) h += name + ": " + value + "\r\n";
  h += "\r\n";
  const w = conn.writeBuffer(h.length);
  const n = encodeHead(h, w);
  try {
    await conn.writeAll(w.subarray(0, n));
  } catch (err) {
    res.done?.(0, err);
    conn.close();
    return false;
  }
  const buffered = conn.handOver();
  conn.start = conn.end = 0;
  res.done?.(0, null);
  res.upgrade!(conn, buffered);
  return false;
}
