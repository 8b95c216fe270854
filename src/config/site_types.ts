/**
 * The built config of one `[[sites]]` entry (keys in `site_schema.ts` and `edge_schema.ts`), as
 * `types.ts` describes the whole: camelCase names, seconds, bytes, absolute paths.
 *
 * @module
 */

import type { CompressionAlgorithm, LbMethod, RedirectStatus } from "./choices.ts";

export interface UpstreamConfig {
  /** Group name: entries with the same name form one group. */
  readonly name: string;
  /** Original URL string as written (`http://host:port/prefix`). */
  readonly url: string;
  /** Integer ≥ 1. @default 1 */
  readonly weight: number;
}

/** `[sites.access]`: CIDRs or single addresses, IPv4 or IPv6. */
export interface AccessConfig {
  /** When non-empty, only these may enter. @default [] */
  readonly allow: readonly string[];
  /** Always refused; deny wins over allow. @default [] */
  readonly deny: readonly string[];
}

/** `[sites.rate_limit]`: a token bucket per key. */
export interface RateLimitConfig {
  /** Requests per second, refilled continuously (> 0, may be fractional). */
  readonly rate: number;
  /** Bucket size (integer ≥ 1). @default ceil(rate) */
  readonly burst: number;
  /** "ip" or "header:NAME". @default "ip" */
  readonly key: string;
}

/** `[sites.basic_auth]`. */
export interface BasicAuthConfig {
  /** @default "restricted" */
  readonly realm: string;
  /** User name → bcrypt hash. @default {} */
  readonly users: Readonly<Record<string, string>>;
  /** Absolute path of a file of `user:bcrypt-hash` lines, or "". Re-read on every load. */
  readonly htpasswdFile: string;
  /** The client's Authorization goes upstream only when true. @default false */
  readonly forwardAuthorization: boolean;
}

/** `[sites.forward_auth]`. */
export interface ForwardAuthConfig {
  /** http(s) URL of the auth service's check endpoint (a query is kept). */
  readonly url: string;
  /** Header names copied from a 2xx answer onto the upstream request. @default [] */
  readonly copyHeaders: readonly string[];
}

/**
 * The edge-protection tables of a site or a route (README "Protecting a site"), each null unless
 * written. A route's table replaces the site's for the requests it matches; a null one inherits it.
 */
export interface EdgeTables {
  readonly access: AccessConfig | null;
  readonly rateLimit: RateLimitConfig | null;
  readonly basicAuth: BasicAuthConfig | null;
  readonly forwardAuth: ForwardAuthConfig | null;
}

export interface RouteConfig extends EdgeTables {
  readonly path: string;
  /** Name of an upstream group of the same site. */
  readonly upstream: string;
  /** @default false */
  readonly stripPrefix: boolean;
  /** @default false */
  readonly websocket: boolean;
}

export interface HeaderRules {
  /** Header name → value. Value "auto" on X-Request-ID means keep-or-generate. */
  readonly add: Readonly<Record<string, string>>;
  /** Header names (original case) to remove. */
  readonly remove: readonly string[];
}

export interface ProxyHeadersConfig {
  /** @default true */
  readonly addXForwarded: boolean;
  /** @default true */
  readonly addForwarded: boolean;
  /** @default true */
  readonly preserveHost: boolean;
  /** Both directions: `[sites.proxy.headers.add]` / `.remove`. */
  readonly both: HeaderRules;
  /** `[sites.proxy.headers.request.*]`: the upstream request only. */
  readonly request: HeaderRules;
  /** `[sites.proxy.headers.response.*]`: the client response only. */
  readonly response: HeaderRules;
}

export interface TimeoutConfig {
  /** @default 5 */
  readonly connect: number;
  /** @default 30 */
  readonly read: number;
  /** @default 30 */
  readonly write: number;
}

export interface HealthCheckConfig {
  /** @default false */
  readonly enabled: boolean;
  /** @default "/health" */
  readonly path: string;
  /** Seconds. Alias key `interval_seconds`. @default 30 */
  readonly interval: number;
  /** Seconds. @default 5 */
  readonly timeout: number;
  /** Consecutive failures to mark down. @default 3 */
  readonly retries: number;
  /** Consecutive passes to mark up. @default 2 */
  readonly rise: number;
  /** "2xx", "200", "200-299", "2xx,3xx" … @default "2xx" */
  readonly expectStatus: string;
}

export interface PassiveHealthConfig {
  /** @default true */
  readonly enabled: boolean;
  /** @default 3 */
  readonly maxFails: number;
  /** Seconds. @default 10 */
  readonly failTimeout: number;
}

export interface RetryConfig {
  /** Further tries on other members after the first attempt fails; 0 disables. @default 2 */
  readonly attempts: number;
  /** Seconds to keep trying while every member is down. @default 0 */
  readonly tryDuration: number;
}

