/**
 * `[sites.error_pages]` at request time: the HTML page (read when the config was loaded) for a
 * response bws makes itself (404, 403, 429, 502, 503, 504 …), when the client accepts HTML.
 * The status stays; upstream responses are never replaced (the caller only asks for its own).
 *
 * "Accepts HTML" means the Accept header names `text/html` or `text/*` with a weight above 0,
 * as browsers do. `*\/*` alone (curl's and fetch's default) or no Accept header keeps the plain
 * text answer: scripts get a body they can log, browsers get the page.
 *
 * @module
 */

import type { ErrorPage } from "../config/types.ts";
import type { HttpResponse } from "../http1/types.ts";

/** The Content-Type of every error page. */
export const ERROR_PAGE_CONTENT_TYPE = "text/html; charset=utf-8";

/** One site's error pages, by status and by class. */
export class ErrorPages {
  readonly #byStatus = new Map<number, Uint8Array>();
  readonly #byClass = new Map<number, Uint8Array>();

  constructor(pages: Readonly<Record<string, ErrorPage>>) {
    for (const [key, page] of Object.entries(pages)) {
      if (key.endsWith("xx")) this.#byClass.set(Number(key[0]), page.body);
      else this.#byStatus.set(Number(key), page.body);
    }
  }

  /** Whether the site has any error page. */
  get size(): number {
    return this.#byStatus.size + this.#byClass.size;
  }

  /** The page for `status` (its own, else its class's) when `accept` takes HTML; else null. */
  pageFor(status: number, accept: string | null): Uint8Array | null {
    if (this.size === 0) return null;
    const page = this.#byStatus.get(status) ?? this.#byClass.get(Math.floor(status / 100));
    if (page === undefined || !acceptsHtml(accept)) return null;
    return page;
  }

  /**
   * `res` (one of bws's own answers) with the page as its body and an HTML Content-Type, or
   * `res` itself when there is no page for it or the client does not take HTML.
   */
  apply(res: HttpResponse, accept: string | null): HttpResponse {
    const page = this.pageFor(res.status, accept);
    if (page === null) return res;
    const headers: (readonly [string, string])[] = [];
    for (const field of res.headers) {
      if (field[0].toLowerCase() !== "content-type") headers.push(field);
    }
    headers.push(["content-type", ERROR_PAGE_CONTENT_TYPE]);
    return { ...res, headers, body: page, length: null };
  }
}

/** Whether an Accept value names text/html (or text/*) with a weight above 0. */
export function acceptsHtml(accept: string | null): boolean {
  if (accept === null) return false;
  let html: number | null = null;
  let text: number | null = null;
  for (const element of accept.split(",")) {
    const parts = element.split(";");
    const range = parts[0].trim().toLowerCase();
    if (range !== "text/html" && range !== "text/*") continue;
    let q = 1;
    for (const p of parts.slice(1)) {
      const [k, v] = p.split("=").map((s) => s.trim());
      if (k.toLowerCase() === "q") q = Number(v);
    }
    if (!(q >= 0 && q <= 1)) q = 0; // a malformed weight does not accept
    if (range === "text/html") html = Math.max(html ?? 0, q);
    else text = Math.max(text ?? 0, q);
  }
  return (html ?? text ?? 0) > 0;
}
