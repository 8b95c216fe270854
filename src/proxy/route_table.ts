/**
 * Path routing for one site (docs/behaviour.md "Routing and sites"), compiled once per config.
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

/**
 * Whether the raw `pathname` holds a "." or ".." segment, counting the forms an upstream may
 * decode or split on: `%2e` for a dot, `\`, `%2f` and `%5c` as separators, and `;` parameters
 * after the name (`..;`). Such a path could climb out of a route's prefix or an upstream's base
 * path once the upstream normalises it, so a proxy route refuses it. No allocation.
 */
export function hasDotSegment(pathname: string): boolean {
  if (pathname.indexOf(".") < 0 && pathname.indexOf("%") < 0) return false;
  const n = pathname.length;
  // Dots in the current segment so far; -1 once it holds anything else.
  let dots = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? pathname.charCodeAt(i) : 47;
    let separator = c === 47 /* / */ || c === 92 /* \ */;
    if (c === 37 /* % */ && i + 2 < n) {
      const hi = pathname.charCodeAt(i + 1);
      const lo = pathname.charCodeAt(i + 2) | 0x20;
      if (hi === 50 && lo === 101 /* %2e */) {
        if (dots >= 0) dots++;
        i += 2;
        continue;
      }
      if ((hi === 50 && lo === 102) /* %2f */ || (hi === 53 && lo === 99) /* %5c */) {
        separator = true;
        i += 2;
      }
    }
    if (separator || c === 59 /* ; */) {
      if (dots === 1 || dots === 2) return true;
      dots = separator ? 0 : -1;
    } else if (c === 46 /* . */) {
      if (dots >= 0) dots++;
    } else {
      dots = -1;
    }
  }
  return false;
}
