/**
 * Small static files kept in memory while they stay the same file: the `stat` every request makes
 * anyway tells (device, inode, size, modification and change times), and a hit saves the
 * `open`, `read` and `close` — ~7 µs of a ~36 µs request through Deno's ops (measured), where
 * nginx pays a few system calls.
 *
 * A file is only remembered once it has not changed for {@link SETTLED_MS}: file times tick
 * coarsely (a few milliseconds on Linux), so a file rewritten in place twice within one tick, with
 * the same size, keeps its times; a read racing the second write could otherwise be remembered
 * torn. Any write after a settled file was read moves its times past the remembered ones.
 *
 * @module
 */

/** Files up to this size are remembered. */
export const SMALL_FILE = 16 * 1024;
/** How long a file must have been left alone before it is remembered. */
export const SETTLED_MS = 2000;

/** What a file is, as a `stat` of it tells. */
interface Version {
  readonly dev: number;
  readonly ino: number | null;
  readonly size: number;
  readonly mtime: number;
  readonly ctime: number;
}

interface Entry extends Version {
  readonly bytes: Uint8Array;
}

function versionOf(info: Deno.FileInfo): Version {
  return {
    dev: info.dev,
    ino: info.ino,
    size: info.size,
    mtime: info.mtime?.getTime() ?? -1,
    ctime: info.ctime?.getTime() ?? -1,
  };
}

function sameVersion(e: Version, info: Deno.FileInfo): boolean {
  return e.ino === info.ino && e.dev === info.dev && e.size === info.size &&
    e.mtime === (info.mtime?.getTime() ?? -1) && e.ctime === (info.ctime?.getTime() ?? -1);
}

/** Small files by real path, least recently used out past `maxBytes`. */
export class SmallFiles {
  readonly maxBytes: number;
  readonly settledMs: number;
  /** Insertion order is recency order: a hit moves its entry to the end. */
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(maxBytes = 8 * 1024 * 1024, settledMs = SETTLED_MS) {
    this.maxBytes = maxBytes;
    this.settledMs = settledMs;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The whole file at `path` when what is remembered is the file `info` (a stat just now) shows. */
  get(path: string, info: Deno.FileInfo): Uint8Array | null {
    const e = this.#entries.get(path);
    if (e === undefined) return null;
    this.#entries.delete(path);
    if (!sameVersion(e, info)) {
      this.#bytes -= e.bytes.length;
      return null;
    }
    this.#entries.set(path, e);
    return e.bytes;
  }

  /**
   * Whether the file `info` shows would be remembered: small, with inode numbers to tell it
   * apart, and left alone for `settledMs` ({@link SETTLED_MS}; by `now`, epoch ms).
   */
  accepts(info: Deno.FileInfo, now: number): boolean {
    if (info.size > SMALL_FILE || info.size > this.maxBytes || info.ino === null) return false;
    const changed = Math.max(info.mtime?.getTime() ?? Infinity, info.ctime?.getTime() ?? Infinity);
    return now - changed >= this.settledMs;
  }

  /** Remembers `bytes`, the whole file read after `info` was taken (see {@link accepts}). */
  put(path: string, info: Deno.FileInfo, bytes: Uint8Array): void {
    const old = this.#entries.get(path);
    if (old !== undefined) {
      this.#entries.delete(path);
      this.#bytes -= old.bytes.length;
    }
    this.#entries.set(path, { ...versionOf(info), bytes });
    this.#bytes += bytes.length;
    for (const [key, e] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(key);
      this.#bytes -= e.bytes.length;
    }
  }
}
