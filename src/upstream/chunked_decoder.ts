/**
 * Incremental decoder for `Transfer-Encoding: chunked` (RFC 9112 §7.1): chunk extensions are
 * ignored, trailer fields are read and dropped.
 *
 * @module
 */

import { UpstreamError } from "./errors.ts";

const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILER = 3;
const DONE = 4;

/** Largest chunk size accepted: 12 hex digits, far below Number.MAX_SAFE_INTEGER. */
const MAX_CHUNK = 0xffffffffffff;
/** Longest chunk-size line (with extensions) or trailer section we accept. */
const MAX_LINE = 16 * 1024;

function bad(detail: string): UpstreamError {
  return new UpstreamError("protocol", `Cannot decode chunked upstream body: ${detail}`);
}

/** One decoder per response; feed it buffered bytes with {@link ChunkedDecoder.decode}. */
export class ChunkedDecoder {
  #state = SIZE;
  #remaining = 0;
  #trailerBytes = 0;
  /** Bytes of input consumed by the last `decode` call. */
  consumed = 0;
  /** Bytes written to `out` by the last `decode` call. */
  produced = 0;

  /** True once the last chunk and the trailer section were read. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /**
   * Decodes as much of `buf[start, end)` as possible, copying chunk data into `out` from
   * offset `outStart` (`out` must hold `end - start` more bytes). `out` may be `buf` itself with
   * `outStart <= start`: decoding in place never overtakes the input. Sets `consumed` and
   * `produced`.
   */
  decode(
    buf: Uint8Array,
    start: number,
    end: number,
    out: Uint8Array | null,
    outStart = 0,
  ): void {
    let p = start;
    let o = outStart;
    const inPlace = out === buf;
    loop: while (p < end) {
      switch (this.#state) {
        case SIZE: {
          const lf = buf.indexOf(10, p);
          if (lf === -1 || lf >= end) {
            if (end - p > MAX_LINE) throw bad("chunk size line too long");
            break loop;
          }
          let n = 0;
          let i = p;
          let digits = 0;
          for (; i < lf; i++) {
            const c = buf[i];
            const v = c >= 48 && c <= 57
              ? c - 48
              : c >= 97 && c <= 102
              ? c - 87
              : c >= 65 && c <= 70
              ? c - 55
              : -1;
            if (v < 0) break;
            digits++;
            n = n * 16 + v;
            // Leading zeros are allowed (RFC 9112 §7.1); the value must stay a safe integer.
            if (n > MAX_CHUNK) throw bad("chunk size too large");
          }
          if (digits === 0) throw bad("missing chunk size");
          // After the digits: optional BWS, then ";ext" (ignored) or the line end.
          while (i < lf && (buf[i] === 32 || buf[i] === 9)) i++;
          if (i < lf && buf[i] !== 59 && !(buf[i] === 13 && i === lf - 1)) {
            throw bad("bad chunk size line");
          }
          p = lf + 1;
          if (n === 0) {
            this.#state = TRAILER;
          } else {
            this.#remaining = n;
            this.#state = DATA;
          }
          break;
        }
        case DATA: {
          const take = Math.min(this.#remaining, end - p);
          if (inPlace) {
            if (o !== p) buf.copyWithin(o, p, p + take);
          } else if (out !== null) out.set(buf.subarray(p, p + take), o);
          o += take;
          p += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = DATA_END;
          break;
        }
        case DATA_END: {
          const c = buf[p];
          if (c === 10) {
            p += 1;
          } else if (c === 13) {
            if (p + 1 >= end) break loop;
            if (buf[p + 1] !== 10) throw bad("missing CRLF after chunk data");
            p += 2;
          } else {
            throw bad("missing CRLF after chunk data");
          }
          this.#state = SIZE;
          break;
        }
        case TRAILER: {
          const lf = buf.indexOf(10, p);
          if (lf === -1 || lf >= end) {
            if (this.#trailerBytes + end - p > MAX_LINE) throw bad("trailer section too large");
            break loop;
          }
          const empty = lf === p || (lf === p + 1 && buf[p] === 13);
          this.#trailerBytes += lf + 1 - p;
          if (this.#trailerBytes > MAX_LINE) throw bad("trailer section too large");
          p = lf + 1;
          if (empty) {
            this.#state = DONE;
            break loop;
          }
          break;
        }
        default:
          break loop;
      }
    }
    this.consumed = p - start;
    this.produced = o - outStart;
  }
}
