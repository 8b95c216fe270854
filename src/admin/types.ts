/**
 * Shared types of the management API and the metrics registry.
 *
 * @module
 */

import type { MemberSnapshot } from "../balancer/group.ts";
import type { ConfigIssue } from "../config/types.ts";
import type { ReloadResult } from "../server/types.ts";
import type { StatsDocument } from "./request_series.ts";

export type { StatsDocument } from "./request_series.ts";

/** One upstream member's row of `/metrics`: the fields of its {@linkcode MemberSnapshot} that
 * are reported, and where it belongs. */
export interface UpstreamSnapshot
  extends Pick<MemberSnapshot, "url" | "live" | "inFlight" | "webSockets" | "requests" | "fails"> {
  readonly site: string;
  /** Upstream group name. */
  readonly group: string;
}

/** The upstream client's keep-alive sockets to one origin, for `/metrics`. */
export interface PoolSnapshot {
  readonly origin: string;
  /** Waiting in the pool for the next request. */
  readonly idle: number;
  /** Carrying a request now. */
  readonly busy: number;
}

/** The outcome of the last reload attempt (SIGHUP, `--watch`, the API or `reload()`). */
export interface ReloadRecord {
  /** When it finished, ISO 8601. */
  readonly time: string;
  readonly ok: boolean;
  /** The generation running afterwards (the new one on success, the kept one on failure). */
  readonly generation: number;
  /** Empty on success. */
  readonly errors: readonly {
    readonly path: string;
    readonly message: string;
    readonly line: number | null;
    readonly column: number | null;
  }[];
}

/** A certificate a TLS site serves, for `/api/status` and the dashboard. */
export interface CertificateInfo {
  readonly site: string;
  /** `file`: `cert_file`/`key_file`; `acme`: obtained with `auto_cert`. */
  readonly source: "file" | "acme";
  /** The PEM file, for `source = "file"`. */
  readonly file: string | null;
  /** Names the certificate is valid for (empty while an ACME order is pending). */
  readonly names: readonly string[];
  /** Expiry, ISO 8601; null while an ACME certificate has not been obtained yet. */
  readonly notAfter: string | null;
  /** Whole days until `notAfter` (negative once expired); null with it. */
  readonly daysLeft: number | null;
}

/** What the management API needs from the running server. */
export interface AdminRuntime {
  /** JSON body of `GET /api/status` (a promise when worker threads are asked). */
  status(): unknown;
  /** Body of `GET /metrics` (Prometheus text format 0.0.4). */
  metricsText(): string | Promise<string>;
  /** `POST /api/config/reload`: re-read the config source, validate and swap it in. */
  reload(): Promise<ReloadResult>;
  /**
   * `GET /api/stats`: requests per second, responses by status class and latency over the last
   * `windowSeconds` in points of `stepSeconds` (already validated). Without it the series is
   * empty.
   */
  stats?(windowSeconds: number, stepSeconds: number): StatsDocument;
  /** Certificates served by TLS sites, added to `/api/status` as `certificates`. */
  certificates?(): readonly CertificateInfo[];
  /** The last reload attempt, added to `/api/status` as `lastReload` (null: none yet). */
  lastReload?(): ReloadRecord | null;
}

/** Converts config issues to the JSON shape the API answers with. */
export function issuesJson(errors: readonly ConfigIssue[]): ReloadRecord["errors"] {
  return errors.map((e) => ({
    path: e.path,
    message: e.message,
    line: e.line ?? null,
    column: e.column ?? null,
  }));
}
