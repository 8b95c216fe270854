/**
 * The WebSocket flow on a `websocket = true` route: choose a member, build the upstream ws(s)
 * URL and headers, and hand over to the relay (which connects upstream before upgrading).
 *
 * @module
 */

import { relayWebSocket, type WebSocketRegistry } from "../websocket/relay.ts";
import type { ProxyPlan, RoutePlan } from "../server/plan_types.ts";
import { buildUpstreamHeaders } from "./header_plan.ts";
import { errorResponse } from "./error_response.ts";
import { type RequestContext, upstreamPath } from "./forward.ts";

/** Headers the WebSocket client sets itself (Host is ours: preserve_host as on plain HTTP). */
function skipForWebSocket(name: string): boolean {
  return name.startsWith("sec-websocket-");
}

export interface WebSocketHooks {
  opened(): void;
  closed(): void;
}

export async function forwardWebSocket(
  req: Request,
  ctx: RequestContext,
  proxy: ProxyPlan,
  route: RoutePlan,
  registry: WebSocketRegistry,
  hooks: WebSocketHooks,
): Promise<Response> {
  const member = route.group.pick(ctx.clientIp);
  if (member === null) {
    ctx.error = "no live upstream";
    return errorResponse(503, ctx.requestId, { "retry-after": "5" });
  }
  const target = member.target;
  ctx.upstream = target.url;
  const headers = new Headers();
  for (
    const [name, value] of buildUpstreamHeaders(req.headers, proxy.headers, {
      peer: ctx.peer,
      peerTrusted: ctx.peerTrusted,
      proto: ctx.proto,
      host: ctx.host,
      requestId: ctx.requestId,
      upstreamHost: target.hostHeader,
    })
  ) {
    if (!skipForWebSocket(name)) headers.append(name, value);
  }
  const url = `${target.tls ? "wss" : "ws"}://${target.hostHeader}${
    upstreamPath(route, target.basePath, ctx.pathname)
  }${ctx.search}`;
  const state = member.state;
  const ws = proxy.websocket;
  const res = await relayWebSocket(req, {
    upstreamUrl: url,
    headers,
    connectTimeout: proxy.timeouts.connect + proxy.timeouts.read,
    maxBuffered: ws.maxBuffered,
    idleTimeout: ws.idleTimeout,
    pingInterval: ws.pingInterval,
    registry,
    onOpen() {
      state.webSockets++;
      hooks.opened();
    },
    onClose() {
      state.webSockets--;
      hooks.closed();
    },
    onUpstreamFailure(err: Error) {
      state.recordFailure(err.message);
      ctx.error = err.message;
    },
  });
  if (res.status === 101) {
    state.recordSuccess();
    return res;
  }
  // The relay's own refusals (bad upgrade, upstream unreachable) get the proxy's error shape;
  // a 426 keeps the version it asks for.
  const version = res.headers.get("sec-websocket-version");
  return errorResponse(
    res.status,
    ctx.requestId,
    version === null ? undefined : { "sec-websocket-version": version },
  );
}
