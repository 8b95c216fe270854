/**
 * Compression levels and the `node:zlib` compressors built with them.
 *
 * Levels are chosen for speed (measured on this machine with `scripts/bench/compress_speed.ts`;
 * the figures are in docs/behaviour.md). Responses compressed as they stream use the `stream`
 * levels; small static files compressed once and kept in memory use the `cached` levels, which
 * trade more CPU once for smaller bodies on every later request.
 *
 * Deno runs zlib, brotli and zstd on the calling thread (its "async" zlib API too), so a level
 * is CPU taken from the event loop: 64 KiB at 100 MB/s is 0.65 ms.
 *
 * @module
 */

import * as zlib from "node:zlib";
import type { CompressionAlgorithm } from "../config/types.ts";

/** A level per algorithm (gzip 1-9, brotli quality 0-11, zstd 1-22). */
export type Levels = Readonly<Record<CompressionAlgorithm, number>>;

/** Levels for bodies compressed while they stream (proxied, large static files). */
export const STREAM_LEVELS: Levels = { zstd: 3, br: 3, gzip: 3 };

/** Levels for small static files compressed once and served from memory. */
export const CACHED_LEVELS: Levels = { zstd: 6, br: 5, gzip: 6 };

/**
 * log2 of the window brotli and zstd keep while compressing a stream (512 KiB, ngx_brotli's
 * default). A stream holds its compressor for as long as its client takes to read: at their own
 * defaults for a body of unknown size (4 MiB brotli, 2 MiB zstd 3) 20 clients that did not read
 * held ~210 MB (brotli) of bws. It costs a few per cent of ratio on bodies over 512 KiB (brotli 3
 * on 1.1 MB of text: 3.45 instead of 3.60). Whole buffers compressed at once keep the default.
 */
const STREAM_WINDOW_LOG = 19;

/** Output buffer size of a compressor: the largest chunk it hands on. */
const CHUNK_SIZE = 64 * 1024;

const C = zlib.constants;

/** Options for one compressor. */
export interface CompressorOptions {
  /** @default the algorithm's STREAM_LEVELS entry */
  readonly level?: number;
  /** The input's length when known: brotli and zstd size their tables by it. */
  readonly sizeHint?: number | null;
  /**
   * Keep brotli's and zstd's window to 512 KiB (see {@link STREAM_WINDOW_LOG}): for a stream a
   * client reads at its own pace. False for a whole buffer bws compresses for itself (the static
   * cache), which holds the compressor only while it runs. @default true
   */
  readonly smallWindow?: boolean;
}

/** The `node:zlib` stream that compresses with `algorithm`. */
export type Compressor = zlib.Gzip | zlib.BrotliCompress | zlib.ZstdCompress;

/** A new compressor for `algorithm`. */
export function createCompressor(
  algorithm: CompressionAlgorithm,
  opts: CompressorOptions = {},
): Compressor {
  switch (algorithm) {
    case "gzip":
      return zlib.createGzip(gzipOptions(opts));
    case "br":
      return zlib.createBrotliCompress(brotliOptions(opts, streamWindow(opts)));
    case "zstd":
      return zlib.createZstdCompress(zstdOptions(opts, streamWindow(opts)));
  }
}

/** `bytes` compressed in one call, on this thread (for small bodies: it blocks meanwhile). */
export function compressSync(
  bytes: Uint8Array,
  algorithm: CompressionAlgorithm,
  level?: number,
): Uint8Array {
  const opts = { level, sizeHint: bytes.byteLength };
  switch (algorithm) {
    case "gzip":
      return zlib.gzipSync(bytes, gzipOptions(opts));
    case "br":
      return zlib.brotliCompressSync(bytes, brotliOptions(opts));
    case "zstd":
      return zlib.zstdCompressSync(bytes, zstdOptions(opts));
  }
}

function gzipOptions(opts: CompressorOptions): zlib.ZlibOptions {
  return { level: opts.level ?? STREAM_LEVELS.gzip, chunkSize: CHUNK_SIZE };
}

function streamWindow(opts: CompressorOptions): number | null {
  return opts.smallWindow === false ? null : STREAM_WINDOW_LOG;
}

/** `windowLog`: log2 of the window to keep, or null for the library's choice. */
function brotliOptions(
  opts: CompressorOptions,
  windowLog: number | null = null,
): zlib.BrotliOptions {
  const hint = opts.sizeHint ?? null;
  return {
    chunkSize: CHUNK_SIZE,
    params: {
      [C.BROTLI_PARAM_QUALITY]: opts.level ?? STREAM_LEVELS.br,
      [C.BROTLI_PARAM_MODE]: C.BROTLI_MODE_TEXT,
      ...(windowLog !== null ? { [C.BROTLI_PARAM_LGWIN]: windowLog } : {}),
      ...(hint !== null ? { [C.BROTLI_PARAM_SIZE_HINT]: Math.min(hint, 2 ** 30) } : {}),
    },
  };
}

function zstdOptions(
  opts: CompressorOptions,
  windowLog: number | null = null,
): zlib.ZstdOptions {
  const hint = opts.sizeHint ?? null;
  return {
    chunkSize: CHUNK_SIZE,
    params: {
      [C.ZSTD_c_compressionLevel]: opts.level ?? STREAM_LEVELS.zstd,
      ...(windowLog !== null ? { [C.ZSTD_c_windowLog]: windowLog } : {}),
    },
    ...(hint !== null ? { pledgedSrcSize: hint } : {}),
  };
}

/** The flush flag that makes a compressor hand on everything it has taken so far. */
export function flushFlag(algorithm: CompressionAlgorithm): number {
  switch (algorithm) {
    case "gzip":
      return C.Z_SYNC_FLUSH;
    case "br":
      return C.BROTLI_OPERATION_FLUSH;
    case "zstd":
      return C.ZSTD_e_flush;
  }
}
