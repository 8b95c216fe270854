/**
 * The proxy flow for one request on a matched route, as named phases: framing and limits
 * (`request_framing.ts`), exchange with a member lease and retries (`exchange.ts`), response
 * rewrite (`response_rewrite.ts`); every failure becomes a status in one place
 * (`failure_status.ts`).
 *
 * @module
 */

import type { ProxiedCoding } from "../compress/proxy_compression.ts";
import type { EdgeUpstreamEdit } from "../edge/types.ts";
import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import type { ProxyPlan, RoutePlan, SitePlan } from "../plan/plan_types.ts";
import type { UpstreamClient } from "../upstream/client.ts";
import { UpstreamError } from "../upstream/errors.ts";
import { errorResponse } from "./error_response.ts";
import { exchange, type ExchangeResult } from "./exchange.ts";
import { describeFailure, statusForFailure } from "./failure_status.ts";
import type { RequestContext } from "./request_context.ts";
import { requestFraming } from "./request_framing.ts";
import { toClientResponse } from "./response_rewrite.ts";

export { upstreamPath } from "./exchange.ts";
export type { RequestContext } from "./request_context.ts";

/**
 * Forwards `req` to the route's group and resolves with `finish` applied to the client's answer
 * (the caller's bookkeeping runs inside the exchange's async function: no async frame here).
 * Never throws unless `finish` does: every failure becomes a response.
 */
export function forward(
  req: HttpRequest,
  ctx: RequestContext,
  site: SitePlan,
  proxy: ProxyPlan,
  route: RoutePlan,
  client: UpstreamClient,
  edit: EdgeUpstreamEdit | null,
  finish: (res: HttpResponse) => HttpResponse,
): HttpResponse | Promise<HttpResponse> {
  const framing = requestFraming(req, ctx, site.maxBodySize);
  if (!framing.ok) return finish(framing.response);
  const coding = site.proxyCompression?.begin(req, edit) ?? null;
  return exchange({
    req,
    ctx,
    proxy,
    route,
    client,
    bodyLength: framing.bodyLength,
    maxBodySize: site.maxBodySize,
    edit: coding === null ? edit : coding.edit,
    then(result) {
      const res = clientResponse(result, ctx, site, proxy, coding);
      return res instanceof Promise ? res.then(finish) : finish(res);
    },
  });
}

/** The client's answer for the exchange's result: the upstream's response rewritten (and
 * compressed), or bws's failure response. */
function clientResponse(
  result: ExchangeResult,
  ctx: RequestContext,
  site: SitePlan,
  proxy: ProxyPlan,
  coding: ProxiedCoding | null,
): HttpResponse | Promise<HttpResponse> {
  if (result.ok) {
    ctx.lease = result.lease;
    const res = toClientResponse(result.res, ctx.requestId, site, proxy);
    return coding === null ? res : compressed(res, coding, ctx);
  }
  return failureResponse(result.error, ctx);
}

/** The upstream's response compressed (or not) for the client; a failure as bws's answer. */
async function compressed(
  res: HttpResponse,
  coding: ProxiedCoding,
  ctx: RequestContext,
): Promise<HttpResponse> {
  try {
    return await coding.apply(res);
  } catch (err) {
    // The body failed before its head went out: the client gets bws's own answer instead.
    ctx.lease?.release();
    ctx.lease = null;
    return failureResponse(err, ctx);
  }
}

/** The answer when no upstream response came. */
export function failureResponse(err: unknown, ctx: RequestContext): HttpResponse {
  if (ctx.abort.cutShort) {
    ctx.error = "grace period over: the listener was removed or the server is stopping";
    return errorResponse(503, ctx.requestId);
  }
  const clientGone = err instanceof UpstreamError && err.kind === "aborted";
  if (clientGone || ctx.abort.clientGone) {
    // The client left (maybe while try_duration was waiting for a member): log it as such.
    ctx.error = err === null
      ? "client closed the request while waiting for a live upstream"
      : describeFailure(err);
    return errorResponse(499, ctx.requestId, undefined, true);
  }
  if (err === null) {
    ctx.error = "no live upstream";
    return errorResponse(503, ctx.requestId, [["retry-after", "5"]]);
  }
  ctx.error = describeFailure(err);
  const status = statusForFailure(err);
  // A client whose body was cut or refused gets its answer on a connection that then closes.
  const close = status === 400 || status === 408 || status === 413 || status === 499;
  return errorResponse(status, ctx.requestId, undefined, close);
}
