/**
 * The compiled, immutable plan a running server serves from. Built by `compilePlan` from a
 * validated Config; swapped atomically on reload. Nothing here is re-derived per request.
 *
 * @module
 */

import type {
  Config,
  RetryConfig,
  SiteConfig,
  TimeoutConfig,
  WebSocketConfig,
} from "../config/types.ts";
import type { UpstreamGroup } from "../balancer/group.ts";
import type { HeaderPlan } from "../proxy/header_plan.ts";
import type { RouteTable } from "../proxy/route_table.ts";
import type { CidrSet } from "../proxy/cidr.ts";
import type { Logger } from "../log/types.ts";

export type StaticHandler = (req: Request, pathname: string) => Promise<Response>;

export interface RoutePlan {
  readonly path: string;
  readonly stripPrefix: boolean;
  readonly websocket: boolean;
  readonly group: UpstreamGroup;
}

export interface ProxyPlan {
  readonly routes: RouteTable<RoutePlan>;
  readonly headers: HeaderPlan;
  readonly timeouts: TimeoutConfig;
  readonly retry: RetryConfig;
  readonly websocket: WebSocketConfig;
}

export interface SitePlan {
  readonly name: string;
  readonly config: SiteConfig;
  readonly tls: boolean;
  readonly proxy: ProxyPlan | null;
  readonly static: StaticHandler | null;
  /** `[sites.headers]`, set on every response of the site. */
  readonly siteHeaders: readonly (readonly [string, string])[];
  readonly maxBodySize: number;
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
}

export interface Plan {
  readonly generation: number;
  readonly config: Config;
  readonly listeners: ReadonlyMap<string, ListenerPlan>;
  readonly groups: readonly UpstreamGroup[];
  readonly sites: readonly SitePlan[];
  readonly trusted: CidrSet;
  readonly logger: Logger;
}
