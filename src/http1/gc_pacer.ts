/**
 * Keeps the memory of streamed bodies bounded where chunks are fresh buffers: compressed output
 * (zlib hands out a new buffer per chunk) and bodies handed to the HTTP/2 bridge's Deno.serve
 * (which keeps each chunk until it is on the wire). The HTTP/1.1 paths reuse one buffer per body
 * and need none of this.
 *
 * V8 frees such buffers only when it collects garbage, and for memory outside its heap it starts
 * that after about 64 MB has piled up: a 1 GiB download through Deno.serve grew RSS by ~77 MB. A
 * minor GC after every few MiB of streamed body frees them early (measured: +16 MB, same
 * transfer time).
 *
 * V8 lets JavaScript ask for a GC only when started with `--v8-flags=--expose-gc` (the compiled
 * binary and the deno tasks pass it). Without it, pacing is off and V8's own schedule applies.
 *
 * @module
 */

type GcFunction = (options: { type: "minor"; execution: "sync" }) => void;

const gc = (globalThis as { gc?: GcFunction }).gc;
/** Streamed bytes between two minor GCs. */
const BYTES_PER_GC = 8 * 1024 * 1024;
let sinceLastGc = 0;

/** Whether streamed bodies trigger minor GCs (the process was started with --expose-gc). */
export const gcPacing: boolean = typeof gc === "function";

/** Counts `bytes` of streamed body handed on; runs a minor GC every {@link BYTES_PER_GC}. */
export function noteStreamedBytes(bytes: number): void {
  if (gc === undefined) return;
  sinceLastGc += bytes;
  if (sinceLastGc >= BYTES_PER_GC) {
    sinceLastGc = 0;
    gc({ type: "minor", execution: "sync" });
  }
}
