/**
 * The last proxy phase: the upstream's response as the client gets it — hop-by-hop fields and
 * framing dropped (the front end frames the body itself), the site's header rules applied, the
 * body passed on as it arrives.
 *
 * @module
 */

import type { HttpResponse } from "../http1/types.ts";
import type { ProxyPlan, SitePlan } from "../plan/plan_types.ts";
import type { UpstreamResponse } from "../upstream/client.ts";
import { buildResponseHeaders } from "./header_plan.ts";

/** The client's response for an upstream answer. */
export function toClientResponse(
  res: UpstreamResponse,
  requestId: string,
  site: SitePlan,
  proxy: ProxyPlan,
): HttpResponse {
  const headers = buildResponseHeaders(
    res.headers,
    proxy.headers,
    site.siteHeaders,
    requestId,
    true,
  );
  const bytes = res.bytes;
  if (bytes !== null) return { status: res.status, headers, body: bytes };
  // A streamed body keeps its Content-Length when the upstream gave one (else it is re-chunked);
  // HEAD / 304 keep theirs with no body.
  return { status: res.status, headers, body: res.source, length: res.contentLength };
}
