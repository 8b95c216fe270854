/**
 * Lower-case header names for the fields most requests and responses carry, recognised in the
 * decoded head without slicing or lower-casing (clients and upstreams spell them "Host",
 * "Content-Type"…). A recognised name is one interned string: no per-request allocation, no
 * hashing of a fresh string in a lookup, and `switch` comparisons against it are cheap.
 *
 * @module
 */

const NAMES = [
  "accept",
  "accept-encoding",
  "accept-language",
  "accept-ranges",
  "age",
  "authorization",
  "cache-control",
  "connection",
  "content-encoding",
  "content-length",
  "content-type",
  "cookie",
  "date",
  "etag",
  "expect",
  "expires",
  "host",
  "if-modified-since",
  "if-none-match",
  "keep-alive",
  "last-modified",
  "location",
  "origin",
  "referer",
  "server",
  "set-cookie",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "vary",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-request-id",
];

/** Known names by length (every name is ASCII: one UTF-16 unit per byte). */
const BY_LENGTH: string[][] = [];
for (const name of NAMES) (BY_LENGTH[name.length] ??= []).push(name);

/**
 * The known lower-case name equal to `s[start, end)` ignoring ASCII case, or null. `s[start,
 * end)` must be a valid token (the parsers check that first).
 */
export function knownName(s: string, start: number, end: number): string | null {
  const candidates = BY_LENGTH[end - start];
  if (candidates === undefined) return null;
  next: for (let k = 0; k < candidates.length; k++) {
    const name = candidates[k];
    for (let i = 0; i < name.length; i++) {
      // Token characters: OR-ing 0x20 lower-cases letters and keeps "-" and digits apart.
      if ((s.charCodeAt(start + i) | 0x20) !== name.charCodeAt(i)) continue next;
    }
    return name;
  }
  return null;
}
