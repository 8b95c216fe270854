/**
 * The entry handler of every listener: Host → site, path → route, then proxy, WebSocket relay,
 * static files, redirect or 404; and the access log and metrics once the response is done.
 *
 * @module
 */

import type { CidrSet } from "../proxy/cidr.ts";
import { resolveRequestId } from "../proxy/header_plan.ts";
import { declaredLength, forward, type RequestContext } from "../proxy/forward.ts";
import { hasDotSegment } from "../proxy/route_table.ts";
import { RequestAbort } from "../proxy/request_abort.ts";
import { forwardWebSocket } from "../proxy/forward_websocket.ts";
import { errorResponse } from "../proxy/error_response.ts";
import { isWebSocketUpgrade, type WebSocketRegistry } from "../websocket/relay.ts";
import { notFoundResponse } from "../static/handler.ts";
import type { UpstreamClient } from "../upstream/client.ts";
import type { Metrics } from "../admin/metrics.ts";
import type { ListenerPlan, Plan, SitePlan } from "./plan_types.ts";
import { lookupHost } from "./compile_plan.ts";
import { isValidHost } from "./valid_host.ts";

/** Process-lifetime services shared by every plan. */
export interface Services {
  readonly client: UpstreamClient;
  readonly metrics: Metrics;
  readonly webSockets: WebSocketRegistry;
  /** Answers an ACME HTTP-01 token, or null. */
  acmeChallenge(token: string): string | null;
}

export interface ServeInfo {
  readonly remoteAddr: { readonly hostname: string; readonly port: number };
  readonly completed?: Promise<void>;
}

const ACME_PREFIX = "/.well-known/acme-challenge/";

/** Splits an absolute request URL into raw path and query ("?…" or ""). */
export function splitUrl(url: string): [string, string] {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return ["/", ""];
  const q = url.indexOf("?", start);
  return q < 0 ? [url.slice(start), ""] : [url.slice(start, q), url.slice(q)];
}

/** The client address: the peer, or (behind trusted proxies) the rightmost untrusted XFF hop. */
export function resolveClientIp(peer: string, xff: string | null, trusted: CidrSet): string {
  if (xff === null || !trusted.has(peer)) return peer;
  const hops = xff.split(",");
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i].trim();
    if (hop && !trusted.has(hop)) return hop;
  }
  return hops[0]?.trim() || peer;
}

function withSiteHeaders(res: Response, site: SitePlan): Response {
  if (site.siteHeaders.length === 0) return res;
  try {
    for (const [n, v] of site.siteHeaders) res.headers.set(n, v);
    return res;
  } catch {
    // Immutable headers (e.g. a 101 from upgradeWebSocket): leave them.
    return res;
  }
}

function redirectResponse(req: Request, host: string, pathAndQuery: string, port: number) {
  let name = host;
  if (name.startsWith("[")) name = name.slice(0, name.indexOf("]") + 1);
  else if (name.includes(":")) name = name.slice(0, name.indexOf(":"));
  const authority = port === 443 ? name : `${name}:${port}`;
  void req;
  return new Response(null, {
    status: 308,
    headers: { location: `https://${authority}${pathAndQuery}` },
  });
}

/** The access-log and metrics site of a request answered before a site was chosen. */
const UNKNOWN_SITE = "-";

/** Runs `fn` once the response is done (sent or abandoned), or now without `completed`. */
function whenCompleted(info: ServeInfo, fn: () => void): void {
  if (info.completed) info.completed.then(fn, fn);
  else fn();
}

/**
 * Logs and counts a response given before any site handling (missing Host, ACME answer, the
 * http_port redirect or 404). Off the proxy fast path, so it may spend a little: it buffers the
 * (small) body once to know its length, which keeps its Content-Length framing.
 */
async function answerEarly(
  req: Request,
  info: ServeInfo,
  plan: Plan,
  services: Services,
  site: string,
  res: Response,
  started: number,
  time: number,
  requestId = resolveRequestId(req.headers.get("x-request-id")),
): Promise<Response> {
  // Headers must be read before the response completes (Deno throws "Request closed" after).
  const peer = info.remoteAddr.hostname;
  const clientIp = plan.trusted.has(peer)
    ? resolveClientIp(peer, req.headers.get("x-forwarded-for"), plan.trusted)
    : peer;
  const bytesIn = declaredLength(req.headers.get("content-length") ?? "0");
  const method = req.method;
  const [pathname, search] = splitUrl(req.url);
  let out = res;
  let bytesOut = 0;
  if (res.body !== null) {
    const body = new Uint8Array(await res.arrayBuffer());
    out = new Response(body, { status: res.status, headers: res.headers });
    if (method !== "HEAD") bytesOut = body.length;
  }
  whenCompleted(info, () => {
    const durationMs = performance.now() - started;
    services.metrics.recordRequest(site, "", out.status, durationMs / 1000, bytesIn, bytesOut);
    plan.logger.access({
      time,
      site,
      client: clientIp,
      method,
      path: pathname + search,
      status: out.status,
      bytesOut,
      durationMs,
      upstream: "",
      requestId,
      route: "",
    });
  });
  return out;
}

