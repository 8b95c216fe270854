/**
 * Adapters between bws's messages and fetch's `Request` / `Response`, for the two places that
 * deal in fetch objects: HTTP/2 (served by an internal `Deno.serve`) and the management API
 * (Hono). Neither is the proxy's hot path.
 *
 * @module
 */

import { sourceToStream, streamToSource } from "./body_adapters.ts";
import { noteStreamedBytes } from "./gc_pacer.ts";
import { isValidHostPort } from "./request_target.ts";
import { SignalAbortSource } from "../net/abort_source.ts";
import { coarseNow, deadlines, TICK_MS, type Timed } from "../net/deadlines.ts";
import {
  type BodySource,
  Fields,
  type HttpRequest,
  type HttpResponse,
  type HttpVersion,
  type Peer,
  type RequestBodySource,
} from "./types.ts";

const NO_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** Splits an absolute URL into its raw path (never empty) and query ("" or "?…"). */
export function splitUrl(url: string): [string, string] {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return ["/", ""];
  const q = url.indexOf("?", start);
  const hash = url.indexOf("#", start);
  const end = hash < 0 ? url.length : hash;
  return q < 0 || q > end ? [url.slice(start, end), ""] : [url.slice(start, q), url.slice(q, end)];
}

/** The authority of an absolute URL (`host[:port]`). */
export function authorityOf(url: string): string {
  const start = url.indexOf("//") + 2;
  const end = url.indexOf("/", start);
  return url.slice(start, end < 0 ? undefined : end);
}

/**
 * A fetch Request (from Deno.serve) as bws's request, `url` standing for its URL (read once by
 * the caller, its scheme maybe corrected). Its host is the URL's authority (HTTP/2's
 * `:authority`, else its host field), never a host field that says otherwise: the caller refuses
 * those (see {@link refusedAuthority}).
 */
export function requestFromFetch(
  req: Request,
  url: string,
  peer: Peer,
  tls: boolean,
  version: HttpVersion,
): HttpRequest {
  const list: [string, string][] = [];
  req.headers.forEach((value, name) => list.push([name, value]));
  const headers = new Fields(list);
  const [path, query] = splitUrl(url);
  const host = authorityOf(url);
  const cl = headers.get("content-length");
  const body: RequestBodySource | null = req.body === null ? null : streamToSource(req.body);
  const abort = new SignalAbortSource(req.signal);
  return {
    method: req.method,
    target: path + query,
    path,
    query,
    version,
    headers,
    host,
    body,
    bodyLength: cl === null || body === null ? null : Number(cl),
    peer,
    tls,
    time: Date.now(),
    started: performance.now(),
    get signal() {
      return req.signal;
    },
    get clientGone() {
      return req.signal.aborted;
    },
    get aborted() {
      return req.signal.aborted;
    },
    onAbort(fn: (() => void) | null) {
      abort.onAbort(fn);
    },
  };
}

/**
 * True when a request (from Deno.serve) names its authority in a way bws refuses: an authority
 * that is not `host[:port]` as HTTP/1.1's Host check requires (HTTP/2 lets userinfo through), or
 * a host field that names another authority than the URL's (HTTP/2's `:authority`; malformed
 * by RFC 9113 §8.3.1, and a request a front proxy checking `:authority` would let through to
 * another site than the one bws routes it to).
 */
export function refusedAuthority(req: Request, url: string = req.url): boolean {
  const authority = authorityOf(url);
  if (!isValidHostPort(authority, 0, authority.length, false)) return true;
  const field = req.headers.get("host");
  return field !== null && field.toLowerCase() !== authority.toLowerCase();
}

/**
 * bws's response as a fetch Response for Deno.serve. `done` is called once the body has been
 * handed over completely (or failed, or was cancelled); for a response without a streamed
 * body, when `completed` settles. `stall`: a streamed body whose consumer takes no next chunk
 * for `stall.ms` after the last one (the client does not read: its flow-control window or its
 * TCP window stays shut) fails, and `stall.onStall` is called to close what carries it (the
 * stream cannot be reset from here while Deno.serve waits to hand over the last chunk).
 */
