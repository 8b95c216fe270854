/**
 * Test helpers for bytes: joining, comparing, hashing, and latin1 text (one char per byte, so
 * any byte sequence round-trips through a string).
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * The first index where `a` and `b` differ (or the shorter length), or -1 when equal. Compares
 * without `expect(...).toEqual`, whose element-by-element deep equality costs ~80 MB and half a
 * second per 300 KB array in the shared test process.
 */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** The parts joined into one array. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/** Reads a whole body stream (null → empty). */
export async function readAll(body: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  for await (const c of body) parts.push(c);
  return concat(parts);
}

/** Hex SHA-256 of `data`. */
export function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Bytes to a string with one char per byte (ISO-8859-1; TextDecoder's "latin1" is cp1252). */
export function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** A string of chars below 256 to one byte each (the inverse of {@link latin1}). */
export function fromLatin1(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}
