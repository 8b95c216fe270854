/**
 * The config file's keys as data: one entry per key with its type, default and checks. The
 * validator (`validate.ts`) walks this, so adding a key means adding one line here.
 *
 * Property names are the camelCase form of the key unless `prop` says otherwise.
 *
 * @module
 */

import { validateCidr } from "../net/cidr.ts";
import { edgeTables } from "./edge_schema.ts";
import { COMPRESSION_ALGORITHMS, LB_METHODS, REDIRECT_STATUSES } from "./types.ts";
import { parseExpectStatus } from "./units.ts";
import { redisUrlProblem } from "../cluster/redis_url.ts";

/** Context for computed defaults and checks. */
export interface BuildContext {
  /** The built root so far (tables are built in schema order, so `server` precedes `sites`). */
  readonly root: Record<string, unknown>;
}

/** A default value, or a function of the table built so far (keys earlier in the schema). */
export type Default<T> = T | ((self: Record<string, unknown>, ctx: BuildContext) => T);

/** Returns an error message, or undefined when the value is fine. */
export type Check<T> = (value: T) => string | undefined;

interface Base<T> {
  /** When set the key must be present; otherwise `default` is used. */
  readonly required?: boolean;
  readonly default?: Default<T>;
  readonly check?: Check<T>;
}

export interface StringNode extends Base<string> {
  readonly type: "string";
  /** Allowed values (the message lists them). */
  readonly oneOf?: readonly string[];
  /** A file path: resolved against the config file's directory ("" stays ""). */
  readonly path?: boolean;
  readonly lowerCase?: boolean;
}
export interface BoolNode extends Base<boolean> {
  readonly type: "bool";
}
export interface IntNode extends Base<number> {
  readonly type: "int";
  readonly min?: number;
  readonly max?: number;
}
/** Any finite number (integer or float) within `min`..`max` inclusive. */
export interface NumberNode extends Base<number> {
  readonly type: "number";
  readonly min?: number;
  readonly max?: number;
}
/** An integer within `min`..`max`, or one of `keywords` (`workers = "auto"`). */
export interface CountNode extends Base<number | string> {
  readonly type: "count";
  readonly min: number;
  readonly max: number;
  readonly keywords: readonly string[];
}
/** Seconds, integer or float ≥ 0. */
export interface DurationNode extends Base<number> {
  readonly type: "duration";
}
/** Bytes: an integer or a string like "10MB" / "16MiB". */
export interface SizeNode extends Base<number> {
  readonly type: "size";
}
export interface StringListNode extends Base<readonly string[]> {
  readonly type: "string[]";
  readonly lowerCase?: boolean;
  /** Checked for every element. */
  readonly each?: Check<string>;
}
/** A table of arbitrary header names to string values. */
export interface HeaderMapNode extends Base<Record<string, string>> {
  readonly type: "headers";
}
/** Header names to remove: `{ "Name" = true }` (false keeps it) or `["Name"]`. */
export interface HeaderRemoveNode extends Base<readonly string[]> {
  readonly type: "header-remove";
}
/**
 * A table of arbitrary keys to string values: `users = { alice = "$2y$..." }`,
 * `[sites.error_pages]`.
 */
export interface StringMapNode extends Base<Record<string, string>> {
  readonly type: "string-map";
  /** Checked for every key. */
  readonly key?: Check<string>;
  /** Checked for every entry; returns an error message or undefined. */
  readonly entry?: (key: string, value: string) => string | undefined;
  /** Values are file paths (non-empty) resolved against the config file's directory. */
  readonly path?: boolean;
}
export interface TableNode {
  readonly type: "table";
  readonly fields: Readonly<Record<string, Field>>;
  /** Another key accepted for a field: `{ interval_seconds: "interval" }`. */
  readonly aliases?: Readonly<Record<string, string>>;
  readonly required?: boolean;
  /**
   * The table is a feature switched on by writing it: built as null when absent (its required
   * keys are then not asked for), as a table when present, even empty.
   */
  readonly optional?: boolean;
}
export interface TableArrayNode {
  readonly type: "table[]";
  readonly item: TableNode;
  readonly required?: boolean;
}

