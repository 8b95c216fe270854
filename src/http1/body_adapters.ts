/**
 * Adapters between bws's pull-based bodies and the rest of the world: a source over bytes in
 * hand, and ReadableStream <-> BodySource for the paths that deal in fetch objects (HTTP/2 via
 * Deno.serve, the management API's Hono app, tests).
 *
 * @module
 */

import type { BodySource } from "./types.ts";

/** A body source that also counts what it delivered. */
export interface CountingSource extends BodySource {
  /** Body bytes delivered so far. */
  readonly bytesRead: number;
}

/** A source over bytes already in hand (one chunk). */
export class BytesBody implements CountingSource {
  #bytes: Uint8Array | null;
  bytesRead = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes.length > 0 ? bytes : null;
  }

  read(): Promise<Uint8Array | null> {
    const b = this.#bytes;
    this.#bytes = null;
    if (b !== null) this.bytesRead += b.length;
    return Promise.resolve(b);
  }

  cancel(): void {
    this.#bytes = null;
  }
}

/**
 * A ReadableStream over a source, copying each chunk (a stream's consumer may keep chunks after
 * asking for the next one). For the paths that need a fetch body: HTTP/2, tests.
 */
export function sourceToStream(src: BodySource): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const chunk = await src.read();
      if (chunk === null) c.close();
      else c.enqueue(chunk.slice());
    },
    cancel(reason) {
      src.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** A source over a ReadableStream (chunks are owned by the stream; no copy). */
export function streamToSource(stream: ReadableStream<Uint8Array>): CountingSource {
  const reader = stream.getReader();
  let done = false;
  return {
    bytesRead: 0,
    async read() {
      if (done) return null;
      while (true) {
        const r = await reader.read();
        if (r.done) {
          done = true;
          return null;
        }
        if (r.value.length > 0) {
          (this as { bytesRead: number }).bytesRead += r.value.length;
          return r.value;
        }
      }
    },
    cancel(reason?: unknown) {
      if (done) return;
      done = true;
      reader.cancel(reason).catch(() => {});
    },
  };
}
