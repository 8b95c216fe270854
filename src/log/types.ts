/**
 * The logging contract used by every other module. Implementations live beside this file.
 *
 * @module
 */

import type { LogLevel } from "../config/types.ts";

export type { LogLevel };

/** Structured extra fields of a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/** One access-log record: one per request (or WebSocket session) handled by a site. */
export interface AccessEntry {
  /** Epoch milliseconds when the request arrived. */
  readonly time: number;
  readonly site: string;
  /** Client address as resolved through trusted_proxies. */
  readonly client: string;
  readonly method: string;
  /** Path and query as received. */
  readonly path: string;
  readonly status: number;
  /** Response body bytes sent (Content-Length when known). */
  readonly bytesOut: number;
  readonly durationMs: number;
  /** Upstream URL that served it, or "" (static, error before choosing). */
  readonly upstream: string;
  readonly requestId: string;
  /** Matched route path, or "" for static / no route. */
  readonly route: string;
  /** Detail for errors (never shown to clients). */
  readonly error?: string;
  /** The edge rule that refused the request: access, rate_limit, basic_auth … */
  readonly refused?: string;
}

export interface Logger {
  enabled(level: LogLevel): boolean;
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Writes an access-log line when access logging is on (no-op otherwise). */
  access(entry: AccessEntry): void;
  /**
   * Writes access lines already formatted in this logger's `[logging]` format (each ends in a
   * newline), when access logging is on: worker threads format their own and relay the text.
   * Loggers built from the config have it; an embedding program's own logger gets entries.
   */
  accessLines?(text: string): void;
  /**
   * Re-opens the log file (after external rotation, SIGUSR1); no-op for stdout/stderr. Never
   * rejects: when the path cannot be opened, the old handle stays in use and the error is logged.
   */
  reopen(): Promise<void>;
  /** Flushes and closes. */
  close(): Promise<void>;
}