export interface WebSocketConfig {
  /** Bytes buffered towards one side before that side is closed (1009). @default 16 MiB */
  readonly maxBuffered: number;
  /** Seconds without a message in either direction before closing; 0 = never. @default 0 */
  readonly idleTimeout: number;
  /** Seconds between keep-alive pings to the client; 0 = off. @default 0 */
  readonly pingInterval: number;
}

export interface ProxyConfig {
  /** @default false */
  readonly enabled: boolean;
  readonly upstreams: readonly UpstreamConfig[];
  readonly routes: readonly RouteConfig[];
  readonly loadBalancing: { readonly method: LbMethod };
  readonly headers: ProxyHeadersConfig;
  readonly timeout: TimeoutConfig;
  readonly healthCheck: HealthCheckConfig;
  readonly passiveHealth: PassiveHealthConfig;
  readonly retry: RetryConfig;
  readonly websocket: WebSocketConfig;
}

export interface AcmeConfig {
  /** @default false */
  readonly enabled: boolean;
  /** @default "" */
  readonly email: string;
  /** @default false */
  readonly staging: boolean;
  /** Absolute path or "" (challenges are answered from memory). @default "" */
  readonly challengeDir: string;
  /** Default: Let's Encrypt production, or staging when `staging`. */
  readonly directoryUrl: string;
  /** Absolute path. @default "<configdir>/certs" */
  readonly storageDir: string;
  /** Days before expiry to renew. Key `renew_before_days`. @default 30 */
  readonly renewBeforeDays: number;
}

export interface SslConfig {
  /** @default false */
  readonly enabled: boolean;
  /** Absolute path or "". */
  readonly certFile: string;
  /** Absolute path or "". */
  readonly keyFile: string;
  /** @default false */
  readonly autoCert: boolean;
  /** Extra names for the certificate. @default [] */
  readonly domains: readonly string[];
  /** Plain HTTP port for ACME HTTP-01 and redirects. @default 80 */
  readonly httpPort: number;
  /** 308 to https on `httpPort`. @default autoCert */
  readonly redirectHttp: boolean;
  readonly acme: AcmeConfig;
}

/** `[sites.compression]`. */
export interface CompressionConfig {
  /** Static files of compressible types, and precompressed siblings. @default true */
  readonly static: boolean;
  /** Proxied responses that arrive without Content-Encoding. @default false */
  readonly proxy: boolean;
  /** Server preference, distinct; breaks ties of the client's q-values. @default zstd, br, gzip */
  readonly algorithms: readonly CompressionAlgorithm[];
  /** Bytes; smaller bodies (or unknown-length ones that turn out smaller) go as they are. */
  readonly minSize: number;
  /** Lower-case media types (`application/json`) or ranges (`text/*`, `*\/*`), no parameters. */
  readonly types: readonly string[];
}

/** One `[[sites.redirects]]`. */
export interface RedirectConfig {
  /** Matched like a route path (`proxy/route_table.ts`). */
  readonly path: string;
  /** An absolute http(s) URL, or a path starting with "/". */
  readonly to: string;
  /** @default 308 */
  readonly status: RedirectStatus;
  /** Append the rest of the path after `path`, and the query. @default true */
  readonly keepPath: boolean;
}

/** One `[sites.error_pages]` entry, read when the config is loaded. */
export interface ErrorPage {
  /** Absolute path of the HTML file. */
  readonly file: string;
  /** Its bytes, as read at load (or reload). */
  readonly body: Uint8Array;
}

export interface SiteConfig extends EdgeTables {
  readonly name: string;
  /** Lower-cased. */
  readonly hostname: string;
  /** Lower-cased; may contain "*.example.org" wildcards. */
  readonly hostnames: readonly string[];
  readonly port: number;
  /** @default "0.0.0.0" */
  readonly bind: string;
  /** Absolute path, or "" when the site has none. */
  readonly staticDir: string;
  /** @default "index.html" */
  readonly indexFile: string;
  /**
   * A file below `staticDir`, "/"-separated and relative to it even with a leading "/"
   * ("index.html", "app/index.html"), served with 200 for a GET/HEAD of a missing path that does
   * not look like a file; "" = off. @default ""
   */
  readonly spaFallback: string;
  /** @default false */
  readonly default: boolean;
  /** Bytes; defaults to server.maxBodySize. */
  readonly maxBodySize: number;
  /** `[sites.headers]`: added to every response of this site. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The port expects a PROXY protocol (v1 or v2) header from peers in trusted_proxies; every
   * site on the port agrees. @default false
   */
  readonly proxyProtocol: boolean;
  readonly compression: CompressionConfig;
  /** Answered before routes and static files. @default [] */
  readonly redirects: readonly RedirectConfig[];
  /**
   * `[sites.error_pages]`: key a status ("404", 400-599) or a class ("4xx", "5xx").
   * @default {}
   */
  readonly errorPages: Readonly<Record<string, ErrorPage>>;
  readonly proxy: ProxyConfig;
  readonly ssl: SslConfig;
}
