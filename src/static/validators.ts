/**
 * Cache validators (ETag, Last-Modified) and the conditional-request rules built on them:
 * If-None-Match, If-Modified-Since and If-Range.
 *
 * @module
 */

/** Read access to request header fields: bws's `Fields` and fetch `Headers` both fit. */
export interface FieldReader {
  /** The field's value (repeated fields joined with ", "), or null when absent. */
  get(name: string): string | null;
}

/** What identifies one version of a file. */
export interface Validators {
  /** Weak entity tag: `W/"<size hex>-<mtime ms hex>"`. */
  readonly etag: string;
  /** HTTP-date of the modification time, or null when the platform gives none. */
  readonly lastModified: string | null;
  /** Modification time in whole seconds since the epoch (HTTP-date precision), or null. */
  readonly mtimeSeconds: number | null;
}

/** Validators built lately, by modification time (a file's are the same on every request, and
 * building its HTTP-date and tag cost ~1 µs of a static request). */
const recent = new Map<number, { size: number; hasTime: boolean; v: Validators }>();
const MAX_RECENT = 4096;

/** Validators for a file of `size` bytes last modified at `mtime`. */
export function validatorsFor(size: number, mtime: Date | null): Validators {
  const ms = mtime?.getTime() ?? 0;
  const hit = recent.get(ms);
  const hasTime = mtime !== null;
  if (hit !== undefined && hit.size === size && hit.hasTime === hasTime) return hit.v;
  const v: Validators = {
    etag: `W/"${size.toString(16)}-${ms.toString(16)}"`,
    lastModified: mtime ? mtime.toUTCString() : null,
    mtimeSeconds: mtime ? Math.floor(ms / 1000) : null,
  };
  if (recent.size >= MAX_RECENT) recent.clear();
  recent.set(ms, { size, hasTime, v });
  return v;
}

/** The opaque part of an entity tag, without any `W/` prefix (weak comparison). */
function opaque(tag: string): string {
  return tag.startsWith("W/") ? tag.slice(2) : tag;
}

/** Parses an HTTP-date header into whole seconds since the epoch, or null if invalid. */
function parseHttpDateSeconds(value: string): number | null {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

/**
 * Whether a GET/HEAD with these request headers may be answered 304 Not Modified.
 * If-None-Match (a list or `*`, compared weakly) takes precedence; If-Modified-Since is only
 * consulted when If-None-Match is absent.
 */
export function isNotModified(headers: FieldReader, v: Validators): boolean {
  const inm = headers.get("if-none-match");
  if (inm !== null) {
    const mine = opaque(v.etag);
    for (const part of inm.split(",")) {
      const tag = part.trim();
      if (tag === "*" || (tag !== "" && opaque(tag) === mine)) return true;
    }
    return false;
  }
  const ims = headers.get("if-modified-since");
  if (ims === null || v.mtimeSeconds === null) return false;
  const since = parseHttpDateSeconds(ims);
  return since !== null && v.mtimeSeconds <= since;
}

/**
 * Whether an `If-Range` header (if any) allows a Range request to be honoured: absent, or an
 * entity tag equal to ours, or an HTTP-date equal to our Last-Modified.
 */
export function ifRangeAllows(headers: FieldReader, v: Validators): boolean {
  const value = headers.get("if-range");
  if (value === null) return true;
  const trimmed = value.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith("W/")) return trimmed === v.etag;
  if (v.mtimeSeconds === null) return false;
  return parseHttpDateSeconds(trimmed) === v.mtimeSeconds;
}
