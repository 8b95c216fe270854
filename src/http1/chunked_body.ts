/**
 * Strict incremental decoder of a chunked request body (RFC 9112 §7.1): hex chunk sizes (leading
 * zeros allowed, bounded), chunk extensions only in their grammar (`;` token [`=` token /
 * quoted-string], BWS around them) and then ignored, CRLF everywhere, trailer fields checked like
 * header lines and dropped, a bounded trailer section. Anything else is HttpError 400.
 *
 * Two ways to take the data: {@link ChunkedBodyDecoder.next} hands out each run of chunk data as
 * a range of the input (no copy), {@link ChunkedBodyDecoder.decode} gathers the runs into `out`,
 * which may be the input buffer itself (output never overtakes input).
 *
 * @module
 */

import { HttpError } from "./errors.ts";
import { HEX, TCHAR } from "./char_classes.ts";

/** Largest chunk size accepted: 12 hex digits (256 TiB), far below Number.MAX_SAFE_INTEGER. */
const MAX_CHUNK_SIZE = 0xffffffffffff;
/** Longest chunk-size line (size, extensions, CRLF). */
const MAX_SIZE_LINE = 4096;
/** Default bound of the trailer section, its final CRLF included. */
const DEFAULT_MAX_TRAILER_SIZE = 8192;

// States. The chunk-size line: SIZE_START digit... ext... SIZE_LF.
const SIZE_START = 0;
const SIZE = 1;
/** BWS that must be followed by ";" (after the size, an extension value or a quoted string). */
const BWS_SEMI = 2;
const EXT_NAME_START = 3;
const EXT_NAME = 4;
/** BWS after an extension name: "=" or ";" must follow. */
const EXT_NAME_BWS = 5;
const EXT_VALUE_START = 6;
const EXT_TOKEN = 7;
const EXT_QUOTED = 8;
const EXT_QUOTED_PAIR = 9;
const EXT_QUOTED_END = 10;
const SIZE_LF = 11;
const DATA = 12;
const DATA_CR = 13;
const DATA_LF = 14;
const TRAILER_LINE = 15;
const TRAILER_NAME = 16;
const TRAILER_VALUE = 17;
const TRAILER_LF = 18;
const FINAL_LF = 19;
const DONE = 20;
/** A framing error was thrown: the body is unusable. */
const FAILED = 21;

const CR = 13;
const LF = 10;

/** Byte classes: bit 1 field-value byte (VCHAR/SP/HTAB/obs-text), 2 qdtext. */
const CLASS = new Uint8Array(256);
const FIELD = 1;
const QDTEXT = 2;
for (let c = 0; c < 256; c++) {
  if (c === 9 || (c >= 32 && c !== 127)) CLASS[c] |= FIELD;
  if (c === 9 || c === 32 || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c !== 127)) {
    CLASS[c] |= QDTEXT;
  }
}

function bad(detail: string): HttpError {
  return new HttpError(400, `Cannot decode chunked request body: ${detail}`);
}

function unexpected(c: number, where: string): HttpError {
  const shown = c === CR ? "CR" : c === LF ? "LF" : `0x${c.toString(16).padStart(2, "0")}`;
  return bad(`unexpected ${shown} ${where}`);
}

/** Options of a {@link ChunkedBodyDecoder}. */
export interface ChunkedBodyOptions {
  /** Largest trailer section in bytes, final CRLF included. @default 8192 */
  maxTrailerSize?: number;
}

/**
 * Decodes one chunked request body. Feed it what the connection read with
 * {@link ChunkedBodyDecoder.decode} until `done`; bytes after the body (a pipelined request)
 * are never consumed.
 */
export class ChunkedBodyDecoder {
  #state = SIZE_START;
  /** Chunk size being read, then the data bytes still due in the current chunk. */
  #remaining = 0;
  /** Bytes of the current chunk-size line, or of the trailer section. */
  #lineBytes = 0;
  readonly #maxTrailerSize: number;
  /** Input bytes consumed by the last `next` / `decode`. */
  consumed = 0;
  /** Data bytes the last call produced. */
  produced = 0;
  /** Where the data run of the last {@link next} starts in its `buf`. */
  dataStart = 0;

