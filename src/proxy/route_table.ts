/**
 * Path routing for one site (SPEC section 3), compiled once per config.
 *
 * A route path P matches request path R when R == P, or P ends with "/" and R starts with P, or
 * R starts with P + "/". `/ws` matches `/ws` and `/ws/x` but not `/wsx`; `/api/` also matches
 * `/api`. The longest matching P wins.
 *
 * @module
 */

export interface RouteEntry<T> {
  /** The configured path, as written. */
  readonly path: string;
  /** The path without its trailing "/" ("" for "/"): what strip_prefix removes. */
  readonly base: string;
  readonly value: T;
}

/** A compiled, immutable route table: entries sorted longest path first. */
export class RouteTable<T> {
  readonly #entries: readonly RouteEntry<T>[];

  constructor(routes: readonly { path: string; value: T }[]) {
    const entries = routes.map(({ path, value }) => ({
      path,
      base: path.endsWith("/") ? path.slice(0, -1) : path,
      value,
    }));
    // Longest base first; ties (e.g. "/api" and "/api/") keep file order.
    entries.sort((a, b) => b.base.length - a.base.length);
    this.#entries = Object.freeze(entries);
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Returns the longest route matching `pathname` (raw, undecoded path), or null. */
  match(pathname: string): RouteEntry<T> | null {
    for (const e of this.#entries) {
      const base = e.base;
      if (!pathname.startsWith(base)) continue;
      // Exact, or the next character is a segment boundary. "/" (base "") matches everything.
      if (pathname.length === base.length || pathname.charCodeAt(base.length) === 47 /* / */) {
        return e;
      }
    }
    return null;
  }
}

/**
 * Applies strip_prefix: removes the route's base from `pathname`; an empty result becomes "/".
 */
export function stripPrefix(pathname: string, base: string): string {
  const rest = pathname.slice(base.length);
  return rest === "" ? "/" : rest;
}
