/**
 * The keys of one `[[sites]]` entry as schema data (see `schema.ts`), each documented where it
 * is defined: the built config's types (`types.ts`) are derived from these tables. Durations are
 * seconds, sizes bytes, paths absolute once built.
 *
 * @module
 */

import { COMPRESSION_ALGORITHMS, LB_METHODS } from "./choices.ts";
import { edgeTables } from "./edge_schema.ts";
import {
  algorithmCheck,
  distinct,
  errorPageKey,
  hostnameCheck,
  mediaRangeCheck,
  notEmpty,
  redirectStatusCheck,
  redirectTargetCheck,
  spaFallbackCheck,
  startsWithSlash,
  statusCheck,
} from "./schema_checks.ts";
import { table } from "./schema_nodes.ts";

const LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory";
const LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

/** Headers added and removed in one direction. */
const headerRules = () =>
  table({
    /** Header name → value. Value "auto" on X-Request-ID means keep-or-generate. */
    add: { type: "headers", default: {} },
    /** Header names (original case) to remove. */
    remove: { type: "header-remove", default: [] },
  });

/** `[sites.compression]`. */
export const COMPRESSION = table({
  /** Static files of compressible types, and precompressed siblings. */
  static: { type: "bool", default: true },
  /** Proxied responses that arrive without Content-Encoding. */
  proxy: { type: "bool", default: false },
  /** Server preference, distinct; breaks ties of the client's q-values. */
  algorithms: {
    type: "string[]",
    default: COMPRESSION_ALGORITHMS,
    lowerCase: true,
    each: algorithmCheck,
    check: distinct,
  },
  /** Bytes; smaller bodies (or unknown-length ones that turn out smaller) go as they are. */
  min_size: { type: "size", default: 1024 },
  /** Lower-case media types (`application/json`) or ranges (`text/*`, `*\/*`), no parameters. */
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
});

/** One `[[sites.redirects]]`: answered before routes and static files. */
export const REDIRECT = table({
  /** Matched like a route path (`proxy/route_table.ts`). */
  path: { type: "string", required: true, check: startsWithSlash },
  /** An absolute http(s) URL, or a path starting with "/". */
  to: { type: "string", required: true, check: redirectTargetCheck },
  status: { type: "int", default: 308, check: redirectStatusCheck },
  /** Append the rest of the path after `path`, and the query. */
  keep_path: { type: "bool", default: true },
});