  constructor(options: ChunkedBodyOptions = {}) {
    this.#maxTrailerSize = options.maxTrailerSize ?? DEFAULT_MAX_TRAILER_SIZE;
  }

  /** The last chunk, the trailer section and its final CRLF have been read. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** Data bytes of the current chunk not yet decoded (0 between chunks). */
  get chunkRemaining(): number {
    return this.#state === DATA ? this.#remaining : 0;
  }

  /**
   * Zero-copy decoding: reads the framing in `buf[start, end)` up to the next run of chunk data
   * and takes that run (as much of it as `buf` holds). Returns its length, 0 when the input ended
   * inside the framing or the body is done; the data is `buf[dataStart, dataStart + n)`. Sets
   * {@link consumed} (framing and data) and {@link produced} (= the returned length).
   * Throws HttpError 400 on a framing error.
   */
  next(buf: Uint8Array, start: number, end: number): number {
    let state = this.#state;
    if (state === FAILED) throw bad("the body already failed to decode");
    let remaining = this.#remaining;
    let line = this.#lineBytes;
    let p = start;
    let n = 0;
    try {
      while (p < end && state !== DONE) {
        if (state === DATA) {
          n = remaining < end - p ? remaining : end - p;
          remaining -= n;
          if (remaining === 0) state = DATA_CR;
          break;
        }
        const c = buf[p++];
        switch (state) {
          case SIZE_START: {
            const h = HEX[c];
            if (h === 0) throw unexpected(c, "instead of a chunk size");
            remaining = h - 1;
            state = SIZE;
            break;
          }
          case SIZE: {
            const h = HEX[c];
            if (h !== 0) {
              remaining = remaining * 16 + h - 1;
              if (remaining > MAX_CHUNK_SIZE) throw bad("chunk size too large");
            } else if (c === CR) state = SIZE_LF;
            else if (c === 59) state = EXT_NAME_START;
            else if (c === 32 || c === 9) state = BWS_SEMI;
            else throw unexpected(c, "in a chunk size");
            break;
          }
          case BWS_SEMI:
            if (c === 59) state = EXT_NAME_START;
            else if (c !== 32 && c !== 9) throw unexpected(c, "in a chunk extension");
            break;
          case EXT_NAME_START:
            if (TCHAR[c] !== 0) state = EXT_NAME;
            else if (c !== 32 && c !== 9) throw unexpected(c, "instead of a chunk extension");
            break;
          case EXT_NAME:
            if (TCHAR[c] !== 0) break;
            if (c === CR) state = SIZE_LF;
            else if (c === 61) state = EXT_VALUE_START;
            else if (c === 59) state = EXT_NAME_START;
            else if (c === 32 || c === 9) state = EXT_NAME_BWS;
            else throw unexpected(c, "in a chunk extension name");
            break;
          case EXT_NAME_BWS:
            if (c === 61) state = EXT_VALUE_START;
            else if (c === 59) state = EXT_NAME_START;
            else if (c !== 32 && c !== 9) throw unexpected(c, "after a chunk extension name");
            break;
          case EXT_VALUE_START:
            if (TCHAR[c] !== 0) state = EXT_TOKEN;
            else if (c === 34) state = EXT_QUOTED;
            else if (c !== 32 && c !== 9) throw unexpected(c, "instead of a chunk extension value");
            break;
          case EXT_TOKEN:
            if (TCHAR[c] !== 0) break;
            if (c === CR) state = SIZE_LF;
            else if (c === 59) state = EXT_NAME_START;
            else if (c === 32 || c === 9) state = BWS_SEMI;
            else throw unexpected(c, "in a chunk extension value");
            break;
          case EXT_QUOTED:
            if (c === 34) state = EXT_QUOTED_END;
            else if (c === 92) state = EXT_QUOTED_PAIR;
            else if (!(CLASS[c] & QDTEXT)) throw unexpected(c, "in a quoted chunk extension");
            break;
          case EXT_QUOTED_PAIR:
            if (!(CLASS[c] & FIELD)) throw unexpected(c, "in a quoted chunk extension");
            state = EXT_QUOTED;
            break;
          case EXT_QUOTED_END:
            if (c === CR) state = SIZE_LF;
            else if (c === 59) state = EXT_NAME_START;
            else if (c === 32 || c === 9) state = BWS_SEMI;
            else throw unexpected(c, "after a quoted chunk extension");
            break;
          case SIZE_LF:
            if (c !== LF) throw unexpected(c, "after CR in a chunk-size line");
            line = 0;
            state = remaining === 0 ? TRAILER_LINE : DATA;
            // The trailer section counts from here; the last chunk's line is not part of it.
            continue;
          case DATA_CR:
            if (c !== CR) throw unexpected(c, "instead of CRLF after chunk data");
            state = DATA_LF;
            break;
          case DATA_LF:
            if (c !== LF) throw unexpected(c, "instead of CRLF after chunk data");
            state = SIZE_START;
            line = 0;
            continue;
          case TRAILER_LINE:
            if (c === CR) state = FINAL_LF;
            else if (TCHAR[c] !== 0) state = TRAILER_NAME;
            else if (c === 32 || c === 9) throw bad("obsolete line folding in the trailer section");
            else throw unexpected(c, "at the start of a trailer field");
            break;
          case TRAILER_NAME:
            if (c === 58) state = TRAILER_VALUE;
            else if (TCHAR[c] === 0) throw unexpected(c, "in a trailer field name");
            break;
          case TRAILER_VALUE:
            if (c === CR) state = TRAILER_LF;
            else if (!(CLASS[c] & FIELD)) throw unexpected(c, "in a trailer field value");
            break;
          case TRAILER_LF:
            if (c !== LF) throw unexpected(c, "after CR in the trailer section");
            state = TRAILER_LINE;
            break;
          case FINAL_LF:
            if (c !== LF) throw unexpected(c, "after CR at the end of the trailer section");
            state = DONE;
            break;
          default:
            throw bad(`internal state ${state}`);
        }
        line++;
        if (state === DONE) break;
        if (state >= TRAILER_LINE) {
          if (line > this.#maxTrailerSize) {
            throw bad(`trailer section longer than ${this.#maxTrailerSize} bytes`);
          }
        } else if (line > MAX_SIZE_LINE) {
          throw bad(`chunk-size line longer than ${MAX_SIZE_LINE} bytes`);
        }
      }
    } catch (err) {
      this.#state = FAILED;
      this.consumed = p - start;
      this.produced = 0;
      throw err;
    }
    this.#state = state;
    this.#remaining = remaining;
    this.#lineBytes = line;
    this.dataStart = p;
    this.consumed = p + n - start;
    this.produced = n;
    return n;
  }

  /**
   * Decodes as much of `buf[start, end)` as possible, writing chunk data to `out` from
   * `outStart`; sets {@link consumed} and {@link produced} and returns `produced`. `out` needs
   * room for `end - start` bytes; it may be `buf` itself with `outStart <= start` (in-place:
   * output never overtakes input). Stops after the body's final CRLF. Throws HttpError 400 on a
   * framing error.
   */
  decode(buf: Uint8Array, start: number, end: number, out: Uint8Array, outStart = 0): number {
    let p = start;
    let o = outStart;
    while (p < end) {
      const n = this.next(buf, p, end);
      if (n > 0) {
        const from = this.dataStart;
        if (out !== buf) out.set(buf.subarray(from, from + n), o);
        else if (o !== from) buf.copyWithin(o, from, from + n);
        o += n;
      }
      p += this.consumed;
      if (n === 0) break;
    }
    this.consumed = p - start;
    this.produced = o - outStart;
    return this.produced;
  }
}
