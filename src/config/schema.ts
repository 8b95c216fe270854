/**
 * The config file's keys as data: one entry per key with its type, default and checks. The
 * validator (`validate.ts`) walks this, so adding a key means adding one line here, and its
 * field to the interface in `types.ts` (with its documentation): `schema_types_test.ts` fails
 * `deno check` until the two agree.
 *
 * Property names are the camelCase form of the key unless `prop` says otherwise.
 *
 * @module
 */

import { LOG_LEVELS } from "./choices.ts";
import { redisUrlProblem } from "../cluster/redis_url.ts";
import { cidrCheck } from "./schema_checks.ts";
import { optionalTable, table } from "./schema_nodes.ts";
import { SITE } from "./site_schema.ts";

/** The whole file. */
export const CONFIG_SCHEMA = table({
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
  cluster: optionalTable({
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
  }),
  sites: { type: "table[]", item: SITE },
});
