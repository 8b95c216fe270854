/**
 * The validated, defaults-applied, frozen configuration. Produced by `loadConfig*` in
 * `src/config/load.ts` from a TOML file or a raw object; consumed by `compilePlan`.
 *
 * Names are camelCase versions of the TOML keys (`strip_prefix` → `stripPrefix`). Durations are
 * seconds (number), sizes are bytes (number), paths are absolute (resolved against the config
 * file's directory).
 *
 * The schema (`schema.ts`, `site_schema.ts`, `edge_schema.ts`) says which keys exist and how each
 * is checked; these interfaces (a site's in `site_types.ts`) are the public, documented types of
 * what it builds.
 * `schema_types_test.ts` checks at compile time that the two list the same keys with the same
 * types (`SchemaValue`), so a key added to one and not the other fails `deno check`. They are
 * written out rather than derived because they are part of the module API (`mod.ts`), whose
 * types must be explicit (the `no-slow-types` lint).
 *
 * @module
 */

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
import type { LogLevel } from "./choices.ts";
export type {
  AccessConfig,
  AcmeConfig,
  BasicAuthConfig,
  CompressionConfig,
  EdgeTables,
  ErrorPage,
  ForwardAuthConfig,
  HeaderRules,
  HealthCheckConfig,
  PassiveHealthConfig,
  ProxyConfig,
  ProxyHeadersConfig,
  RateLimitConfig,
  RedirectConfig,
  RetryConfig,
  RouteConfig,
  SiteConfig,
  SslConfig,
  TimeoutConfig,
  UpstreamConfig,
  WebSocketConfig,
} from "./site_types.ts";
import type { SiteConfig } from "./site_types.ts";

export interface ServerConfig {
  /** Shown in logs and status output. @default "BWS Proxy Server" */
  readonly name: string;
  /** Seconds to drain on shutdown and reload. @default 10 */
  readonly gracePeriod: number;
  /** CIDRs (or single addresses) whose X-Forwarded-For / Forwarded we extend. @default [] */
  readonly trustedProxies: readonly string[];
  /** Request bodies above this many bytes get 413. @default 100_000_000 */
  readonly maxBodySize: number;
  /**
   * Worker threads serving requests, each accepting on every listener (SO_REUSEPORT);
   * `"auto"` = one per CPU core. @default 1 (one thread, no workers)
   */
  readonly workers: number | "auto";
  /** `[server.timeouts]`: how long a client may take (seconds). */
  readonly timeouts: ClientTimeoutConfig;
  /** `[server.limits]`: how much a client may hold. */
  readonly limits: ClientLimitsConfig;
}

/** Client-side timeouts in seconds (docs/behaviour.md "Client connections"); 0 disables one. */
export interface ClientTimeoutConfig {
  /** To receive a complete request head (from accept, or from a request's first byte on a
   * kept-alive connection). @default 10 */
  readonly header: number;
  /** A kept-alive connection with no byte of a next request is closed after this. @default 75 */
  readonly keepAlive: number;
  /** The longest gap between bytes of a request body. @default 30 */
  readonly body: number;
  /** The longest stall writing to a client that does not read. @default 60 */
  readonly send: number;
  /** To complete a TLS handshake. @default 10 */
  readonly tlsHandshake: number;
}

/** Client connection limits (docs/behaviour.md "Client connections"). */
export interface ClientLimitsConfig {
  /** Client connections in all; past it bws stops accepting. @default 20000 */
  readonly maxConnections: number;
  /** Per client address; 0 = off. @default 0 */
  readonly maxConnectionsPerIp: number;
  /** Request line + headers in bytes; 431 past it. @default 32768 */
  readonly maxHeaderSize: number;
  /** Header lines; 431 past it. @default 100 */
  readonly maxHeaders: number;
}

export interface ManagementConfig {
  /** @default false */
  readonly enabled: boolean;
  /** @default "127.0.0.1" */
  readonly host: string;
  /** @default 7654 */
  readonly port: number;
  /** When non-empty every request needs `X-API-Key` with this value. @default "" */
  readonly apiKey: string;
}

/** `[cluster]`: several bws instances sharing ACME state and rate limits through Redis. */
export interface ClusterConfig {
  /** `redis://[user][:password]@host[:port][/db]`, or `rediss://` for TLS. */
  readonly redisUrl: string;
  /** Prepended to every Redis key bws uses. @default "bws:" */
  readonly keyPrefix: string;
  /** This instance in the fleet list (`/api/status` `instances`). @default the host name */
  readonly instanceName: string;
}

export interface LoggingConfig {
  /** @default "info" */
  readonly level: LogLevel;
  /** @default "text" */
  readonly format: "text" | "json";
  /** @default true */
  readonly accessLog: boolean;
  /** @default "stdout" */
  readonly output: "stdout" | "stderr" | "file";
  /** Absolute path; required (non-empty) when output = "file". @default "" */
  readonly filePath: string;
}

export interface Config {
  /** Absolute path of the file this came from, or "" for an object config. */
  readonly source: string;
  readonly server: ServerConfig;
  readonly management: ManagementConfig;
  readonly logging: LoggingConfig;
  /** null without a `[cluster]` table: this instance keeps its state to itself. */
  readonly cluster: ClusterConfig | null;
  readonly sites: readonly SiteConfig[];
}

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
