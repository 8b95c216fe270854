/**
 * A bounded byte stream over part of an open file.
 *
 * @module
 */

import { noteStreamedBytes } from "../upstream/gc_pacer.ts";

const CHUNK = 64 * 1024;

/**
 * Streams `length` bytes of `file` from `start`, reading at most 64 KiB at a time. The file is
 * closed when the range is done, when the file ends early, on error, and on cancel.
 */
export function fileRangeStream(
  file: Deno.FsFile,
  start: number,
  length: number,
): ReadableStream<Uint8Array> {
  let remaining = length;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      file.close();
    } catch {
      // already closed
    }
  };
  return new ReadableStream<Uint8Array>({
    async start() {
      try {
        if (start > 0) await file.seek(start, Deno.SeekMode.Start);
      } catch (err) {
        close();
        throw err;
      }
    },
    async pull(controller) {
      if (remaining <= 0) {
        close();
        controller.close();
        return;
      }
      try {
        const buf = new Uint8Array(Math.min(CHUNK, remaining));
        const n = await file.read(buf);
        if (n === null || n === 0) {
          close();
          controller.close();
          return;
        }
        remaining -= n;
        controller.enqueue(n === buf.length ? buf : buf.subarray(0, n));
        noteStreamedBytes(buf.length);
        if (remaining <= 0) {
          close();
          controller.close();
        }
      } catch (err) {
        close();
        controller.error(err);
      }
    },
    cancel() {
      close();
    },
  }, { highWaterMark: 0 });
}
