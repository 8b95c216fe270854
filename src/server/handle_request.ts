/**
 * The entry handler of every listener: Host → site, path → redirect or route, the site's or
 * route's edge protection, then the redirect, proxy, WebSocket relay, static files or 404 (bws's
 * own answers get the site's error pages); and one "request done" record for the access log and
 * metrics once the response is over.
 *
 * @module
 */

import type { EdgeUpstreamEdit, EdgeVerdict } from "../edge/types.ts";
import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import { lookupHost } from "../plan/compile_plan.ts";
import type { ListenerPlan, Plan, RoutePlan, SitePlan } from "../plan/plan_types.ts";
import type { CidrSet } from "../net/cidr.ts";
import { errorResponse } from "../proxy/error_response.ts";
import { describeFailure } from "../proxy/failure_status.ts";
import { forward } from "../proxy/forward.ts";
import { forwardWebSocket } from "../proxy/forward_websocket.ts";
import { resolveRequestId } from "../proxy/header_plan.ts";
import { RequestAbort } from "../proxy/request_abort.ts";
import type { RequestContext } from "../proxy/request_context.ts";
import { hasDotSegment, type RouteEntry } from "../proxy/route_table.ts";
import { notFoundResponse } from "../static/handler.ts";
import type { UpstreamClient } from "../upstream/client.ts";
import { isWebSocketUpgrade } from "../websocket/handshake.ts";
import type { WebSocketRegistry } from "../websocket/websocket_registry.ts";
import type { Metrics } from "../admin/metrics.ts";
import { ownResponse, withSiteHeaders } from "./own_response.ts";
import { requestDone, type RequestRecord } from "./request_record.ts";

/** Process-lifetime services shared by every plan. */
export interface Services {
  readonly client: UpstreamClient;
  readonly metrics: Metrics;
  readonly webSockets: WebSocketRegistry;
  /** Answers an ACME HTTP-01 token, or null (in a fleet, after asking Redis). */
  acmeChallenge(token: string): string | null | Promise<string | null>;
}

const ACME_PREFIX = "/.well-known/acme-challenge/";
const ALLOW_ALL = "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE";
const encoder = new TextEncoder();

/** The access-log and metrics site of a request answered before a site was chosen. */
export const UNKNOWN_SITE = "-";

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

function redirectResponse(host: string, pathAndQuery: string, port: number): HttpResponse {
  let name = host;
  if (name.startsWith("[")) name = name.slice(0, name.indexOf("]") + 1);
  else if (name.includes(":")) name = name.slice(0, name.indexOf(":"));
  const authority = port === 443 ? name : `${name}:${port}`;
  return {
    status: 308,
    headers: [["location", `https://${authority}${pathAndQuery}`]],
    body: null,
  };
}

function textResponse(status: number, text: string): HttpResponse {
  return {
    status,
    headers: [["content-type", "text/plain"]],
    body: encoder.encode(text),
  };
}

/** A request being handled, with what every step of it reads. */
interface Incoming {
  readonly req: HttpRequest;
  readonly plan: Plan;
  readonly lp: ListenerPlan;
  readonly services: Services;
  readonly cut: AbortSignal;
  /** The peer is one of `trusted_proxies`. */
  readonly peerTrusted: boolean;
  readonly record: RequestRecord;
}

/**
 * Handles one request against the listener's current plan. `plan` and `lp` are read once by
 * the caller, so a reload during the request does not affect it.
 *
 * Not an async function: a proxied request goes from here to the upstream and back without an
 * async frame of its own (each costs ~0.5 KB of allocation and a promise hop per request); the
 * steps that wait (an ACME token, an edge verdict, a WebSocket, a static file) have their own.
 */
