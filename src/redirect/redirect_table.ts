/**
 * `[[sites.redirects]]` compiled once per config: the longest matching `path` (matched like a
 * route path) answers with its status and a Location, before routes and static
 * files.
 *
 * With `keep_path`, the rest of the path after `path` (nothing for the bare path itself) is
 * appended to `to`, and the request's query to `to`'s own query (joined with "&"), before any
 * `#fragment` of `to`. The request's path is appended as received (still percent-encoded). A
 * Location that is a path never starts with "//" or "/\" (which a browser reads as another
 * host), whatever the request path holds.
 *
 * @module
 */

import type { RedirectConfig } from "../config/types.ts";
import type { HttpResponse } from "../http1/types.ts";
import { RouteTable } from "../proxy/route_table.ts";

const EMPTY = new Uint8Array(0);

/** `to` taken apart once: what the rest of the path and the query go between. */
interface Target {
  readonly config: RedirectConfig;
  /** `to` up to its "?" or "#". */
  readonly prefix: string;
  /** `to`'s query without "?", or "". */
  readonly query: string;
  /** `to`'s "#fragment", or "". */
  readonly fragment: string;
}

/** One site's redirects. */
export class RedirectTable {
  readonly #table: RouteTable<Target>;

  constructor(redirects: readonly RedirectConfig[]) {
    this.#table = new RouteTable(redirects.map((r) => ({ path: r.path, value: parseTarget(r) })));
  }

  /** Number of redirects. */
  get size(): number {
    return this.#table.size;
  }

  /**
   * The redirect for a request, or null when no redirect path matches. `path` is the raw path,
   * `query` is "" or "?…" (as in `HttpRequest`).
   */
  match(path: string, query: string): HttpResponse | null {
    if (this.#table.size === 0) return null;
    const entry = this.#table.match(path);
    if (entry === null) return null;
    const target = entry.value;
    return {
      status: target.config.status,
      headers: [["location", locationFor(target, path.slice(entry.base.length), query)]],
      body: EMPTY,
    };
  }
}

function parseTarget(config: RedirectConfig): Target {
  const to = config.to;
  const hash = to.indexOf("#");
  const beforeHash = hash < 0 ? to : to.slice(0, hash);
  const q = beforeHash.indexOf("?");
  return {
    config,
    prefix: q < 0 ? beforeHash : beforeHash.slice(0, q),
    query: q < 0 ? "" : beforeHash.slice(q + 1),
    fragment: hash < 0 ? "" : to.slice(hash),
  };
}

/** The Location for a request whose path continues with `rest` ("" or "/…") after the match. */
function locationFor(target: Target, rest: string, query: string): string {
  if (!target.config.keepPath) return target.config.to;
  let location = target.prefix;
  if (rest !== "") {
    const tail = rest.replace(/^[/\\]+/, "");
    location += location.endsWith("/") ? tail : "/" + tail;
  }
  if (location.startsWith("/")) location = "/" + location.replace(/^[/\\]+/, "");
  const extra = query.startsWith("?") ? query.slice(1) : query;
  const q = target.query && extra ? `${target.query}&${extra}` : target.query || extra;
  return location + (q ? "?" + q : "") + target.fragment;
}
