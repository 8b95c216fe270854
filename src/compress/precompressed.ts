/**
 * Precompressed siblings of static files: `FILE.zst`, `FILE.br`, `FILE.gz` next to `FILE`,
 * made at build time (often at the highest levels), served instead of compressing on the fly.
 *
 * A sibling is used when it is a regular file inside the static root (a symlink out of it is
 * ignored, as for every static file) and not older than `FILE` (a stale sibling left behind by
 * a deploy that updated only `FILE` is ignored rather than served).
 *
 * Most files have no siblings: a sibling found missing is not looked for again for a second
 * (a `stat` per acceptable coding on every request cost ~2 µs each), so a sibling a deploy adds
 * is served within a second.
 *
 * @module
 */

import type { CompressionAlgorithm } from "../config/types.ts";
import { coarseNow } from "../net/deadlines.ts";
import { isInside } from "../static/real_paths.ts";
import type { Negotiated } from "./negotiate.ts";

/** The file name suffix of each algorithm's sibling. */
export const SIBLING_SUFFIX: Readonly<Record<CompressionAlgorithm, string>> = {
  zstd: ".zst",
  br: ".br",
  gzip: ".gz",
};

/** A sibling to serve. */
export interface Precompressed {
  readonly algorithm: CompressionAlgorithm;
  /** Its real path. */
  readonly path: string;
  readonly info: Deno.FileInfo;
}

/**
 * The best sibling of `path` (a real path below `root`, last modified `info.mtime`) for the
 * negotiated codings, tried in their order; null when none is usable.
 */
export function findPrecompressed(
  root: string,
  path: string,
  info: Deno.FileInfo,
  order: Negotiated,
): Precompressed | null {
  for (const algorithm of order) {
    const found = usableSibling(root, path + SIBLING_SUFFIX[algorithm], info);
    if (found !== null) return { algorithm, ...found };
  }
  return null;
}

/** How long a missing sibling is not looked for again. */
export const ABSENT_MS = 1000;
/** Sibling paths found missing → until when (coarse clock); cleared when it grows too big. */
const absent = new Map<string, number>();
let absentChars = 0;
const MAX_ABSENT = 8192;
const MAX_ABSENT_CHARS = 1 << 21;

function missing(candidate: string, now: number): void {
  if (absent.size >= MAX_ABSENT || absentChars + candidate.length > MAX_ABSENT_CHARS) {
    absent.clear();
    absentChars = 0;
  }
  if (!absent.has(candidate)) absentChars += candidate.length;
  absent.set(candidate, now + ABSENT_MS);
}

/** Synchronous lookups, as the static handler's (see src/static/handler.ts). */
function usableSibling(
  root: string,
  candidate: string,
  original: Deno.FileInfo,
): { path: string; info: Deno.FileInfo } | null {
  const now = coarseNow();
  const until = absent.get(candidate);
  if (until !== undefined && now < until) return null;
  let real: string;
  let info: Deno.FileInfo;
  try {
    // A stat first: no sibling (the usual case) costs one call, where `realPath` walks the path
    // with a call per component before it fails.
    try {
      Deno.statSync(candidate);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) missing(candidate, now);
      return null;
    }
    real = Deno.realPathSync(candidate);
    if (!isInside(real, root)) return null;
    info = Deno.statSync(real);
  } catch {
    return null; // none (the usual case), or unreadable
  }
  if (!info.isFile) return null;
  const [mine, theirs] = [info.mtime?.getTime(), original.mtime?.getTime()];
  if (mine !== undefined && theirs !== undefined && mine < theirs) return null;
  return { path: real, info };
}
