/**
 * Log level ordering. A level is enabled when its rank is at least the configured threshold.
 *
 * @module
 */

import type { LogLevel } from "../config/types.ts";

/** Rank of each level: trace < debug < info < warn < error. */
export const LEVEL_RANK: Readonly<Record<LogLevel, number>> = Object.freeze({
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  error: 4,
});

/** Upper-case names used by the text format, indexed by rank. */
export const LEVEL_TEXT: readonly string[] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

/** Lower-case names used by the JSON format, indexed by rank. */
export const LEVEL_JSON: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error"];
