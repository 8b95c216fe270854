/**
 * Compressed forms of small static files, kept in memory so repeated requests do not compress
 * again. Keyed by (path, mtime, size, algorithm): a changed file gets a new key and its old
 * entries age out. Bounded in total bytes, least recently used first out. Concurrent misses for
 * the same key share one compression.
 *
 * @module
 */

import type { CompressionAlgorithm } from "../config/types.ts";
import { compressBytes } from "./compress_body.ts";
import { CACHED_LEVELS } from "./levels.ts";

/** Limits of a {@link CompressedFileCache}. */
export interface CompressedFileCacheOptions {
  /** Total compressed bytes held. @default 32 MiB */
  readonly maxBytes?: number;
  /** Files larger than this are not cached (they are compressed as they stream). @default 1 MiB */
  readonly maxFileSize?: number;
  /** @default CACHED_LEVELS */
  readonly levels?: Readonly<Record<CompressionAlgorithm, number>>;
}

/** What identifies one version of a file. */
export interface FileVersion {
  readonly path: string;
  readonly size: number;
  readonly mtime: Date | null;
}

/** The process-wide cache of compressed static files. */
export class CompressedFileCache {
  readonly maxBytes: number;
  readonly maxFileSize: number;
  readonly #levels: Readonly<Record<CompressionAlgorithm, number>>;
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
  }

  /** Whether a file of `size` bytes is cached (else: compress it as it streams). */
  accepts(size: number): boolean {
    return size <= this.maxFileSize && size <= this.maxBytes;
  }

  /**
   * The `algorithm` form of this version of the file: from memory, or `read()` (the file's
   * bytes) compressed and remembered. Rejects when `read` rejects (nothing is remembered).
   */
  get(
    file: FileVersion,
    algorithm: CompressionAlgorithm,
    read: () => Promise<Uint8Array>,
  ): Promise<Uint8Array> {
    const key = `${algorithm}\0${file.size}\0${file.mtime?.getTime() ?? "-"}\0${file.path}`;
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      this.#hits++;
      return Promise.resolve(hit);
    }
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      this.#misses++;
      pending = (async () => {
        try {
          const bytes = await read();
          const compressed = await compressBytes(bytes, algorithm, this.#levels[algorithm]);
          if (bytes.byteLength === file.size && this.accepts(file.size)) {
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
