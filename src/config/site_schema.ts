/**
 * The keys of one `[[sites]]` entry as schema data (see `schema.ts`); what each builds is
 * documented on its field in `types.ts`.
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
    add: { type: "headers", default: {} },
    remove: { type: "header-remove", default: [] },
  });

/** `[sites.compression]`. */
export const COMPRESSION = table({
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
});

/** One `[[sites.redirects]]`: answered before routes and static files. */
export const REDIRECT = table({
  path: { type: "string", required: true, check: startsWithSlash },
  to: { type: "string", required: true, check: redirectTargetCheck },
  status: { type: "int", default: 308, check: redirectStatusCheck },
  keep_path: { type: "bool", default: true },
});

/** `[sites.proxy]`. */
export const PROXY = table({
  enabled: { type: "bool", default: false },
  upstreams: {
    type: "table[]",
    item: table({
      name: { type: "string", required: true, check: notEmpty },
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
});

/** `[sites.ssl]`. */
export const SSL = table({
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
});

/** One `[[sites]]` entry. */
export const SITE = table({
  name: { type: "string", required: true, check: notEmpty },
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
  compression: COMPRESSION,
  redirects: { type: "table[]", item: REDIRECT },
  error_pages: { type: "string-map", default: {}, key: errorPageKey, path: true },
  proxy: PROXY,
  ssl: SSL,
});
