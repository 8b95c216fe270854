/**
 * Parsing of a single-range `Range: bytes=…` request header.
 *
 * @module
 */

/** The outcome of reading a Range header against a file of known size. */
export type ByteRange =
  /** No usable range (absent, malformed, not bytes, or several ranges): send the whole file. */
  | { readonly kind: "full" }
  /** Send bytes `start` … `end` inclusive. */
  | { readonly kind: "partial"; readonly start: number; readonly end: number }
  /** A well-formed range that lies outside the file: 416. */
  | { readonly kind: "unsatisfiable" };

const FULL: ByteRange = { kind: "full" };
const UNSATISFIABLE: ByteRange = { kind: "unsatisfiable" };
const SPEC = /^(\d*)-(\d*)$/;

/**
 * Reads `Range` for a file of `size` bytes. Supports `a-b`, `a-` and `-n`; an end past the file
 * is clamped. Multiple ranges are answered with the whole file, which is always allowed.
 */
export function parseByteRange(header: string | null, size: number): ByteRange {
  if (header === null) return FULL;
  const eq = header.indexOf("=");
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== "bytes") return FULL;
  const spec = header.slice(eq + 1).trim();
  if (spec.includes(",")) return FULL;
  const m = SPEC.exec(spec);
  if (!m) return FULL;
  const [, first, last] = m;
  if (first === "") {
    if (last === "") return FULL;
    const n = Number(last);
    if (n === 0 || size === 0) return UNSATISFIABLE;
    return { kind: "partial", start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (last !== "" && Number(last) < start) return FULL; // syntactically invalid: ignore it
  if (start >= size) return UNSATISFIABLE;
  const end = last === "" ? size - 1 : Number(last);
  return { kind: "partial", start, end: Math.min(end, size - 1) };
}
