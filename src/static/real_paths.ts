/**
 * Where a path under a static root really leads, remembered for a second. `realPath` costs one
 * `lstat` per path component (~6 µs of a ~55 µs static request, measured); the `stat` every
 * request makes anyway proves a remembered answer still holds: the file found at the real path
 * must be the same file (device and inode) as when it was resolved. A symlink or directory
 * swapped in since leads to another file, so the path is resolved again (and refused if it now
 * leaves the root) — the same guarantee as resolving on every request, whose `realPath` and
 * `open` are also two calls apart. What is served is always the remembered real path, never the
 * path asked for: a symlink inside the root pointed elsewhere inside it is followed within a
 * second. Only paths found inside the root are remembered: a file created since is served at once.
 *
 * @module
 */

import { sep as SEPARATOR } from "node:path";
import { coarseNow } from "../net/deadlines.ts";

/** A path's real path and what it named when resolved. */
interface Resolved {
  readonly real: string;
  readonly dev: number;
  readonly ino: number;
  readonly until: number;
}

/** A path that exists, its real path, and its info (from a `stat` of the real path). */
export interface Found {
  readonly real: string;
  readonly info: Deno.FileInfo;
}

/** How long a resolved path is trusted without `realPath` (still checked by its `stat`). */
export const REAL_PATH_TTL_MS = 1000;
/** Paths remembered at most, and their characters at most (a symlink loop inside the root makes
 * endless long paths to one file): past either the set starts over. */
const MAX_ENTRIES = 4096;
const MAX_CHARS = 1 << 21;

/** Real paths of one static root's files, remembered for {@link REAL_PATH_TTL_MS}. */
export class RealPaths {
  readonly #known = new Map<string, Resolved>();
  #chars = 0;

  /**
   * The real path of `path` and its info, or null when it does not exist, cannot be read or
   * leads out of `root` (a real path). Never throws.
   */
  find(path: string, root: string): Found | null {
    const now = coarseNow();
    const known = this.#known.get(path);
    if (known !== undefined && now < known.until) {
      const info = statOrNull(known.real);
      if (info !== null && info.ino === known.ino && info.dev === known.dev) {
        return { real: known.real, info };
      }
      this.#known.delete(path);
    }
    const real = realPathOrNull(path);
    if (real === null || !isInside(real, root)) return null;
    const info = statOrNull(real);
    if (info === null) return null;
    // Without inode numbers (not on Linux or macOS) nothing proves a remembered path: no cache.
    if (info.ino !== null) {
      if (this.#known.size >= MAX_ENTRIES || this.#chars + path.length > MAX_CHARS) {
        this.#known.clear();
        this.#chars = 0;
      }
      this.#chars += path.length + real.length;
      this.#known.set(path, { real, dev: info.dev, ino: info.ino, until: now + REAL_PATH_TTL_MS });
    }
    return { real, info };
  }
}

/** Whether `real` is the root itself or lies below it. */
export function isInside(real: string, realRoot: string): boolean {
  return real === realRoot ||
    real.startsWith(realRoot.endsWith(SEPARATOR) ? realRoot : realRoot + SEPARATOR);
}

/*
 * Path lookups are synchronous calls: on a local disk each takes a few microseconds, while the
 * asynchronous ones each cost a round trip through Deno's blocking thread pool (measured: see
 * docs/behaviour.md, "Static files"). nginx blocks on them the same way.
 */

/** Real path of `path` if it exists, else null; never throws for missing/invalid paths. */
export function realPathOrNull(path: string): string | null {
  try {
    return Deno.realPathSync(path);
  } catch {
    return null;
  }
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}