export function handleRequest(
  req: HttpRequest,
  plan: Plan,
  lp: ListenerPlan,
  services: Services,
  cut: AbortSignal,
): HttpResponse | Promise<HttpResponse> {
  const peer = req.peer.hostname;
  const peerTrusted = plan.trusted.has(peer);
  const clientIp = peerTrusted
    ? resolveClientIp(peer, req.headers.get("x-forwarded-for"), plan.trusted)
    : peer;
  const inc: Incoming = {
    req,
    plan,
    lp,
    services,
    cut,
    peerTrusted,
    record: {
      req,
      site: UNKNOWN_SITE,
      route: "",
      clientIp,
      requestId: "",
      upstream: "",
      error: "",
      refused: "",
    },
  };
  if (lp.acmeChallenges && req.path.startsWith(ACME_PREFIX)) return acmeOrRoute(inc);
  return routeRequest(inc);
}

/** An ACME HTTP-01 token's answer, or (an unknown token) the request routed as any other. */
async function acmeOrRoute(inc: Incoming): Promise<HttpResponse> {
  const { req, lp, record } = inc;
  const answer = await inc.services.acmeChallenge(req.path.slice(ACME_PREFIX.length));
  if (answer === null) return routeRequest(inc);
  const target = lookupHost(lp, req.host ?? "");
  record.site = target.kind === "site" ? target.site.name : target.redirect.site.name;
  return done(textResponse(200, answer), inc);
}

/** Host → site, then the site's redirects, routes and edge protection. */
function routeRequest(inc: Incoming): HttpResponse | Promise<HttpResponse> {
  const { req, record } = inc;
  const host = req.host ?? "";
  const pathname = req.path;
  const target = lookupHost(inc.lp, host);
  if (target.kind === "redirect") {
    const r = target.redirect;
    record.site = r.site.name;
    // Challenge paths are never redirected: an unknown token is a plain 404.
    const res = !r.redirect || pathname.startsWith(ACME_PREFIX)
      ? notFoundResponse()
      : redirectResponse(host, pathname + req.query, r.httpsPort);
    return done(res, inc);
  }
  const site = target.site;
  record.site = site.name;
  if (pathname === "*") {
    // OPTIONS * (the only method the parser lets use it): about the server, not a resource.
    const allow: HttpResponse = { status: 200, headers: [["allow", ALLOW_ALL]], body: null };
    return done(allow, inc);
  }
  const requestId = resolveRequestId(req.headers.get("x-request-id"));
  record.requestId = requestId;
  const ctx: RequestContext = {
    peer: req.peer.hostname,
    peerTrusted: inc.peerTrusted,
    clientIp: record.clientIp,
    proto: req.tls ? "https" : "http",
    host,
    requestId,
    pathname,
    search: req.query,
    abort: new RequestAbort(req, inc.cut, req.version !== "2"),
    upstream: "",
    error: "",
    lease: null,
  };
  const redirect = site.redirects?.match(pathname, req.query) ?? null;
  const route = redirect === null ? site.proxy?.routes.match(pathname) ?? null : null;
  const step: SiteStep = { inc, ctx, site, redirect, route };
  const policy = route !== null ? route.value.edge : site.edge;
  if (policy === null) return answer(step, null);
  const verdict = policy.check(req, record.clientIp);
  return verdict instanceof Promise
    ? verdict.then((v) => afterEdge(step, v))
    : afterEdge(step, verdict);
}

/** A request on its site, with what routing found for it. */
interface SiteStep {
  readonly inc: Incoming;
  readonly ctx: RequestContext;
  readonly site: SitePlan;
  readonly redirect: HttpResponse | null;
  readonly route: RouteEntry<RoutePlan> | null;
}

/** The edge verdict's refusal, or the request answered with its upstream edit. */
function afterEdge(step: SiteStep, v: EdgeVerdict): HttpResponse | Promise<HttpResponse> {
  if (v === null || !v.refused) return answer(step, v);
  const { inc, site } = step;
  const record = inc.record;
  record.refused = v.rule;
  record.route = step.route?.path ?? "";
  inc.services.metrics.recordRefusal(site.name, v.rule);
  const refusal = v.response;
  let res: HttpResponse = {
    ...refusal,
    headers: [...refusal.headers, ["x-request-id", step.ctx.requestId]],
  };
  // A forward-auth service's own answer is passed on as it is (no error page).
  res = v.passedOn ? withSiteHeaders(res, site) : ownResponse(res, site, inc.req);
  return done(res, inc, step.ctx);
}

