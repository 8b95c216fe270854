/**
 * "Did you mean" suggestions for misspelled config keys.
 *
 * @module
 */

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
 * adjacent characters each cost 1.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, () => new Array<number>(cols).fill(0));
  for (let i = 0; i < rows; i++) d[i][0] = i;
  for (let j = 0; j < cols; j++) d[0][j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2][j - 2] + 1);
      }
      d[i][j] = v;
    }
  }
  return d[a.length][b.length];
}

/**
 * The known key closest to `word`, or undefined when none is close enough. Comparison ignores
 * case and treats "-" like "_". Short words allow fewer edits so "id" does not suggest "ip".
 *
 * @param maxDistance upper bound on edits @default 2
 */
export function suggestKey(
  word: string,
  candidates: Iterable<string>,
  maxDistance = 2,
): string | undefined {
  const norm = (s: string) => s.toLowerCase().replaceAll("-", "_");
  const w = norm(word);
  const limit = Math.min(maxDistance, Math.floor(w.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const n = norm(c);
    let dist = editDistance(w, n);
    // "timeout_read" vs "read": a known key that is a whole word of the typo is a decent hint.
    if (dist > limit && w.length > 3 && n.length > 3 && (w.includes(n) || n.includes(w))) {
      dist = limit;
    }
    if (dist <= limit && dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}
