/**
 * Compression of a body as it streams: a `BodySource` in, a `BodySource` of the compressed bytes
 * out, pulled with backpressure. Memory stays bounded whatever the body's size: the next input
 * chunk is read only when the compressed output of the last one has been taken, so at most one
 * input chunk, its output and the compressor's own state (0.5 MiB for gzip, ~1.7 MiB for zstd 3,
 * measured) are held.
 *
 * @module
 */

import type { CompressionAlgorithm } from "../config/types.ts";
import type { BodySource } from "../http1/types.ts";
import { noteStreamedBytes } from "../http1/gc_pacer.ts";
import { setImmediate } from "node:timers";
import {
  type Compressor,
  type CompressorOptions,
  compressSync,
  createCompressor,
  flushFlag,
} from "./levels.ts";

/** Input handed to a compressor at once when compressing whole buffers. */
const STEP = 64 * 1024;

/** Options of {@link compressSource}. */
export interface CompressSourceOptions extends CompressorOptions {
  /**
   * Hand on the compressed form of every input chunk before reading the next one (a sync
   * flush), so a client sees what an upstream sent as soon as it arrives. Costs a few bytes per
   * chunk; off for static files, which arrive as fast as they can be read. @default false
   */
  readonly flushEachChunk?: boolean;
}

/**
 * The compressed form of `source`. Reading it reads `source`; cancelling it cancels `source`.
 * A failure of `source` (truncation, timeout) rejects `read()`: a truncated body never ends
 * like a complete one. Output chunks are fresh buffers (valid until dropped).
 */
export function compressSource(
  source: BodySource,
  algorithm: CompressionAlgorithm,
  opts: CompressSourceOptions = {},
): BodySource {
  return new CompressedSource(source, algorithm, opts);
}

/**
 * `bytes` compressed whole (for the static cache). Up to 64 KiB in one call; larger inputs in
 * 64 KiB steps with other work (requests, I/O) let in between, so a cache fill of a large file
 * does not stall the server for its whole compression time.
 */
export async function compressBytes(
  bytes: Uint8Array,
  algorithm: CompressionAlgorithm,
  level?: number,
): Promise<Uint8Array> {
  if (bytes.byteLength <= STEP) return compressSync(bytes, algorithm, level);
  let offset = 0;
  const steps: BodySource = {
    read: async () => {
      if (offset >= bytes.byteLength) return null;
      if (offset > 0) await new Promise((resolve) => setImmediate(resolve));
      const chunk = bytes.subarray(offset, offset + STEP);
      offset += chunk.byteLength;
      return chunk;
    },
    cancel: () => {},
  };
  const out = compressSource(steps, algorithm, {
    level,
    sizeHint: bytes.byteLength,
    smallWindow: false,
  });
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let part = await out.read(); part !== null; part = await out.read()) {
    parts.push(part);
    total += part.byteLength;
  }
  const whole = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    whole.set(part, at);
    at += part.byteLength;
  }
  return whole;
}

class CompressedSource implements BodySource {
  readonly #source: BodySource;
  readonly #z: Compressor;
  readonly #flush: number | null;
  readonly #out: Uint8Array[] = [];
  /** open: reading input; ending: input done, waiting for the compressor's end; then done. */
  #state: "open" | "ending" | "done" | "failed" = "open";
  #error: unknown = null;
  /** An input chunk (and its flush) is inside the compressor. */
  #busy = false;
  #wake: (() => void) | null = null;

  constructor(source: BodySource, algorithm: CompressionAlgorithm, opts: CompressSourceOptions) {
    this.#source = source;
    this.#flush = opts.flushEachChunk ? flushFlag(algorithm) : null;
    const z = this.#z = createCompressor(algorithm, opts);
    z.on("data", (chunk: Uint8Array) => {
      this.#out.push(chunk);
      noteStreamedBytes(chunk.byteLength);
      this.#poke();
    });
    z.on("end", () => {
      if (this.#state === "ending") this.#state = "done";
      this.#poke();
    });
    z.on("error", (e: unknown) => this.#fail(e));
  }

  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const next = this.#out.shift();
      if (next !== undefined) return next;
      if (this.#state === "done") return null;
      if (this.#state === "failed") throw this.#error;
      if (this.#state === "open" && !this.#busy) {
        await this.#feed();
        continue;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Reads one input chunk and hands it to the compressor (or ends it). */
  async #feed(): Promise<void> {
    let chunk: Uint8Array | null;
    try {
      chunk = await this.#source.read();
    } catch (e) {
      this.#fail(e);
      return;
    }
    if (this.#state !== "open") return; // cancelled while reading
    if (chunk === null) {
      this.#state = "ending";
      this.#z.end();
      return;
    }
    // The chunk is only valid until the next read of the source: that read waits for this
    // callback, which comes once the compressor has consumed the chunk.
    this.#busy = true;
    const written = () => {
      this.#busy = false;
      this.#poke();
    };
    if (this.#flush === null) this.#z.write(chunk, written);
    else {
      this.#z.write(chunk);
      this.#z.flush(this.#flush, written);
    }
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #fail(e: unknown): void {
    if (this.#state === "done" || this.#state === "failed") return;
    this.#state = "failed";
    this.#error = e;
    this.#out.length = 0;
    this.#z.destroy();
    this.#source.cancel(e);
    this.#poke();
  }

  cancel(reason?: unknown): void {
    if (this.#state === "failed") return;
    const wasDone = this.#state === "done";
    this.#state = "failed";
    this.#error = reason ?? new Error("Cannot read compressed body: cancelled");
    this.#out.length = 0;
    this.#z.destroy();
    if (!wasDone) this.#source.cancel(reason);
    this.#poke();
  }
}