/** The redirect, proxy, WebSocket relay, static file or 404 for a request the edge let in. */
function answer(
  step: SiteStep,
  edit: EdgeUpstreamEdit | null,
): HttpResponse | Promise<HttpResponse> {
  const { inc, ctx, site, route } = step;
  const req = inc.req;
  if (step.redirect !== null) return finished(step, ownResponse(step.redirect, site, req));
  if (route === null) {
    if (site.static !== null) return staticFile(step, site.static);
    return finished(step, ownResponse(notFoundResponse(), site, req));
  }
  inc.record.route = route.path;
  const routePlan = route.value;
  if (hasDotSegment(req.path)) {
    ctx.error = "dot segment in the request path";
    return finished(step, ownResponse(errorResponse(400, ctx.requestId), site, req));
  }
  if (routePlan.websocket && isWebSocketUpgrade(req.method, req.headers)) {
    return webSocket(step, routePlan, edit);
  }
  return forward(
    req,
    ctx,
    site,
    site.proxy!,
    routePlan,
    inc.services.client,
    edit,
    proxiedFinish(step),
  );
}

/** What a proxied request's answer gets: the site's error pages (bws's own answers only), then
 * the "request done" bookkeeping. Built in a function of its own (see {@link doneCallback}). */
function proxiedFinish(step: SiteStep): (res: HttpResponse) => HttpResponse {
  return (res) => {
    if (step.ctx.lease === null) res = ownResponse(res, step.site, step.inc.req);
    return finished(step, res);
  };
}

async function webSocket(
  step: SiteStep,
  routePlan: RoutePlan,
  edit: EdgeUpstreamEdit | null,
): Promise<HttpResponse> {
  const { inc, ctx, site } = step;
  const services = inc.services;
  const metrics = services.metrics;
  let res = await forwardWebSocket(
    inc.req,
    ctx,
    site,
    site.proxy!,
    routePlan,
    services.client,
    services.webSockets,
    {
      opened: () => metrics.webSocketOpened(site.name),
      closed: () => metrics.webSocketClosed(site.name),
    },
    edit,
  );
  if (res.status !== 101 && ctx.lease === null) res = ownResponse(res, site, inc.req);
  return finished(step, res);
}

async function staticFile(
  step: SiteStep,
  serve: NonNullable<SitePlan["static"]>,
): Promise<HttpResponse> {
  const req = step.inc.req;
  return finished(step, ownResponse(await serve(req), step.site, req));
}

function finished(step: SiteStep, res: HttpResponse): HttpResponse {
  return done(res, step.inc, step.ctx);
}

/**
 * Attaches the "request done" bookkeeping to `res` (after any done of its own). Every response
 * reaching here is a fresh object (shared refusals are copied above), so it is set in place.
 */
function done(res: HttpResponse, inc: Incoming, ctx?: RequestContext): HttpResponse {
  res.done = doneCallback(res, inc.record, inc.plan, inc.services, ctx, res.done);
  return res;
}

/**
 * The callback itself, built in a function of its own. Measured (trace-gc-nvp, one client):
 * built inside `done` above, the closure made V8 keep every request's record, context and
 * request alive across minor GCs (~1 MB surviving each scavenge, ~8 ms pauses); built here,
 * ~15 KB and 0.3 ms.
 */
function doneCallback(
  res: HttpResponse,
  record: RequestRecord,
  plan: Plan,
  services: Services,
  ctx: RequestContext | undefined,
  inner: HttpResponse["done"],
): NonNullable<HttpResponse["done"]> {
  return (bytes, error) => {
    inner?.(bytes, error);
    if (ctx !== undefined) {
      ctx.lease?.release();
      record.upstream = ctx.upstream;
      record.error = ctx.error;
      if (error !== null && record.error === "") record.error = describeFailure(error);
    }
    requestDone(record, res.status, bytes, plan.logger, services.metrics);
  };
}
