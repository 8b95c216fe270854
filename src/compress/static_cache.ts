/**
 * Compressed forms of small static files, kept in memory so repeated requests do not compress
 * again. Keyed by (path, size, modification and change times, inode, algorithm): a changed file
 * gets a new key and its old entries age out. The change time and inode matter: builds that fix
 * every file's mtime (reproducible builds, `tar` and `cp -p` keep them) make a changed file of
 * the same size look the same by mtime alone, while extracting or writing it sets a new ctime.
 * A file changed within the last {@link SETTLED_MS} is compressed but not kept (its times tick
 * coarsely: a read racing a rewrite within one tick must not be kept). Bounded in total bytes,
 * least recently used first out. Concurrent misses for the same key share one compression.
 *
 * @module
 */

import type { CompressionAlgorithm } from "../config/types.ts";
import { compressBytes } from "./compress_body.ts";
import { CACHED_LEVELS } from "./levels.ts";
import { SETTLED_MS } from "../static/small_files.ts";

/** Limits of a {@link CompressedFileCache}. */
export interface CompressedFileCacheOptions {
  /** Total compressed bytes held. @default 32 MiB */
  readonly maxBytes?: number;
  /** Files larger than this are not cached (they are compressed as they stream). @default 1 MiB */
  readonly maxFileSize?: number;
  /** @default CACHED_LEVELS */
  readonly levels?: Readonly<Record<CompressionAlgorithm, number>>;
  /** How long a file must have been left alone to be kept. @default SETTLED_MS */
  readonly settledMs?: number;
}

/** What identifies one version of a file (from a `stat` of it). */
export interface FileVersion {
  readonly path: string;
  readonly size: number;
  readonly mtime: Date | null;
  readonly ctime: Date | null;
  readonly ino: number | null;
}

/** The process-wide cache of compressed static files. */
export class CompressedFileCache {
  readonly maxBytes: number;
  readonly maxFileSize: number;
  readonly #levels: Readonly<Record<CompressionAlgorithm, number>>;
  readonly #settledMs: number;
  /** Insertion order is recency order: a hit moves its entry to the end. */
  readonly #entries = new Map<string, Uint8Array>();
  readonly #pending = new Map<string, Promise<Uint8Array>>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;

  constructor(opts: CompressedFileCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
    this.maxFileSize = opts.maxFileSize ?? 1024 * 1024;
    this.#levels = opts.levels ?? CACHED_LEVELS;
    this.#settledMs = opts.settledMs ?? SETTLED_MS;
  }

  /** Whether a file of `size` bytes is cached (else: compress it as it streams). */
  accepts(size: number): boolean {
    return size <= this.maxFileSize && size <= this.maxBytes;
  }

  /**
   * The `algorithm` form of this version of the file: from memory (at once), or `read()` (the
   * file's bytes) compressed and remembered. Rejects when `read` rejects (nothing is remembered).
   */
  get(
    file: FileVersion,
    algorithm: CompressionAlgorithm,
    read: () => Promise<Uint8Array>,
  ): Uint8Array | Promise<Uint8Array> {
    const mtime = file.mtime?.getTime() ?? -1;
    const ctime = file.ctime?.getTime() ?? -1;
    const key = `${algorithm}\0${file.size}\0${mtime}\0${ctime}\0${file.ino ?? "-"}\0` +
      file.path;
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      this.#hits++;
      return hit;
    }
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      this.#misses++;
      pending = (async () => {
        try {
          const bytes = await read();
          const compressed = await compressBytes(bytes, algorithm, this.#levels[algorithm]);
          const settled = mtime >= 0 && ctime >= 0 &&
            Date.now() - Math.max(mtime, ctime) >= this.#settledMs;
          if (settled && bytes.byteLength === file.size && this.accepts(file.size)) {
            this.#store(key, compressed);
          }
          return compressed;
        } finally {
          this.#pending.delete(key);
        }
      })();
      this.#pending.set(key, pending);
    }
    return pending;
  }

  #store(key: string, bytes: Uint8Array): void {
    if (bytes.byteLength > this.maxBytes) return;
    this.#entries.set(key, bytes);
    this.#bytes += bytes.byteLength;
    for (const [oldest, old] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= old.byteLength;
    }
  }

  /** Counters for tests and metrics. */
  stats(): { entries: number; bytes: number; hits: number; misses: number } {
    return {
      entries: this.#entries.size,
      bytes: this.#bytes,
      hits: this.#hits,
      misses: this.#misses,
    };
  }
}
