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

/** What one exchange sends, where, and under which limits. */
export interface ExchangeInput {
  readonly req: HttpRequest;
  readonly ctx: RequestContext;
  readonly proxy: ProxyPlan;
  readonly route: RoutePlan;
  readonly client: UpstreamClient;
  /** The request body's length when known (null: unknown, sent chunked). */
  readonly bodyLength: number | null;
  readonly maxBodySize: number;
  /** An edge rule's changes to the upstream request. */
  readonly edit: EdgeUpstreamEdit | null;
  /** The next phase: its answer is the exchange's. */
  readonly then: (result: ExchangeResult) => HttpResponse | Promise<HttpResponse>;
}

/** Where an exchange stands after a failed attempt: what the retry loop goes on from. */
interface Attempts {
  /** Epoch ms until which `try_duration` keeps trying; 0 = off. */
  readonly deadline: number;
  /** Members that failed this request. */
  readonly tried: Set<Member>;
  count: number;
  lastError: unknown;
}

/**
 * Runs the exchange with retries and hands its result to `x.then`, the next phase, whose answer
 * it resolves with. The first attempt on a live member runs in `then` callbacks, not in an
 * async function (its frame cost ~0.5 KB per request); only a failure goes on to the retry
 * loop. Never throws unless `x.then` does.
 */
export function exchange(x: ExchangeInput): Promise<HttpResponse> {
  const tryMs = x.proxy.retry.tryDurationMs;
  const deadline = tryMs > 0 ? Date.now() + tryMs : 0;
  const member = x.route.group.pick(x.ctx.clientIp);
  if (member === null) {
    return retryLoop(x, { deadline, tried: new Set(), count: 0, lastError: null });
  }
  const lease = new MemberLease(member);
  return attempt(x, member).then(
    (res) => {
      member.state.recordSuccess(false);
      return x.then({ ok: true, res, lease });
    },
    (err) => {
      const state: Attempts = { deadline, tried: new Set(), count: 1, lastError: null };
      if (!failed(x, err, member, lease, state)) return x.then({ ok: false, error: err });
      return retryLoop(x, state);
    },
  );
}

/** One request to `member` through the upstream client. */
function attempt(x: ExchangeInput, member: Member): Promise<UpstreamResponse> {
  const { ctx, proxy } = x;
  const target = member.target;
  ctx.upstream = target.url;
  const fields = upstreamFields(x.req.headers, proxy.headers, ctx, target.hostHeader, x.edit);
  return x.client.request(target, {
    method: x.req.method,
    target: upstreamPath(x.route, target.basePath, ctx.pathname) + ctx.search,
    headers: fields.headers,
    lines: fields.lines,
    body: x.req.body,
    bodyLength: x.bodyLength,
    maxBodyLength: x.maxBodySize,
    signal: ctx.abort,
    timeouts: proxy.timeouts,
  });
}

/**
 * Books a failed attempt on `member` (its lease released, a failure of the member's own
 * counted against it) and tells whether another attempt may follow.
 */
function failed(
  x: ExchangeInput,
  err: unknown,
  member: Member,
  lease: MemberLease,
  state: Attempts,
): boolean {
  lease.release();
  state.tried.add(member);
  state.lastError = err;
  if (
    err instanceof UpstreamError && err.kind !== "aborted" && err.kind !== "body_too_large" &&
    err.kind !== "client_body" && err.kind !== "no_descriptors"
  ) {
    member.state.recordFailure(err.kind);
  }
  if (!mayRetry(err, x.req.method, x.req.body !== null)) return false;
  const withinDuration = state.deadline > 0 && Date.now() < state.deadline;
  return state.count <= x.proxy.retry.attempts || withinDuration;
}

/** The attempts after a failure (or when no member was live at first), while allowed. */
async function retryLoop(x: ExchangeInput, state: Attempts): Promise<HttpResponse> {
  const group = x.route.group;
  const { ctx } = x;
  const { deadline, tried } = state;
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
        member = group.members[state.count % group.members.length];
        forcedProbe = true;
      }
    }
    if (member === null) break;
    state.count++;
    const lease = new MemberLease(member);
    let res: UpstreamResponse;
    try {
      res = await attempt(x, member);
    } catch (err) {
      if (!failed(x, err, member, lease, state)) break;
      continue;
    }
    member.state.recordSuccess(forcedProbe);
    // Not awaited: an async function returning a plain value resolves without another hop.
    return x.then({ ok: true, res, lease });
  }
  return x.then({ ok: false, error: state.lastError });
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
