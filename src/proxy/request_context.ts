/**
 * What the proxy knows about one request besides the request itself: gathered by the server
 * before routing, filled in as the request is proxied, read by the access log at the end.
 *
 * @module
 */

import type { ForwardContext } from "./header_plan.ts";
import type { MemberLease } from "./member_lease.ts";
import type { RequestAbort } from "./request_abort.ts";

/** Per-request facts; `upstream`, `error`, `lease` and `bytesOut` are filled in as it goes. */
export interface RequestContext extends ForwardContext {
  /** Client address as resolved through trusted_proxies (for ip_hash, edge rules and logs). */
  readonly clientIp: string;
  /** Raw path (undecoded) and query ("" or "?…"). */
  readonly pathname: string;
  readonly search: string;
  /** The client leaving or the listener's grace period ending; read `.signal` only when needed. */
  readonly abort: RequestAbort;
  /** The upstream URL that served (or failed) the request, for the access log. */
  upstream: string;
  /** Why the request failed (never shown to clients). */
  error: string;
  /** The member serving the request while its response is open. */
  lease: MemberLease | null;
}
