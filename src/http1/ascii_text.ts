/**
 * Head bytes as text. Header bytes are defined as ISO-8859-1 ({@link latin1}); heads already
 * checked to be ASCII (nearly every head) are decoded in one call ({@link decodeAscii}),
 * through the runtime's UTF-8 decode binding where it has one (`runtime_core.ts`). For ASCII
 * that is the same string TextDecoder gives, without its per-call WebIDL checks: ~0.05 µs per
 * head in a microbenchmark and in `js_cost.ts`; in the real process (rounds in turn, bws beside
 * itself) 2.3 % less CPU per proxied request in one run, within the noise (±3 %) in two others.
 *
 * @module
 */

import { coreDecode } from "../net/runtime_core.ts";

const decoder = new TextDecoder();

/** The string of `bytes`, which must all be < 0x80 (the caller checked). */
export const decodeAscii: (bytes: Uint8Array) => string = coreDecode ??
  ((bytes) => decoder.decode(bytes));

/** Whether {@link decodeAscii} uses the runtime's binding (for tests). */
export const decodesDirectly: boolean = coreDecode !== null;

/** Decodes bytes as ISO-8859-1 (each byte one UTF-16 unit), as header bytes are defined. */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  // Heads are almost always ASCII, where UTF-8 decoding (one native call) gives the same string
  // about twice as fast as building it char by char.
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (buf[i] >= 128) {
      ascii = false;
      break;
    }
  }
  if (ascii) return decodeAscii(buf.subarray(start, end));
  const CHUNK = 8192;
  if (end - start <= CHUNK) {
    return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
  }
  let s = "";
  for (let p = start; p < end; p += CHUNK) {
    const q = Math.min(end, p + CHUNK);
    s += String.fromCharCode.apply(null, buf.subarray(p, q) as unknown as number[]);
  }
  return s;
}
