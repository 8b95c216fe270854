/**
 * The exchange phase: pick a member (a lease on its in-flight count), send the request through
 * the upstream client, and try again on another member when that is provably safe — after a
 * failure to connect for any method, after other failures only for idempotent methods with no
 * body — never more than `retry.attempts`, or while `try_duration` lasts when every member is
 * down.
 *
 * @module
 */

import type { Member } from "../balancer/group.ts";
import type { EdgeUpstreamEdit } from "../edge/types.ts";
import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import type { ProxyPlan, RoutePlan } from "../plan/plan_types.ts";
import type { UpstreamClient, UpstreamResponse } from "../upstream/client.ts";
import { UpstreamError } from "../upstream/errors.ts";
import { upstreamFields } from "./header_plan.ts";
import { MemberLease } from "./member_lease.ts";
import type { RequestContext } from "./request_context.ts";
import { stripPrefix } from "./route_table.ts";

/** The upstream's answer with the lease that serves it, or why there is none. */
export type ExchangeResult =
  | { readonly ok: true; readonly res: UpstreamResponse; readonly lease: MemberLease }
  /** `error` null: no member was live. */
  | { readonly ok: false; readonly error: unknown };

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
const TRY_INTERVAL_MS = 250;

/** The path sent upstream: the member's base path, then the (maybe stripped) request path. */
export function upstreamPath(route: RoutePlan, basePath: string, pathname: string): string {
  const base = route.path.endsWith("/") ? route.path.slice(0, -1) : route.path;
  const p = route.stripPrefix ? stripPrefix(pathname, base) : pathname;
  return basePath ? basePath + p : p;
}

/**
 * Runs the exchange with retries and hands its result to `then`, the next phase, whose answer
 * it resolves with (the next phase runs inside this async function, not in one of its own: a
 * promise hop less per request). Never throws unless `then` does.
 */
export async function exchange(
  req: HttpRequest,
  ctx: RequestContext,
  proxy: ProxyPlan,
  route: RoutePlan,
  client: UpstreamClient,
  bodyLength: number | null,
  maxBodySize: number,
  edit: EdgeUpstreamEdit | null,
  then: (result: ExchangeResult) => HttpResponse | Promise<HttpResponse>,
): Promise<HttpResponse> {
  const method = req.method;
  const body = req.body;
  const group = route.group;
  const retry = proxy.retry;
  const deadline = retry.tryDurationMs > 0 ? Date.now() + retry.tryDurationMs : 0;
  /** Members that failed this request: built on the first failure only. */
  let tried: Set<Member> | undefined;
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
      tried?.clear();
      member = group.pick(ctx.clientIp, tried);
      if (member === null) {
        member = group.members[attempts % group.members.length];
        forcedProbe = true;
      }
    }
    if (member === null) break;
    attempts++;
    const target = member.target;
    ctx.upstream = target.url;
    const fields = upstreamFields(req.headers, proxy.headers, ctx, target.hostHeader, edit);
    const lease = new MemberLease(member);
    let res: UpstreamResponse;
    try {
      res = await client.request(target, {
        method,
        target: upstreamPath(route, target.basePath, ctx.pathname) + ctx.search,
        headers: fields.headers,
        lines: fields.lines,
        body,
        bodyLength,
        maxBodyLength: maxBodySize,
        signal: ctx.abort,
        timeouts: proxy.timeouts,
      });
    } catch (err) {
      lease.release();
      (tried ??= new Set()).add(member);
      lastError = err;
      if (
        err instanceof UpstreamError && err.kind !== "aborted" && err.kind !== "body_too_large" &&
        err.kind !== "client_body" && err.kind !== "no_descriptors"
      ) {
        member.state.recordFailure(err.kind);
      }
      if (!mayRetry(err, method, body !== null)) break;
      const withinDuration = deadline > 0 && Date.now() < deadline;
      if (attempts > retry.attempts && !withinDuration) break;
      continue;
    }
    member.state.recordSuccess(forcedProbe);
    // Not awaited: an async function returning a plain value resolves without another hop.
    return then({ ok: true, res, lease });
  }
  return then({ ok: false, error: lastError });
}

function mayRetry(err: unknown, method: string, hasBody: boolean): boolean {
  if (!(err instanceof UpstreamError)) return false;
  if (err.kind === "aborted" || err.kind === "client_body") return false;
  if (err.dial) return true; // never reached the upstream: safe for any method
  // No response head arrived: replaying is safe when the method is idempotent and no body bytes
  // were consumed (the request head alone carries everything).
  return IDEMPOTENT.has(method) && !hasBody;
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