/** `[sites.proxy]`. */
export const PROXY = table({
  enabled: { type: "bool", default: false },
  upstreams: {
    type: "table[]",
    item: table({
      /** Group name: entries with the same name form one group. */
      name: { type: "string", required: true, check: notEmpty },
      /** Original URL string as written (`http://host:port/prefix`). */
      url: { type: "string", required: true },
      /** Integer ≥ 1. */
      weight: { type: "int", default: 1, min: 1 },
    }),
  },
  routes: {
    type: "table[]",
    item: table({
      path: { type: "string", required: true, check: startsWithSlash },
      /** Name of an upstream group of the same site. */
      upstream: { type: "string", required: true },
      strip_prefix: { type: "bool", default: false },
      websocket: { type: "bool", default: false },
      /** A route's edge table replaces the site's for the requests it matches; a null one
       * inherits it. */
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
    /** Both directions: `[sites.proxy.headers.add]` / `.remove`. */
    add: { type: "headers", default: {}, prop: "both.add" },
    remove: { type: "header-remove", default: [], prop: "both.remove" },
    /** `[sites.proxy.headers.request.*]`: the upstream request only. */
    request: headerRules(),
    /** `[sites.proxy.headers.response.*]`: the client response only. */
    response: headerRules(),
  }),
  /** Seconds. */
  timeout: table({
    connect: { type: "duration", default: 5 },
    read: { type: "duration", default: 30 },
    write: { type: "duration", default: 30 },
  }),
  health_check: table({
    enabled: { type: "bool", default: false },
    path: { type: "string", default: "/health", check: startsWithSlash },
    /** Seconds. Alias key `interval_seconds`. */
    interval: { type: "duration", default: 30 },
    /** Seconds. */
    timeout: { type: "duration", default: 5 },
    /** Consecutive failures to mark down. */
    retries: { type: "int", default: 3, min: 1 },
    /** Consecutive passes to mark up. */
    rise: { type: "int", default: 2, min: 1 },
    /** "2xx", "200", "200-299", "2xx,3xx" … */
    expect_status: { type: "string", default: "2xx", check: statusCheck },
  }, { interval_seconds: "interval" }),
  passive_health: table({
    enabled: { type: "bool", default: true },
    max_fails: { type: "int", default: 3, min: 1 },
    /** Seconds. */
    fail_timeout: { type: "duration", default: 10 },
  }),
  retry: table({
    /** Further tries on other members after the first attempt fails; 0 disables. */
    attempts: { type: "int", default: 2, min: 0 },
    /** Seconds to keep trying while every member is down. */
    try_duration: { type: "duration", default: 0 },
  }),
  websocket: table({
    /** Bytes buffered towards one side before that side is closed (1009). */
    max_buffered: { type: "size", default: 16 * 1024 * 1024 },
    /** Seconds without a message in either direction before closing; 0 = never. */
    idle_timeout: { type: "duration", default: 0 },
    /** Seconds between keep-alive pings to the client; 0 = off. */
    ping_interval: { type: "duration", default: 0 },
  }),
});

/** `[sites.ssl]`. */
export const SSL = table({
  enabled: { type: "bool", default: false },
  /** Absolute path or "". */
  cert_file: { type: "string", default: "", path: true },
  /** Absolute path or "". */
  key_file: { type: "string", default: "", path: true },
  auto_cert: { type: "bool", default: false },
  /** Extra names for the certificate. */
  domains: { type: "string[]", default: [], lowerCase: true, each: hostnameCheck },
  /** Plain HTTP port for ACME HTTP-01 and redirects. */
  http_port: { type: "int", default: 80, min: 0, max: 65535 },
  /** 308 to https on `httpPort`. Defaults to `autoCert`. */
  redirect_http: { type: "bool", default: (self) => self.autoCert as boolean },
  acme: table({
    enabled: { type: "bool", default: false },
    email: { type: "string", default: "" },
    staging: { type: "bool", default: false },
    /** Absolute path or "" (challenges are answered from memory). */
    challenge_dir: { type: "string", default: "", path: true },
    /** Default: Let's Encrypt production, or staging when `staging`. */
    directory_url: {
      type: "string",
      default: (self) => (self.staging ? LETS_ENCRYPT_STAGING : LETS_ENCRYPT),
      check: (
        v,
      ) => (URL.canParse(v) && /^https?:/.test(v)
        ? undefined
        : `Cannot use directory_url "${v}": expected an http(s) URL`),
    },
    /** Absolute path (default `<configdir>/certs`). */
    storage_dir: { type: "string", default: "./certs", path: true },
    /** Days before expiry to renew. */
    renew_before_days: { type: "int", default: 30, min: 1 },
  }),
});

/** One `[[sites]]` entry. */
export const SITE = table({
  name: { type: "string", required: true, check: notEmpty },
  /** Lower-cased. */
  hostname: { type: "string", default: "", lowerCase: true, check: hostnameCheck },
  /** Lower-cased; may contain "*.example.org" wildcards. */
  hostnames: { type: "string[]", default: [], lowerCase: true, each: hostnameCheck },
  port: { type: "int", required: true, min: 0, max: 65535 },
  bind: { type: "string", default: "0.0.0.0" },
  /** Absolute path, or "" when the site has none. */
  static_dir: { type: "string", default: "", path: true },
  index_file: {
    type: "string",
    default: "index.html",
    check: (
      v,
    ) => (v && !v.includes("/") ? undefined : `Cannot use index_file "${v}": expected a file name`),
  },
  /**
   * A file below `staticDir`, "/"-separated and relative to it even with a leading "/"
   * ("index.html", "app/index.html"), served with 200 for a GET/HEAD of a missing path that does
   * not look like a file; "" = off.
   */
  spa_fallback: { type: "string", default: "", check: spaFallbackCheck },
  default: { type: "bool", default: false },
  /** Bytes; defaults to server.maxBodySize. */
  max_body_size: {
    type: "size",
    default: (_self, ctx) => (ctx.root.server as { maxBodySize: number }).maxBodySize,
  },
  /** `[sites.headers]`: added to every response of this site. */
  headers: { type: "headers", default: {} },
  /** The edge-protection tables (README "Protecting a site"), each null unless written. */
  ...edgeTables(),
  /**
   * The port expects a PROXY protocol (v1 or v2) header from peers in trusted_proxies; every
   * site on the port agrees.
   */
  proxy_protocol: { type: "bool", default: false },
  compression: COMPRESSION,
  redirects: { type: "table[]", item: REDIRECT },
  /**
   * `[sites.error_pages]`: key a status ("404", 400-599) or a class ("4xx", "5xx"); the loader
   * reads each file (`error_page_files.ts`).
   */
  error_pages: { type: "string-map", default: {}, key: errorPageKey, path: true },
  proxy: PROXY,
  ssl: SSL,
});
