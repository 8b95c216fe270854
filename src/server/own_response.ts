/**
 * The last touch on the answers bws makes itself for a site (static files, redirects, 404s,
 * refusals, proxy failures), never on an upstream's: the site's error page for an error status
 * when the client takes HTML, then the site's `[sites.headers]`.
 *
 * This is the one place error pages apply, so an upstream's 404 or 502 always reaches the
 * client as the upstream sent it.
 *
 * @module
 */

import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import type { SitePlan } from "../plan/plan_types.ts";

/** `res` with the site's `[sites.headers]` set (replacing fields of the same name). */
export function withSiteHeaders(res: HttpResponse, site: SitePlan): HttpResponse {
  const add = site.siteHeaders;
  if (add.length === 0) return res;
  const headers: (readonly [string, string])[] = [];
  for (const h of res.headers) {
    const lower = h[0].toLowerCase();
    if (!add.some(([n]) => n === lower)) headers.push(h);
  }
  for (const h of add) headers.push(h);
  return { ...res, headers };
}

/**
 * `res`, one of bws's own answers to `req` on `site`: with the site's error page for its status
 * (when it is 400 or more, the site has a page for it and the client takes HTML), then the
 * site's headers.
 */
export function ownResponse(res: HttpResponse, site: SitePlan, req: HttpRequest): HttpResponse {
  const pages = site.errorPages;
  if (pages !== null && res.status >= 400) res = pages.apply(res, req.headers.get("accept"));
  return withSiteHeaders(res, site);
}
