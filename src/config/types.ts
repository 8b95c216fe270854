/**
 * The validated, defaults-applied, frozen configuration. Produced by `loadConfig*` in
 * `src/config/load.ts` from a TOML file or a raw object; consumed by `compilePlan`.
 *
 * The types are derived from the schema (`schema.ts`, `site_schema.ts`, `edge_schema.ts`),
 * where each key is defined and documented once: names are camelCase versions of the TOML keys
 * (`strip_prefix` → `stripPrefix`), durations are seconds (number), sizes are bytes (number),
 * paths are absolute (resolved against the config file's directory). The few places where a
 * check makes a value narrower than its schema kind says are narrowed here, by name.
 *
 * @module
 */

import type { CONFIG_SCHEMA } from "./schema.ts";
import type { SchemaValue } from "./schema_nodes.ts";
import type { CompressionAlgorithm, RedirectStatus } from "./choices.ts";

export {
  COMPRESSION_ALGORITHMS,
  type CompressionAlgorithm,
  LB_METHODS,
  type LbMethod,
  LOG_LEVELS,
  type LogLevel,
  REDIRECT_STATUSES,
  type RedirectStatus,
} from "./choices.ts";

/** `T` with the properties of `O` replaced by `O`'s. */
type Narrow<T, O> = { readonly [K in keyof T]: K extends keyof O ? O[K] : T[K] };

/** The whole built config as the schema defines it, before the narrowing below. */
type Built = SchemaValue<typeof CONFIG_SCHEMA>;
type BuiltSite = Built["sites"][number];
type BuiltProxy = BuiltSite["proxy"];

export type ServerConfig = Built["server"];
/** `[server.timeouts]`: client-side timeouts in seconds; 0 disables one. */
export type ClientTimeoutConfig = ServerConfig["timeouts"];
/** `[server.limits]`: client connection limits. */
export type ClientLimitsConfig = ServerConfig["limits"];
export type ManagementConfig = Built["management"];
export type LoggingConfig = Built["logging"];
/** `[cluster]`: several bws instances sharing ACME state and rate limits through Redis. */
export type ClusterConfig = NonNullable<Built["cluster"]>;

/** `[sites.access]`. */
export type AccessConfig = NonNullable<BuiltSite["access"]>;
/** `[sites.rate_limit]`. */
export type RateLimitConfig = NonNullable<BuiltSite["rateLimit"]>;
/** `[sites.basic_auth]`. */
export type BasicAuthConfig = NonNullable<BuiltSite["basicAuth"]>;
/** `[sites.forward_auth]`. */
export type ForwardAuthConfig = NonNullable<BuiltSite["forwardAuth"]>;

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

export type UpstreamConfig = BuiltProxy["upstreams"][number];
export type RouteConfig = BuiltProxy["routes"][number];
export type ProxyHeadersConfig = BuiltProxy["headers"];
/** Headers added and removed in one direction. */
export type HeaderRules = ProxyHeadersConfig["both"];
/** `[sites.proxy.timeout]`, seconds. */
export type TimeoutConfig = BuiltProxy["timeout"];
export type HealthCheckConfig = BuiltProxy["healthCheck"];
export type PassiveHealthConfig = BuiltProxy["passiveHealth"];
export type RetryConfig = BuiltProxy["retry"];
export type WebSocketConfig = BuiltProxy["websocket"];
export type ProxyConfig = BuiltProxy;
export type AcmeConfig = BuiltSite["ssl"]["acme"];
export type SslConfig = BuiltSite["ssl"];

/** `[sites.compression]`; `algorithms` holds only known codings (`algorithmCheck`). */
export type CompressionConfig = Narrow<
  BuiltSite["compression"],
  { algorithms: readonly CompressionAlgorithm[] }
>;

/** One `[[sites.redirects]]`; `status` is one of the redirect statuses (`redirectStatusCheck`). */
export type RedirectConfig = Narrow<BuiltSite["redirects"][number], { status: RedirectStatus }>;

/** One `[sites.error_pages]` entry, read when the config is loaded. */
export interface ErrorPage {
  /** Absolute path of the HTML file. */
  readonly file: string;
  /** Its bytes, as read at load (or reload). */
  readonly body: Uint8Array;
}

/** One `[[sites]]` entry. */
export type SiteConfig = Narrow<BuiltSite, {
  compression: CompressionConfig;
  redirects: readonly RedirectConfig[];
  /** The loader replaces each file path by the page it read (`error_page_files.ts`). */
  errorPages: Readonly<Record<string, ErrorPage>>;
}>;

export type Config = Narrow<Built, { sites: readonly SiteConfig[] }> & {
  /** Absolute path of the file this came from, or "" for an object config. */
  readonly source: string;
};

/** One problem found while loading a config. */
export interface ConfigIssue {
  /** Key path counted from 0: `sites[1].proxy.routes[0].upstream`; "" for file-level errors. */
  readonly path: string;
  readonly message: string;
  /** 1-based, when known. */
  readonly line?: number;
  readonly column?: number;
}

/** Thrown by the loaders when a config has one or more issues; lists all of them. */
export class ConfigError extends Error {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];
  constructor(file: string, issues: readonly ConfigIssue[]) {
    super(formatIssues(file, issues));
    this.name = "ConfigError";
    this.file = file;
    this.issues = issues;
  }
}

export function formatIssues(file: string, issues: readonly ConfigIssue[]): string {
  const where = file || "<config>";
  return issues.map((i) => {
    const pos = i.line ? `:${i.line}${i.column ? `:${i.column}` : ""}` : "";
    const key = i.path ? ` ${i.path}:` : "";
    return `${where}${pos}:${key} ${i.message}`;
  }).join("\n");
}
