/**
 * Shared types of the management API and the metrics registry.
 *
 * @module
 */

import type { ReloadResult } from "../server/types.ts";

/** The live state of one upstream member, as the server reports it for `/metrics`. */
export interface UpstreamSnapshot {
  readonly site: string;
  /** Upstream group name. */
  readonly group: string;
  readonly url: string;
  /** Currently considered healthy (active and passive checks). */
  readonly live: boolean;
  /** Requests currently being proxied to it. */
  readonly inFlight: number;
  /** WebSocket sessions currently relayed to it. */
  readonly webSockets: number;
  /** Requests sent to it since start (survives reloads when the member is unchanged). */
  readonly requests: number;
  /** Failed attempts since start. */
  readonly fails: number;
}

/** The upstream client's keep-alive sockets to one origin, for `/metrics`. */
export interface PoolSnapshot {
  readonly origin: string;
  /** Waiting in the pool for the next request. */
  readonly idle: number;
  /** Carrying a request now. */
  readonly busy: number;
}

/** What the management API needs from the running server. */
export interface AdminRuntime {
  /** JSON body of `GET /api/status`. */
  status(): unknown;
  /** Body of `GET /metrics` (Prometheus text format 0.0.4). */
  metricsText(): string;
  /** `POST /api/config/reload`: re-read the config source, validate and swap it in. */
  reload(): Promise<ReloadResult>;
}
