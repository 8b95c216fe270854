/**
 * Test helper: compares byte arrays without `expect(...).toEqual`, whose element-by-element deep
 * equality costs ~80 MB and half a second per 300 KB array in the shared test process.
 *
 * @module
 */

/** The first index where `a` and `b` differ (or the shorter length), or -1 when equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
