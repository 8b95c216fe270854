/**
 * The checks of single config values that the schema (`schema.ts`) refers to: each returns an
 * error message, or undefined when the value is fine.
 *
 * @module
 */

import { validateCidr } from "../net/cidr.ts";
import { errorText } from "../log/error_text.ts";
import { COMPRESSION_ALGORITHMS, REDIRECT_STATUSES } from "./choices.ts";
import type { Check } from "./schema_nodes.ts";
import { parseExpectStatus } from "./units.ts";

export const startsWithSlash: Check<string> = (v) =>
  v.startsWith("/") ? undefined : `Cannot use path "${v}": must start with "/"`;

const HOSTNAME =
  /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/;
export const hostnameCheck: Check<string> = (v) =>
  v === "" || HOSTNAME.test(v.toLowerCase()) || isIpLiteral(v)
    ? undefined
    : `Cannot use hostname "${v}": expected a DNS name (optionally starting with "*."), without port or scheme`;

function isIpLiteral(v: string): boolean {
  return /^\[?[0-9a-fA-F:.]+\]?$/.test(v) && v.includes(":");
}

export const statusCheck: Check<string> = (v) => {
  const r = parseExpectStatus(v);
  return r.ok ? undefined : r.message;
};

export const cidrCheck: Check<string> = (v) => {
  try {
    validateCidr(v);
    return undefined;
  } catch (e) {
    return errorText(e);
  }
};

const MEDIA_TOKEN = "[a-z0-9!#$&^_.+-]+";
const MEDIA_RANGE = new RegExp(`^(\\*/\\*|${MEDIA_TOKEN}/(${MEDIA_TOKEN}|\\*))$`);
export const mediaRangeCheck: Check<string> = (v) =>
  MEDIA_RANGE.test(v) ? undefined : `Cannot use type "${v}": expected a media type like ` +
    '"application/json", or a range like "text/*", without parameters';

export const algorithmCheck: Check<string> = (v) =>
  (COMPRESSION_ALGORITHMS as readonly string[]).includes(v)
    ? undefined
    : `Cannot use algorithm "${v}": expected one of ${COMPRESSION_ALGORITHMS.join(", ")}`;

export const distinct: Check<readonly string[]> = (list) => {
  const dup = list.find((v, i) => list.indexOf(v) !== i);
  return dup === undefined ? undefined : `"${dup}" is listed twice`;
};

/** Where a redirect may point: an absolute http(s) URL, or a path on this site. */
export const redirectTargetCheck: Check<string> = (v) => {
  const bad = (detail: string) => `Cannot redirect to "${v}": ${detail}`;
  // Location is sent as it is: no spaces, controls or non-ASCII (percent-encode them).
  if (!/^[\x21-\x7e]+$/.test(v)) {
    return bad("contains spaces, control or non-ASCII characters (percent-encode them)");
  }
  if (v.startsWith("/")) {
    return v[1] === "/" || v[1] === "\\"
      ? bad('a path must not start with "//" (a browser reads it as another host)')
      : undefined;
  }
  return URL.canParse(v) && /^https?:\/\/[^/]/i.test(v)
    ? undefined
    : bad('expected an absolute http(s) URL or a path starting with "/"');
};

/** A file below static_dir: relative, "/"-separated, no "." / ".." or empty segments. */
export const spaFallbackCheck: Check<string> = (v) => {
  if (v === "") return undefined;
  const segments = v.replace(/^\//, "").split("/");
  return segments.every((s) => s !== "" && s !== "." && s !== ".." && !s.includes("\\"))
    ? undefined
    : `Cannot use spa_fallback "${v}": expected a file inside static_dir, like "index.html"`;
};

/** `[sites.error_pages]` keys: a status 400-599, or "4xx" / "5xx". */
export const errorPageKey: Check<string> = (k) =>
  /^[45](\d\d|xx)$/.test(k)
    ? undefined
    : `Cannot use error page key "${k}": expected a status 400-599, "4xx" or "5xx"`;

/** A redirect's `status`. */
export const redirectStatusCheck: Check<number> = (v) =>
  (REDIRECT_STATUSES as readonly number[]).includes(v)
    ? undefined
    : `Cannot use status ${v}: expected one of ${REDIRECT_STATUSES.join(", ")}`;

export const notEmpty: Check<string> = (v) => (v ? undefined : "must not be empty");
