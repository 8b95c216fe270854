/**
 * `bws check` with `[cluster]`: tries the Redis of `redis_url` once. An unreachable Redis is a
 * warning, not an error: bws starts without it and serves on local state until it answers.
 *
 * @module
 */

import { findPosition, scanKeyPositions } from "../config/positions.ts";
import type { Config, ConfigIssue } from "../config/types.ts";
import { connectRedis } from "./redis_link.ts";
import { parseRedisUrl } from "./redis_url.ts";
import { errorText } from "../log/error_text.ts";

/** The problem reaching Redis at `url` within `timeoutMs` (PING), or null when it answers. */
export async function probeRedis(url: string, timeoutMs = 2000): Promise<string | null> {
  const link = connectRedis(url, { connectTimeoutMs: timeoutMs, backgroundTimeoutMs: timeoutMs });
  let last = "";
  // The first failed attempt is the answer: no need to wait for the reconnections.
  const failed = new Promise<false>((resolve) =>
    link.onState((state, detail) => {
      if (detail) last = detail;
      if (state === "down") resolve(false);
    })
  );
  try {
    if (!(await Promise.race([link.waitUp(timeoutMs), failed]))) {
      return `Cannot reach Redis at "${link.label}": ${last || `no answer within ${timeoutMs} ms`}`;
    }
    await link.command(["PING"]);
    return null;
  } catch (err) {
    return `Cannot reach Redis at "${link.label}": ${errorText(err)}`;
  } finally {
    await link.close();
  }
}

/**
 * The warnings `bws check` prints for `[cluster]` (with the line of `redis_url`): Redis not
 * reachable, or not checked for want of network permission. Empty without `[cluster]`.
 */
export async function clusterWarnings(config: Config): Promise<ConfigIssue[]> {
  const cluster = config.cluster;
  if (!cluster) return [];
  const target = parseRedisUrl(cluster.redisUrl);
  let message: string | null;
  let allowed = false;
  try {
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    allowed =
      (await Deno.permissions.query({ name: "net", host: `${host}:${target.port}` })).state ===
        "granted";
  } catch { /* unknown: treated as not allowed */ }
  if (!allowed) {
    message = "Cannot check that Redis is reachable: no network permission (--allow-net)";
  } else {
    const problem = await probeRedis(cluster.redisUrl);
    message = problem &&
      `${problem} (bws starts anyway and shares nothing until Redis answers)`;
  }
  if (message === null) return [];
  let text = "";
  try {
    if (config.source) text = await Deno.readTextFile(config.source);
  } catch { /* positions are a nicety */ }
  const pos = findPosition(scanKeyPositions(text), "cluster.redis_url");
  return [{
    path: "cluster.redis_url",
    message,
    ...(pos ? { line: pos.line, column: pos.column } : {}),
  }];
}
