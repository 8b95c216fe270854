/**
 * The "request done" record: once per request, when its response is over (sent, or abandoned),
 * the access log line and the metrics are written from the same facts.
 *
 * @module
 */

import type { Metrics } from "../admin/metrics.ts";
import type { RefusedRequest } from "../http1/front_options.ts";
import type { HttpRequest } from "../http1/types.ts";
import type { Logger } from "../log/types.ts";

/** What the request path learnt about one request, filled in as it goes. */
export interface RequestRecord {
  readonly req: HttpRequest;
  /** The site's name, or "-" before one was chosen. */
  site: string;
  /** The matched route path, or "". */
  route: string;
  /** Client address as resolved through trusted_proxies. */
  readonly clientIp: string;
  requestId: string;
  upstream: string;
  error: string;
  /** The edge rule that refused the request, or "". */
  refused: string;
}

/** Writes the access line and the metrics of a finished request. */
export function requestDone(
  record: RequestRecord,
  status: number,
  bytesOut: number,
  logger: Logger,
  metrics: Metrics,
): void {
  const req = record.req;
  const durationMs = performance.now() - req.started;
  const bytesIn = req.body === null ? 0 : req.body.bytesRead;
  metrics.recordRequest(record.site, record.route, status, durationMs / 1000, bytesIn, bytesOut);
  logger.access({
    time: req.time,
    site: record.site,
    client: record.clientIp,
    method: req.method,
    path: req.path + req.query,
    status,
    bytesOut,
    durationMs,
    upstream: record.upstream,
    requestId: record.requestId,
    route: record.route,
    error: record.error || undefined,
    refused: record.refused || undefined,
  });
}

/** Writes the access line and metrics of a request the front end refused itself. */
export function refusalDone(r: RefusedRequest, logger: Logger, metrics: Metrics): void {
  metrics.recordRequest("-", "", r.status, r.durationMs / 1000, 0, r.bytes);
  logger.access({
    time: r.time,
    site: "-",
    client: r.peer.hostname,
    method: r.method || "-",
    path: r.target || "-",
    status: r.status,
    bytesOut: r.bytes,
    durationMs: r.durationMs,
    upstream: "",
    requestId: "",
    route: "",
    error: r.detail,
  });
}
