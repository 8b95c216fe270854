/**
 * The WebSocket flow on a `websocket = true` route: check the client's upgrade (400 / 426 before
 * any upstream connection), choose a member, send the handshake upstream with bws's own client,
 * check the upstream's 101 against the client's key and offered subprotocols, answer the client
 * 101 with the upstream's fields, then relay both sockets as a byte tunnel with backpressure.
 * An upstream that refuses the upgrade (403, 401, …) has its answer passed on, as nginx does.
 *
 * @module
 */

import type { EdgeUpstreamEdit } from "../edge/types.ts";
import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import type { ProxyPlan, RoutePlan, SitePlan } from "../plan/plan_types.ts";
import type { UpstreamClient, UpstreamUpgrade } from "../upstream/client.ts";
import { UpstreamError } from "../upstream/errors.ts";
import {
  checkClientUpgrade,
  checkUpstreamSwitch,
  offeredProtocols,
} from "../websocket/handshake.ts";
import { startTunnel, type TunnelCloseInfo } from "../websocket/tunnel.ts";
import type { WebSocketRegistry } from "../websocket/websocket_registry.ts";
import { errorResponse } from "./error_response.ts";
import { failureResponse } from "./forward.ts";
import { describeFailure, statusForFailure } from "./failure_status.ts";
import { buildUpstreamHeaders, HOP_BY_HOP } from "./header_plan.ts";
import { MemberLease } from "./member_lease.ts";
import type { RequestContext } from "./request_context.ts";
import { upstreamPath } from "./exchange.ts";
import { toClientResponse } from "./response_rewrite.ts";

/** Told when a relayed WebSocket opens and closes (metrics). */
export interface WebSocketHooks {
  opened(): void;
  closed(info: TunnelCloseInfo): void;
}

/** Relays one upgrade request. Never throws. */
export async function forwardWebSocket(
  req: HttpRequest,
  ctx: RequestContext,
  site: SitePlan,
  proxy: ProxyPlan,
  route: RoutePlan,
  client: UpstreamClient,
  registry: WebSocketRegistry,
  hooks: WebSocketHooks,
  edit: EdgeUpstreamEdit | null,
): Promise<HttpResponse> {
  let key: string;
  try {
    key = checkClientUpgrade(req.method, req.headers, req.body !== null);
  } catch (err) {
    ctx.error = describeFailure(err);
    const status = statusForFailure(err);
    const extra: [string, string][] = status === 426 ? [["sec-websocket-version", "13"]] : [];
    return errorResponse(status, ctx.requestId, extra, true);
  }
  const member = route.group.pick(ctx.clientIp);
  if (member === null) {
    ctx.error = "no live upstream";
    return errorResponse(503, ctx.requestId, [["retry-after", "5"]]);
  }
  const target = member.target;
  const state = member.state;
  ctx.upstream = target.url;
  const headers = buildUpstreamHeaders(req.headers, proxy.headers, ctx, target.hostHeader, edit);
  headers.push(["connection", "Upgrade"], ["upgrade", "websocket"]);
  const offered = offeredProtocols(req.headers);
  const lease = new MemberLease(member);
  let up: UpstreamUpgrade;
  try {
    up = await client.upgrade(target, {
      method: "GET",
      target: upstreamPath(route, target.basePath, ctx.pathname) + ctx.search,
      headers,
      body: null,
      bodyLength: null,
      signal: ctx.abort,
      timeouts: proxy.timeouts,
    });
  } catch (err) {
    lease.release();
    if (
      err instanceof UpstreamError && err.kind !== "aborted" && err.kind !== "no_descriptors"
    ) state.recordFailure(err.kind);
    return failureResponse(err, ctx);
  }
  if (!up.upgraded) {
    // The upstream refused the upgrade: its answer goes to the client as any response would.
    state.recordSuccess();
    ctx.lease = lease;
    return toClientResponse(up.response, ctx.requestId, site, proxy);
  }
  lease.release();
  const upstream = up.stream;
  try {
    checkUpstreamSwitch(up.headers, key, offered);
  } catch (err) {
    closeQuietly(upstream);
    state.recordFailure("bad WebSocket handshake");
    ctx.error = describeFailure(err);
    return errorResponse(statusForFailure(err), ctx.requestId);
  }
  state.recordSuccess();
  const out: [string, string][] = [["upgrade", "websocket"], ["connection", "Upgrade"]];
  for (const [name, value] of up.headers) {
    if (!HOP_BY_HOP.has(name) && name !== "content-length") out.push([name, value]);
  }
  const ws = proxy.websocket;
  let handedOver = false;
  return {
    status: 101,
    headers: out,
    body: null,
    upgrade(stream, buffered) {
      handedOver = true;
      state.addWebSockets(1);
      hooks.opened();
      startTunnel(stream, buffered, upstream, up.buffered, {
        idleTimeoutMs: ws.idleTimeoutMs,
        pingIntervalMs: ws.pingIntervalMs,
        maxMessage: ws.maxMessage,
        registry,
        onClose(info) {
          state.addWebSockets(-1);
          hooks.closed(info);
        },
      });
    },
    done(_bytes, error) {
      // The 101 never reached the client: the upstream socket is nobody's.
      if (error !== null && !handedOver) closeQuietly(upstream);
    },
  };
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}
