/**
 * `[cluster] redis_url`: `redis://[user][:password]@host[:port][/db]`, or `rediss://` for TLS.
 * Parsed once here, for the config check and for the connection; the password never appears
 * in a message (see {@link maskRedisUrl}).
 *
 * @module
 */

import { errorText } from "../log/error_text.ts";

/** What a redis_url says. */
export interface RedisTarget {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  /** Database number selected after connecting. */
  readonly db: number;
  readonly username: string;
  readonly password: string;
}

/** The URL with its password replaced by "***", for messages and logs. */
export function maskRedisUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/i, "$1***@");
}

/** Parses a redis_url; throws "Cannot use redis_url ..." saying what is wrong. */
export function parseRedisUrl(url: string): RedisTarget {
  const bad = (detail: string) =>
    new Error(`Cannot use redis_url "${maskRedisUrl(url)}": ${detail}`);
  if (!URL.canParse(url)) throw bad("expected redis://host[:port][/db] or rediss://...");
  const u = new URL(url);
  const scheme = u.protocol.toLowerCase();
  if (scheme !== "redis:" && scheme !== "rediss:") {
    throw bad('the scheme must be "redis://" (or "rediss://" for TLS)');
  }
  if (u.hostname === "") throw bad("no host");
  if (u.search || u.hash) throw bad("query and fragment are not used: remove them");
  const path = u.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,5}$/.test(path)) {
    throw bad(`the path must be a database number like "/0", not "/${path}"`);
  }
  const db = path === "" ? 0 : Number(path);
  const port = u.port === "" ? 6379 : Number(u.port);
  return {
    tls: scheme === "rediss:",
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    db,
    username: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  };
}

/** The config check: an error message, or undefined when the URL is usable. */
export function redisUrlProblem(url: string): string | undefined {
  try {
    parseRedisUrl(url);
    return undefined;
  } catch (err) {
    return errorText(err);
  }
}
