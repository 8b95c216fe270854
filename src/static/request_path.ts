/**
 * Turns a raw, percent-encoded request path into safe path segments below a static root.
 *
 * @module
 */

/** The outcome of decoding a request path. */
export type RequestPath =
  | {
    readonly kind: "ok";
    /** Decoded, normalised segments; none is empty, ".", ".." or contains "/" or "\\". */
    readonly segments: readonly string[];
    /** The raw path ended with "/" (a directory was asked for). */
    readonly trailingSlash: boolean;
  }
  | { readonly kind: "bad_request" }
  | { readonly kind: "not_found" };

const BAD_REQUEST: RequestPath = { kind: "bad_request" };
const NOT_FOUND: RequestPath = { kind: "not_found" };

/**
 * Splits `pathname` on literal "/" only, then percent-decodes each segment, so an encoded
 * slash or backslash can never act as a separator. Invalid encodings and NUL bytes are a bad
 * request; a path that climbs above the root, or names a dotfile or dot-directory, is not found.
 */
export function decodeRequestPath(pathname: string): RequestPath {
  if (!pathname.startsWith("/")) return NOT_FOUND;
  const raw = pathname.split("/");
  const segments: string[] = [];
  for (let i = 1; i < raw.length; i++) {
    let seg = raw[i];
    if (seg.includes("%")) {
      try {
        seg = decodeURIComponent(seg);
      } catch {
        return BAD_REQUEST;
      }
    }
    if (seg.includes("\0")) return BAD_REQUEST;
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (segments.length === 0) return NOT_FOUND;
      segments.pop();
      continue;
    }
    if (seg.startsWith(".") || seg.includes("/") || seg.includes("\\")) return NOT_FOUND;
    segments.push(seg);
  }
  return { kind: "ok", segments, trailingSlash: pathname.endsWith("/") };
}
