/**
 * The proxy flow for one request on a matched route: choose a member, rewrite headers, send
 * through the upstream client, retry when it is provably safe, map failures to statuses.
 *
 * Phases: body limit → pick member → request upstream → (retry decision) → response rewrite.
 *
 * @module
 */

import type { Member } from "../balancer/group.ts";
import type { UpstreamClient, UpstreamResponse } from "../upstream/client.ts";
import { UpstreamError } from "../upstream/errors.ts";
import type { ProxyPlan, RoutePlan, SitePlan } from "../server/plan_types.ts";
import { buildResponseHeaders, buildUpstreamHeaders, type ForwardContext } from "./header_plan.ts";
import { stripPrefix } from "./route_table.ts";
import { describeError, errorResponse, statusForError } from "./error_response.ts";
import type { RequestAbort } from "./request_abort.ts";

/** Per-request facts gathered by the server before routing; `upstream`/`error` are filled in. */
export interface RequestContext extends ForwardContext {
  /** Client address as resolved through trusted_proxies (for ip_hash and logs). */
  readonly clientIp: string;
  /** Raw path (undecoded) and query ("" or "?…"). */
  readonly pathname: string;
  readonly search: string;
  /** The client leaving or the listener's grace period ending; read `.signal` only when needed. */
  readonly abort: RequestAbort;
  upstream: string;
  error: string;
  /** Set when a member was chosen: released when the response is complete. */
  member: Member | null;
  /** Body bytes of the proxied response when known here (saves reading the Response's
   *  headers afterwards), else -1. A streamed body counts up as its chunks go to the client. */
  bytesOut: number;
  /** Request body bytes read so far when the client sent no Content-Length (chunked upload),
   *  else -1 (the Content-Length is the count). */
  bytesIn: number;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
const TRY_INTERVAL_MS = 250;

/**
 * The body length a Content-Length value declares. Deno.serve refuses differing duplicates but
 * joins identical ones ("3, 3"), which `Number` alone reads as NaN.
 */
export function declaredLength(value: string): number {
  const n = Number(value);
  if (n === n) return n;
  const comma = value.indexOf(",");
  return comma < 0 ? n : Number(value.slice(0, comma));
}

/** The path sent upstream: the member's base path, then the (maybe stripped) request path. */
export function upstreamPath(route: RoutePlan, basePath: string, pathname: string): string {
  const base = route.path.endsWith("/") ? route.path.slice(0, -1) : route.path;
  const p = route.stripPrefix ? stripPrefix(pathname, base) : pathname;
  return basePath ? basePath + p : p;
}

/**
 * Forwards `req` to the route's group. Never throws: every failure becomes a response.
 */
export async function forward(
  req: Request,
  ctx: RequestContext,
  site: SitePlan,
  proxy: ProxyPlan,
  route: RoutePlan,
  client: UpstreamClient,
): Promise<Response> {
  const method = req.method;
  if (method === "CONNECT") {
    // Deno.serve hands a CONNECT over as "/"; bws does not tunnel.
    ctx.error = "CONNECT is not supported";
    return errorResponse(501, ctx.requestId);
  }
  // Body framing and limit.
  let body: ReadableStream<Uint8Array> | null = req.body;
  let bodyLength: number | null = null;
  const cl = req.headers.get("content-length");
  if (cl !== null) {
    bodyLength = Number(cl);
    if (bodyLength !== bodyLength) {
      bodyLength = declaredLength(cl);
      if (bodyLength !== bodyLength) {
        ctx.error = `Content-Length "${cl}" is not a number`;
        return errorResponse(400, ctx.requestId, { connection: "close" });
      }
    }
    if (bodyLength > site.maxBodySize) {
      ctx.error = `request body of ${bodyLength} bytes over limit ${site.maxBodySize}`;
      return errorResponse(413, ctx.requestId, { connection: "close" });
    }
    if (bodyLength === 0) body = null;
  } else if (body !== null) {
    const te = req.headers.get("transfer-encoding");
    if (te !== null && te.toLowerCase() !== "chunked") {
      // Deno.serve removed the chunked framing but not the codings before it (gzip, chunked):
      // forwarding the bytes without them would hand the upstream a body it cannot read.
      ctx.error = `transfer coding "${te}" is not supported`;
      return errorResponse(501, ctx.requestId, { connection: "close" });
    }
    // Chunked upload: count what the client really sent.
    body = counted(body, ctx, "bytesIn");
  }
  const hasBody = body !== null;
  const group = route.group;
  const retry = proxy.retry;
  const deadline = retry.tryDuration > 0 ? Date.now() + retry.tryDuration * 1000 : 0;
  const tried = new Set<Member>();
  let attempts = 0;
  let lastError: unknown = null;

  while (true) {
    let member = group.pick(ctx.clientIp, tried);
    /** Sent to a member that is not live (try_duration probe): its success revives it. */
    let forcedProbe = false;
    if (member === null && deadline > 0) {
      // Everyone is down or tried: keep trying (the backend may be restarting) until the
      // deadline, probing members even while passively ejected.
      if (Date.now() + TRY_INTERVAL_MS > deadline) break;
      await sleep(TRY_INTERVAL_MS, ctx.abort.signal);
      if (ctx.abort.signal.aborted) break;
      tried.clear();
      member = group.pick(ctx.clientIp, tried);
      if (member === null) {
        member = group.members[attempts % group.members.length];
        forcedProbe = true;
      }
    }
    if (member === null) break;
    attempts++;
    tried.add(member);
    const target = member.target;
    ctx.upstream = target.url;
    const headers = buildUpstreamHeaders(req.headers, proxy.headers, {
      peer: ctx.peer,
      peerTrusted: ctx.peerTrusted,
      proto: ctx.proto,
      host: ctx.host,
      requestId: ctx.requestId,
      upstreamHost: target.hostHeader,
    });
    const state = member.state;
    state.inFlight++;
    let res: UpstreamResponse;
    try {
      res = await client.request(target, {
        method,
        target: upstreamPath(route, target.basePath, ctx.pathname) + ctx.search,
        headers,
        body,
        bodyLength,
        maxBodyLength: site.maxBodySize,
        signal: ctx.abort,
        timeouts: proxy.timeouts,
      });
    } catch (err) {
      state.inFlight--;
      lastError = err;
      if (err instanceof UpstreamError && err.kind !== "aborted" && err.kind !== "body_too_large") {
        state.recordFailure(err.kind);
      }
      if (!mayRetry(err, method, hasBody)) break;
      const withinDuration = deadline > 0 && Date.now() < deadline;
      if (attempts > retry.attempts && !withinDuration) break;
      continue;
    }
    state.recordSuccess(forcedProbe);
    ctx.member = member;
    return toClientResponse(res, ctx, site, proxy);
  }

  const clientGone = lastError instanceof UpstreamError && lastError.kind === "aborted";
  if (ctx.abort.cutShort) {
    ctx.error = "grace period over: the listener was removed or the server is stopping";
    return errorResponse(503, ctx.requestId);
  }
  if (clientGone || ctx.abort.signal.aborted) {
    // The client left (maybe while try_duration was waiting for a member): log it as such.
    ctx.error = lastError === null
      ? "client closed the request while waiting for a live upstream"
      : describeError(lastError);
    return errorResponse(499, ctx.requestId);
  }
  if (lastError === null) {
    ctx.error = "no live upstream";
    return errorResponse(503, ctx.requestId, { "retry-after": "5" });
  }
  ctx.error = describeError(lastError);
  return errorResponse(statusForError(lastError), ctx.requestId);
}

function mayRetry(err: unknown, method: string, hasBody: boolean): boolean {
  if (!(err instanceof UpstreamError)) return false;
  if (err.kind === "aborted") return false;
  if (err.dial) return true; // never reached the upstream: safe for any method
  // No response head arrived: replaying is safe when the method is idempotent and no body bytes
  // were consumed (the request head alone carries everything).
  return IDEMPOTENT.has(method) && !hasBody;
}

function toClientResponse(
  res: UpstreamResponse,
  ctx: RequestContext,
  site: SitePlan,
  proxy: ProxyPlan,
): Response {
  const bytes = res.bytes;
  // Deno frames a byte body itself, with this very length: one header less to validate.
  const headers = buildResponseHeaders(
    res.headers,
    proxy.headers,
    site.siteHeaders,
    ctx.requestId,
    bytes !== null,
  );
  let counting: ReadableStream<Uint8Array> | null = null;
  try {
    let out: Response;
    if (bytes !== null) {
      // No statusText: Deno.serve sends the standard reason phrase whatever it is given.
      out = new Response(bytes, { status: res.status });
      ctx.bytesOut = bytes.length;
    } else {
      // HEAD, 204, 304 (no body) or a streamed body, counted as the client pulls it.
      const stream = res.body;
      if (stream !== null) counting = counted(stream, ctx, "bytesOut");
      else ctx.bytesOut = 0;
      out = new Response(counting, { status: res.status });
    }
    // Appending costs less than a header list in the init (Deno converts that through
    // iterators before validating each pair).
    const h = out.headers;
    for (let i = 0; i < headers.length; i++) h.append(headers[i][0], headers[i][1]);
    return out;
  } catch (err) {
    // A status the platform cannot send (e.g. a stray 101): treat as a bad upstream.
    (counting ?? res.body)?.cancel().catch(() => {});
    ctx.bytesOut = -1;
    ctx.error = describeError(err);
    return errorResponse(502, ctx.requestId);
  }
}

/** `src` passed through unchanged, adding each chunk's size to `ctx[key]` (reset to 0). */
function counted(
  src: ReadableStream<Uint8Array>,
  ctx: RequestContext,
  key: "bytesIn" | "bytesOut",
): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  ctx[key] = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (err) {
        // A body cut short (upstream stalled or died, upload broke off): the access log says why.
        if (ctx.error === "") ctx.error = describeError(err);
        throw err;
      }
      const { done, value } = r;
      if (done) {
        c.close();
        return;
      }
      ctx[key] += value.byteLength;
      c.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
