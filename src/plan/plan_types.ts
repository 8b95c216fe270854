/**
 * The compiled, immutable plan a running server serves from. Built by `compilePlan` from a
 * validated Config; swapped atomically on reload. Nothing here is re-derived per request:
 * durations are milliseconds, sizes bytes, tables built. The raw config is kept only for the
 * status report and certificate management, never read on the request path.
 *
 * @module
 */

import type { Config, SiteConfig } from "../config/types.ts";
import type { UpstreamGroup } from "../balancer/group.ts";
import type { ProxyCompression } from "../compress/proxy_compression.ts";
import type { ErrorPages } from "../error_pages/error_pages.ts";
import type { RedirectTable } from "../redirect/redirect_table.ts";
import type { EdgePolicy } from "../edge/edge_policy.ts";
import type { FrontTimeouts } from "../http1/front_options.ts";
import type { HeadLimits } from "../http1/request_head.ts";
import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import type { HeaderPlan } from "../proxy/header_plan.ts";
import type { RouteTable } from "../proxy/route_table.ts";
import type { CidrSet } from "../net/cidr.ts";
import type { UpstreamTimeouts } from "../upstream/client.ts";
import type { Logger } from "../log/types.ts";

/** Serves one request from a site's static_dir. */
export type StaticHandler = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

export interface RoutePlan {
  readonly path: string;
  readonly stripPrefix: boolean;
  readonly websocket: boolean;
  readonly group: UpstreamGroup;
  /** Access, rate limit, basic auth, forward auth for this route (null: none apply). */
  readonly edge: EdgePolicy | null;
}

/** `[sites.proxy.retry]` in ms. */
export interface RetryPlan {
  /** Further tries on other members after the first attempt fails. */
  readonly attempts: number;
  /** How long to keep trying while every member is down; 0 = not at all. */
  readonly tryDurationMs: number;
}

/** `[sites.proxy.websocket]` in ms and bytes. */
export interface WebSocketPlan {
  /** A client message (all fragments) larger than this gets 1009; 0 = no limit. */
  readonly maxMessage: number;
  /** No message either way for this long: both sides get 1001; 0 = off. */
  readonly idleTimeoutMs: number;
  /** No byte from the client for this long: bws pings it; 0 = off. */
  readonly pingIntervalMs: number;
}

export interface ProxyPlan {
  readonly routes: RouteTable<RoutePlan>;
  readonly headers: HeaderPlan;
  readonly timeouts: UpstreamTimeouts;
  readonly retry: RetryPlan;
  readonly websocket: WebSocketPlan;
}

export interface SitePlan {
  readonly name: string;
  /** For the status report and certificate management only. */
  readonly config: SiteConfig;
  readonly tls: boolean;
  readonly proxy: ProxyPlan | null;
  readonly static: StaticHandler | null;
  /** `[sites.headers]`, set on every response of the site. */
  /** `[sites.headers]`, names lower-cased. */
  readonly siteHeaders: readonly (readonly [string, string])[];
  readonly maxBodySize: number;
  /** Edge protection for requests no route matches (static files, redirects, 404s). */
  readonly edge: EdgePolicy | null;
  /** `[[sites.redirects]]`, answered before routes and static files; null: none. */
  readonly redirects: RedirectTable | null;
  /** `[sites.error_pages]`, for bws's own answers; null: none. */
  readonly errorPages: ErrorPages | null;
  /** Compression of proxied responses (`[sites.compression] proxy`); null: off. */
  readonly proxyCompression: ProxyCompression | null;
}

/** What a plain-HTTP listener does for a TLS site's names on its `http_port`. */
export interface RedirectPlan {
  readonly site: SitePlan;
  /** 308 to https (false: only ACME challenges are answered, other paths 404). */
  readonly redirect: boolean;
  /** The https port to redirect to. */
  readonly httpsPort: number;
}

export type HostTarget =
  | { readonly kind: "site"; readonly site: SitePlan }
  | { readonly kind: "redirect"; readonly redirect: RedirectPlan };

export interface ListenerPlan {
  /** `${bind}:${port}` */
  readonly key: string;
  readonly bind: string;
  readonly port: number;
  readonly tls: boolean;
  readonly exact: ReadonlyMap<string, HostTarget>;
  /** Keyed by the suffix after "*." (`example.org` for `*.example.org`). */
  readonly wildcard: ReadonlyMap<string, HostTarget>;
  readonly fallback: HostTarget;
  readonly sites: readonly SitePlan[];
  /** Answer /.well-known/acme-challenge/ on this (plain) listener. */
  readonly acmeChallenges: boolean;
  /** Connections start with a PROXY protocol header (from trusted peers only). */
  readonly proxyProtocol: boolean;
}

/** How client connections are treated (`[server.timeouts]`, `[server.limits]`). */
export interface ClientPlan {
  readonly timeouts: FrontTimeouts;
  readonly tlsHandshakeMs: number;
  readonly limits: HeadLimits;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
}

export interface Plan {
  readonly generation: number;
  readonly config: Config;
  readonly listeners: ReadonlyMap<string, ListenerPlan>;
  readonly groups: readonly UpstreamGroup[];
  readonly sites: readonly SitePlan[];
  readonly trusted: CidrSet;
  readonly logger: Logger;
  readonly client: ClientPlan;
  readonly gracePeriodMs: number;
}
