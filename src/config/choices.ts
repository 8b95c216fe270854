/**
 * The closed sets of values some config keys take, as lists (the validator and the messages use
 * them) and as the types derived from them.
 *
 * @module
 */

/** Valid `logging.level` values. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];

/** Valid `[sites.proxy.load_balancing] method` values. */
export const LB_METHODS = [
  "round_robin",
  "weighted",
  "least_connections",
  "ip_hash",
  "random_two",
  "first",
] as const;
export type LbMethod = typeof LB_METHODS[number];

/** The content codings bws compresses with, as written in Accept-Encoding, in the default
 * server preference. */
export const COMPRESSION_ALGORITHMS = ["zstd", "br", "gzip"] as const;
export type CompressionAlgorithm = typeof COMPRESSION_ALGORITHMS[number];

/** The statuses a redirect may answer with. */
export const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;
export type RedirectStatus = typeof REDIRECT_STATUSES[number];