export type Node =
  | StringNode
  | BoolNode
  | IntNode
  | NumberNode
  | CountNode
  | DurationNode
  | SizeNode
  | StringListNode
  | HeaderMapNode
  | HeaderRemoveNode
  | StringMapNode
  | TableNode
  | TableArrayNode;

/** A node plus the property name it gets in the built config ("a.b" nests it). */
export type Field = Node & { readonly prop?: string };

const table = (
  fields: Record<string, Field>,
  aliases?: Record<string, string>,
): TableNode => ({ type: "table", fields, aliases });

const startsWithSlash: Check<string> = (v) =>
  v.startsWith("/") ? undefined : `Cannot use path "${v}": must start with "/"`;

const HOSTNAME =
  /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/;
const hostnameCheck: Check<string> = (v) =>
  v === "" || HOSTNAME.test(v.toLowerCase()) || isIpLiteral(v)
    ? undefined
    : `Cannot use hostname "${v}": expected a DNS name (optionally starting with "*."), without port or scheme`;

function isIpLiteral(v: string): boolean {
  return /^\[?[0-9a-fA-F:.]+\]?$/.test(v) && v.includes(":");
}

const statusCheck: Check<string> = (v) => {
  const r = parseExpectStatus(v);
  return r.ok ? undefined : r.message;
};

