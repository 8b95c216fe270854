/**
 * The single-page-app fallback of a static site (`spa_fallback`, docs/behaviour.md "SPA fallback"):
 * a GET or HEAD for a path that is not a file and does not look like one gets the fallback file
 * with 200, so the app's client-side router can show `/app/settings`, while a missing asset
 * (`/app/missing.js`) still gets 404.
 *
 * "Looks like a file" means the last segment has an extension: a dot with something before and
 * after it (`main.js`, `a.min.css`; not `.env`, not `v1.`). A route whose last segment contains
 * a dot (`/users/jane.doe`) therefore gets 404, not the app.
 *
 * @module
 */

/** Whether the raw (percent-encoded) path's last segment has an extension; `%2e` is a dot. */
export function looksLikeFile(path: string): boolean {
  const segment = path.slice(path.lastIndexOf("/") + 1).replace(/%2e/gi, ".");
  const dot = segment.lastIndexOf(".");
  return dot > 0 && dot < segment.length - 1;
}

/**
 * Whether a request the static files could not answer (not found) gets the fallback file:
 * only GET and HEAD, only paths that do not look like a file.
 */
export function spaFallbackApplies(method: string, path: string): boolean {
  return (method === "GET" || method === "HEAD") && !looksLikeFile(path);
}

/**
 * The request path under which the static handler finds the fallback file ("index.html" →
 * "/index.html"; "/app/index.html" stays).
 */
export function spaFallbackPath(spaFallback: string): string {
  return "/" + spaFallback.replace(/^\/+/, "");
}