/**
 * Handles one request against the listener's current plan. `plan` and `lp` are read once by
 * the caller, so a reload during the request does not affect it.
 */
export async function handleRequest(
  req: Request,
  info: ServeInfo,
  plan: Plan,
  lp: ListenerPlan,
  services: Services,
  cut: AbortSignal,
): Promise<Response> {
  const started = performance.now();
  const time = Date.now();
  let host = req.headers.get("host");
  if (host === null && lp.tls) {
    // HTTP/2 carries :authority, which Deno puts into the URL only.
    const [authStart, authEnd] = [req.url.indexOf("//") + 2, req.url.indexOf("/", 8)];
    host = req.url.slice(authStart, authEnd < 0 ? undefined : authEnd);
  }
  if (host === null || !isValidHost(host)) {
    const requestId = resolveRequestId(req.headers.get("x-request-id"));
    const res = errorResponse(400, requestId, { connection: "close" });
    return answerEarly(req, info, plan, services, UNKNOWN_SITE, res, started, time, requestId);
  }
  const [pathname, search] = splitUrl(req.url);
  if (lp.acmeChallenges && pathname.startsWith(ACME_PREFIX)) {
    const answer = services.acmeChallenge(pathname.slice(ACME_PREFIX.length));
    if (answer !== null) {
      const res = new Response(answer, { headers: { "content-type": "text/plain" } });
      const target = lookupHost(lp, host);
      const name = target.kind === "site" ? target.site.name : target.redirect.site.name;
      return answerEarly(req, info, plan, services, name, res, started, time);
    }
  }
  const target = lookupHost(lp, host);
  if (target.kind === "redirect") {
    const r = target.redirect;
    // Challenge paths are never redirected: an unknown token is a plain 404.
    const res = !r.redirect || pathname.startsWith(ACME_PREFIX)
      ? notFoundResponse()
      : redirectResponse(req, host, pathname + search, r.httpsPort);
    return answerEarly(req, info, plan, services, r.site.name, res, started, time);
  }
  const site = target.site;
  const peer = info.remoteAddr.hostname;
  const peerTrusted = plan.trusted.has(peer);
  const ctx: RequestContext = {
    peer,
    peerTrusted,
    clientIp: peerTrusted
      ? resolveClientIp(peer, req.headers.get("x-forwarded-for"), plan.trusted)
      : peer,
    proto: lp.tls ? "https" : "http",
    host,
    requestId: resolveRequestId(req.headers.get("x-request-id")),
    upstreamHost: "",
    pathname,
    search,
    abort: new RequestAbort(req, cut),
    upstream: "",
    error: "",
    member: null,
    bytesOut: -1,
    bytesIn: -1,
  };
  let res: Response;
  let routePath = "";
  const route = site.proxy?.routes.match(pathname) ?? null;
  if (route !== null) {
    const proxy = site.proxy!;
    routePath = route.path;
    if (hasDotSegment(pathname)) {
      ctx.error = "dot segment in the request path";
      res = withSiteHeaders(errorResponse(400, ctx.requestId), site);
    } else if (route.value.websocket && isWebSocketUpgrade(req)) {
      const metrics = services.metrics;
      res = await forwardWebSocket(req, ctx, proxy, route.value, services.webSockets, {
        opened: () => metrics.webSocketOpened(site.name),
        closed: () => metrics.webSocketClosed(site.name),
      });
      if (res.status !== 101) res = withSiteHeaders(res, site);
    } else {
      res = await forward(req, ctx, site, proxy, route.value, services.client);
      if (ctx.member === null) res = withSiteHeaders(res, site);
    }
  } else if (site.static !== null) {
    res = withSiteHeaders(await site.static(req, pathname), site);
  } else {
    res = withSiteHeaders(notFoundResponse(), site);
  }
  // Read before the response completes: afterwards Deno throws "Request closed" on req.headers.
  const declaredIn = declaredLength(req.headers.get("content-length") ?? "0");
  const method = req.method;
  const finish = () => {
    const member = ctx.member;
    if (member !== null) member.state.inFlight--;
    const durationMs = performance.now() - started;
    let bytesOut = ctx.bytesOut;
    if (bytesOut < 0) {
      // Not proxied (or no response from upstream): no body goes out for HEAD.
      const cl = method === "HEAD" ? null : res.headers.get("content-length");
      bytesOut = cl === null ? 0 : Number(cl);
    }
    const bytesIn = ctx.bytesIn < 0 ? declaredIn : ctx.bytesIn;
    services.metrics.recordRequest(
      site.name,
      routePath,
      res.status,
      durationMs / 1000,
      bytesIn,
      bytesOut,
    );
    plan.logger.access({
      time,
      site: site.name,
      client: ctx.clientIp,
      method,
      path: pathname + search,
      status: res.status,
      bytesOut,
      durationMs,
      upstream: ctx.upstream,
      requestId: ctx.requestId,
      route: routePath,
      error: ctx.error || undefined,
    });
  };
  whenCompleted(info, finish);
  return res;
}