const cidrCheck: Check<string> = (v) => {
  try {
    validateCidr(v);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

const MEDIA_TOKEN = "[a-z0-9!#$&^_.+-]+";
const MEDIA_RANGE = new RegExp(`^(\\*/\\*|${MEDIA_TOKEN}/(${MEDIA_TOKEN}|\\*))$`);
const mediaRangeCheck: Check<string> = (v) =>
  MEDIA_RANGE.test(v) ? undefined : `Cannot use type "${v}": expected a media type like ` +
    '"application/json", or a range like "text/*", without parameters';

const algorithmCheck: Check<string> = (v) =>
  (COMPRESSION_ALGORITHMS as readonly string[]).includes(v)
    ? undefined
    : `Cannot use algorithm "${v}": expected one of ${COMPRESSION_ALGORITHMS.join(", ")}`;

const distinct: Check<readonly string[]> = (list) => {
  const dup = list.find((v, i) => list.indexOf(v) !== i);
  return dup === undefined ? undefined : `"${dup}" is listed twice`;
};

/** Where a redirect may point: an absolute http(s) URL, or a path on this site. */
const redirectTargetCheck: Check<string> = (v) => {
  const bad = (detail: string) => `Cannot redirect to "${v}": ${detail}`;
  // Location is sent as it is: no spaces, controls or non-ASCII (percent-encode them).
  if (!/^[\x21-\x7e]+$/.test(v)) {
    return bad("contains spaces, control or non-ASCII characters (percent-encode them)");
  }
  if (v.startsWith("/")) {
    return v[1] === "/" || v[1] === "\\"
      ? bad('a path must not start with "//" (a browser reads it as another host)')
      : undefined;
  }
  return URL.canParse(v) && /^https?:\/\/[^/]/i.test(v)
    ? undefined
    : bad('expected an absolute http(s) URL or a path starting with "/"');
};

/** A file below static_dir: relative, "/"-separated, no "." / ".." or empty segments. */
const spaFallbackCheck: Check<string> = (v) => {
  if (v === "") return undefined;
  const segments = v.replace(/^\//, "").split("/");
  return segments.every((s) => s !== "" && s !== "." && s !== ".." && !s.includes("\\"))
    ? undefined
    : `Cannot use spa_fallback "${v}": expected a file inside static_dir, like "index.html"`;
};

/** `[sites.error_pages]` keys: a status 400-599, or "4xx" / "5xx". */
const errorPageKey: Check<string> = (k) =>
  /^[45](\d\d|xx)$/.test(k)
    ? undefined
    : `Cannot use error page key "${k}": expected a status 400-599, "4xx" or "5xx"`;

const headerRules = () =>
  table({
    add: { type: "headers", default: {} },
    remove: { type: "header-remove", default: [] },
  });

const LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory";
const LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

/** Valid `logging.level` values. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"] as const;

const site = table({
  name: { type: "string", required: true, check: (v) => (v ? undefined : "must not be empty") },
  hostname: { type: "string", default: "", lowerCase: true, check: hostnameCheck },
  hostnames: { type: "string[]", default: [], lowerCase: true, each: hostnameCheck },
  port: { type: "int", required: true, min: 0, max: 65535 },
  bind: { type: "string", default: "0.0.0.0" },
  static_dir: { type: "string", default: "", path: true },
  index_file: {
    type: "string",
    default: "index.html",
    check: (
      v,
    ) => (v && !v.includes("/") ? undefined : `Cannot use index_file "${v}": expected a file name`),
  },
  spa_fallback: { type: "string", default: "", check: spaFallbackCheck },
  default: { type: "bool", default: false },
  max_body_size: {
    type: "size",
    default: (_self, ctx) => (ctx.root.server as { maxBodySize: number }).maxBodySize,
  },
  headers: { type: "headers", default: {} },
  ...edgeTables(),
  proxy_protocol: { type: "bool", default: false },
  compression: table({
    static: { type: "bool", default: true },
    proxy: { type: "bool", default: false },
    algorithms: {
      type: "string[]",
      default: COMPRESSION_ALGORITHMS,
      lowerCase: true,
      each: algorithmCheck,
      check: distinct,
    },
    min_size: { type: "size", default: 1024 },
    types: {
      type: "string[]",
      default: [
        "text/*",
        "application/json",
        "application/javascript",
        "application/xml",
        "image/svg+xml",
      ],
      lowerCase: true,
      each: mediaRangeCheck,
      check: distinct,
    },
  }),
  redirects: {
    type: "table[]",
    item: table({
      path: { type: "string", required: true, check: startsWithSlash },
      to: { type: "string", required: true, check: redirectTargetCheck },
      status: {
        type: "int",
        default: 308,
        check: (v) =>
          (REDIRECT_STATUSES as readonly number[]).includes(v)
            ? undefined
            : `Cannot use status ${v}: expected one of ${REDIRECT_STATUSES.join(", ")}`,
      },
      keep_path: { type: "bool", default: true },
    }),
  },
  error_pages: { type: "string-map", default: {}, key: errorPageKey, path: true },
  proxy: table({
    enabled: { type: "bool", default: false },
    upstreams: {
      type: "table[]",
      item: table({
        name: {
          type: "string",
          required: true,
          check: (v) => (v ? undefined : "must not be empty"),
        },
        url: { type: "string", required: true },
        weight: { type: "int", default: 1, min: 1 },
      }),
    },
    routes: {
      type: "table[]",
      item: table({
        path: { type: "string", required: true, check: startsWithSlash },
        upstream: { type: "string", required: true },
        strip_prefix: { type: "bool", default: false },
        websocket: { type: "bool", default: false },
        ...edgeTables(),
      }),
    },
    load_balancing: table({
      method: { type: "string", default: "round_robin", oneOf: LB_METHODS },
    }),
    headers: table({
      add_x_forwarded: { type: "bool", default: true },
      add_forwarded: { type: "bool", default: true },
      preserve_host: { type: "bool", default: true },
      add: { type: "headers", default: {}, prop: "both.add" },
      remove: { type: "header-remove", default: [], prop: "both.remove" },
      request: headerRules(),
      response: headerRules(),
    }),
    timeout: table({
      connect: { type: "duration", default: 5 },
      read: { type: "duration", default: 30 },
      write: { type: "duration", default: 30 },
    }),
    health_check: table({
      enabled: { type: "bool", default: false },
      path: { type: "string", default: "/health", check: startsWithSlash },
      interval: { type: "duration", default: 30 },
      timeout: { type: "duration", default: 5 },
      retries: { type: "int", default: 3, min: 1 },
      rise: { type: "int", default: 2, min: 1 },
      expect_status: { type: "string", default: "2xx", check: statusCheck },
    }, { interval_seconds: "interval" }),
    passive_health: table({
      enabled: { type: "bool", default: true },
      max_fails: { type: "int", default: 3, min: 1 },
      fail_timeout: { type: "duration", default: 10 },
    }),
    retry: table({
      attempts: { type: "int", default: 2, min: 0 },
      try_duration: { type: "duration", default: 0 },
    }),
    websocket: table({
      max_buffered: { type: "size", default: 16 * 1024 * 1024 },
      idle_timeout: { type: "duration", default: 0 },
      ping_interval: { type: "duration", default: 0 },
    }),
  }),
  ssl: table({
    enabled: { type: "bool", default: false },
    cert_file: { type: "string", default: "", path: true },
    key_file: { type: "string", default: "", path: true },
    auto_cert: { type: "bool", default: false },
    domains: { type: "string[]", default: [], lowerCase: true, each: hostnameCheck },
    http_port: { type: "int", default: 80, min: 0, max: 65535 },
    redirect_http: { type: "bool", default: (self) => self.autoCert as boolean },
    acme: table({
      enabled: { type: "bool", default: false },
      email: { type: "string", default: "" },
      staging: { type: "bool", default: false },
      challenge_dir: { type: "string", default: "", path: true },
      directory_url: {
        type: "string",
        default: (self) => (self.staging ? LETS_ENCRYPT_STAGING : LETS_ENCRYPT),
        check: (
          v,
        ) => (URL.canParse(v) && /^https?:/.test(v)
          ? undefined
          : `Cannot use directory_url "${v}": expected an http(s) URL`),
      },
      storage_dir: { type: "string", default: "./certs", path: true },
      renew_before_days: { type: "int", default: 30, min: 1 },
    }),
  }),
});

/** The whole file. */
export const CONFIG_SCHEMA: TableNode = table({
  server: table({
    name: { type: "string", default: "BWS Proxy Server" },
    grace_period: { type: "duration", default: 10 },
    trusted_proxies: { type: "string[]", default: [], each: cidrCheck },
    max_body_size: { type: "size", default: 100_000_000 },
    workers: { type: "count", default: 1, min: 1, max: 1024, keywords: ["auto"] },
    timeouts: table({
      header: { type: "duration", default: 10 },
      keep_alive: { type: "duration", default: 75 },
      body: { type: "duration", default: 30 },
      send: { type: "duration", default: 60 },
      tls_handshake: { type: "duration", default: 10 },
    }),
    limits: table({
      max_connections: { type: "int", default: 20000, min: 1 },
      max_connections_per_ip: { type: "int", default: 0, min: 0 },
      max_header_size: {
        type: "size",
        default: 32 * 1024,
        check: (v) =>
          v >= 1024 && v <= 1024 * 1024
            ? undefined
            : `Cannot use max_header_size ${v}: must be between 1KiB and 1MiB`,
      },
      max_headers: { type: "int", default: 100, min: 1, max: 10_000 },
    }),
  }),
  management: table({
    enabled: { type: "bool", default: false },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "int", default: 7654, min: 0, max: 65535 },
    api_key: { type: "string", default: "" },
  }),
  logging: table({
    level: { type: "string", default: "info", oneOf: LOG_LEVELS },
    format: { type: "string", default: "text", oneOf: ["text", "json"] },
    access_log: { type: "bool", default: true },
    output: { type: "string", default: "stdout", oneOf: ["stdout", "stderr", "file"] },
    file_path: { type: "string", default: "", path: true },
  }),
  cluster: {
    type: "table",
    optional: true,
    fields: {
      redis_url: { type: "string", required: true, check: redisUrlProblem },
      key_prefix: {
        type: "string",
        default: "bws:",
        check: (v) =>
          /^[\x21-\x7e]{1,64}$/.test(v)
            ? undefined
            : `Cannot use key_prefix ${
              JSON.stringify(v)
            }: expected 1 to 64 printable ASCII characters without spaces`,
      },
      instance_name: {
        type: "string",
        default: "",
        check: (v) =>
          /^[\x21-\x7e]{0,64}$/.test(v)
            ? undefined
            : `Cannot use instance_name ${
              JSON.stringify(v)
            }: expected up to 64 printable ASCII characters without spaces`,
      },
    },
  },
  sites: { type: "table[]", item: site },
});
