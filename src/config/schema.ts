/**
 * The config file's keys as data: one entry per key with its type, default and checks. The
 * validator (`validate.ts`) walks this, and the config's TypeScript types (`types.ts`) are
 * derived from it, so adding a key means adding one line here (and its use).
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
    /** Shown in logs and status output. */
    name: { type: "string", default: "BWS Proxy Server" },
    /** Seconds to drain on shutdown and reload. */
    grace_period: { type: "duration", default: 10 },
    /** CIDRs (or single addresses) whose X-Forwarded-For / Forwarded we extend. */
    trusted_proxies: { type: "string[]", default: [], each: cidrCheck },
    /** Request bodies above this many bytes get 413. */
    max_body_size: { type: "size", default: 100_000_000 },
    /**
     * Worker threads serving requests, each accepting on every listener (SO_REUSEPORT);
     * `"auto"` = one per CPU core; 1 = one thread, no workers.
     */
    workers: { type: "count", default: 1, min: 1, max: 1024, keywords: ["auto"] },
    /** How long a client may take, in seconds (docs/behaviour.md "Client connections"); 0
     * disables one. */
    timeouts: table({
      /** To receive a complete request head (from accept, or from a request's first byte on a
       * kept-alive connection). */
      header: { type: "duration", default: 10 },
      /** A kept-alive connection with no byte of a next request is closed after this. */
      keep_alive: { type: "duration", default: 75 },
      /** The longest gap between bytes of a request body. */
      body: { type: "duration", default: 30 },
      /** The longest stall writing to a client that does not read. */
      send: { type: "duration", default: 60 },
      /** To complete a TLS handshake. */
      tls_handshake: { type: "duration", default: 10 },
    }),
    /** How much a client may hold (docs/behaviour.md "Client connections"). */
    limits: table({
      /** Client connections in all; past it bws stops accepting. */
      max_connections: { type: "int", default: 20000, min: 1 },
      /** Per client address; 0 = off. */
      max_connections_per_ip: { type: "int", default: 0, min: 0 },
      /** Request line + headers in bytes; 431 past it. */
      max_header_size: {
        type: "size",
        default: 32 * 1024,
        check: (v) =>
          v >= 1024 && v <= 1024 * 1024
            ? undefined
            : `Cannot use max_header_size ${v}: must be between 1KiB and 1MiB`,
      },
      /** Header lines; 431 past it. */
      max_headers: { type: "int", default: 100, min: 1, max: 10_000 },
    }),
  }),
  management: table({
    enabled: { type: "bool", default: false },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "int", default: 7654, min: 0, max: 65535 },
    /** When non-empty every request needs `X-API-Key` with this value. */
    api_key: { type: "string", default: "" },
  }),
  logging: table({
    level: { type: "string", default: "info", oneOf: LOG_LEVELS },
    format: { type: "string", default: "text", oneOf: ["text", "json"] },
    access_log: { type: "bool", default: true },
    output: { type: "string", default: "stdout", oneOf: ["stdout", "stderr", "file"] },
    /** Absolute path; required (non-empty) when output = "file". */
    file_path: { type: "string", default: "", path: true },
  }),
  /** Several bws instances sharing ACME state and rate limits through Redis; null when not
   * written: this instance keeps its state to itself. */
  cluster: optionalTable({
    /** `redis://[user][:password]@host[:port][/db]`, or `rediss://` for TLS. */
    redis_url: { type: "string", required: true, check: redisUrlProblem },
    /** Prepended to every Redis key bws uses. */
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
    /** This instance in the fleet list (`/api/status` `instances`); "" = the host name. */
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