export function responseToFetch(
  res: HttpResponse,
  method: string,
  completed: Promise<void> | undefined,
  stall?: StallLimit,
): Response {
  // A list, not a Headers: Response validates a list once, a Headers as it is built and again
  // when it copies it.
  const headers = res.headers.slice() as [string, string][];
  const src = res.body;
  const noBody = method === "HEAD" || NO_BODY_STATUS.has(res.status);
  let body: BodyInit | null = null;
  const done = res.done;
  if (noBody || src === null) {
    if (src !== null && !(src instanceof Uint8Array)) src.cancel();
    const len = src instanceof Uint8Array ? src.length : res.length;
    if (len !== undefined && len !== null && !NO_BODY_STATUS.has(res.status)) {
      setLength(headers, len);
    }
    settle(completed, () => done?.(0, null));
  } else if (src instanceof Uint8Array) {
    body = src as Uint8Array<ArrayBuffer>;
    settle(completed, () => done?.(src.length, null));
  } else {
    if (res.length !== undefined && res.length !== null) setLength(headers, res.length);
    body = countingStream(src, done, stall);
  }
  return new Response(body, { status: res.status, headers });
}

/** Sets Content-Length in a header list (replacing any). */
function setLength(headers: [string, string][], length: number): void {
  for (let i = headers.length - 1; i >= 0; i--) {
    if (headers[i][0].toLowerCase() === "content-length") headers.splice(i, 1);
  }
  headers.push(["content-length", String(length)]);
}

function settle(p: Promise<void> | undefined, fn: () => void): void {
  if (p === undefined) fn();
  else p.then(fn, fn);
}

/** How long a streamed response body may wait for its consumer, and what to close then. */
export interface StallLimit {
  /** Milliseconds; 0 = no limit. */
  readonly ms: number;
  readonly onStall: () => void;
}

/**
 * Fails a streamed body whose consumer took no next chunk within its limit (on the shared
 * ticker); armed after each chunk handed over, disarmed when the next is asked for, so a source
 * that is slow to produce (an upstream taking its time) is never cut.
 */
class StallWatch implements Timed {
  deadline = 0;
  readonly #fail: () => void;
  constructor(fail: () => void) {
    this.#fail = fail;
  }
  expire(): void {
    this.#fail();
  }
}

/** A ReadableStream over `src` that reports the bytes it passed on, once, at its end. */
function countingStream(
  src: BodySource,
  done: HttpResponse["done"],
  stall: StallLimit | undefined,
): ReadableStream<Uint8Array> {
  const stallMs = stall?.ms ?? 0;
  let sent = 0;
  let reported = false;
  let watch: StallWatch | null = null;
  let watched = false;
  const report = (error: unknown) => {
    if (watched) {
      watched = false;
      deadlines.delete(watch!);
    }
    if (reported) return;
    reported = true;
    done?.(sent, error);
  };
  return new ReadableStream<Uint8Array>({
    start(c) {
      if (stallMs <= 0) return;
      watch = new StallWatch(() => {
        const err = new Error(
          `Cannot send response body: the client read nothing for ${stallMs} ms`,
        );
        src.cancel(err);
        report(err);
        c.error(err);
        stall!.onStall();
      });
    },
    async pull(c) {
      if (watch !== null) watch.deadline = 0;
      let chunk: Uint8Array | null;
      try {
        chunk = await src.read();
      } catch (err) {
        report(err);
        throw err;
      }
      if (chunk === null) {
        c.close();
        report(null);
        return;
      }
      sent += chunk.length;
      // A stream's consumer may keep a chunk after asking for the next: copy it.
      c.enqueue(chunk.slice());
      noteStreamedBytes(chunk.length);
      if (watch !== null) {
        // Watched from the first chunk on (a body never asked for holds no watch).
        if (!watched) {
          watched = true;
          deadlines.add(watch);
        }
        watch.deadline = coarseNow() + stallMs + TICK_MS;
      }
    },
    cancel(reason) {
      src.cancel(reason);
      report(reason ?? new Error("Cannot send response body: cancelled"));
    },
  }, { highWaterMark: 0 });
}

/** bws's request as a fetch Request (for Hono). */
export function requestToFetch(req: HttpRequest): Request {
  const headers = new Headers();
  for (const [name, value] of req.headers.list) headers.append(name, value);
  const url = `${req.tls ? "https" : "http"}://${req.host ?? "localhost"}${req.path}${req.query}`;
  const hasBody = req.body !== null && req.method !== "GET" && req.method !== "HEAD";
  return new Request(url, {
    method: req.method,
    headers,
    body: hasBody ? sourceToStream(req.body!) : null,
  });
}

/** A fetch Response (from Hono) as bws's response. */
export function responseFromFetch(res: Response): HttpResponse {
  const headers: [string, string][] = [];
  let length: number | null = null;
  res.headers.forEach((value, name) => {
    if (name === "content-length") length = Number(value);
    else if (name !== "transfer-encoding" && name !== "connection") headers.push([name, value]);
  });
  const body = res.body === null ? null : streamToSource(res.body);
  return { status: res.status, headers, body, length };
}
