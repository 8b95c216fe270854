/**
 * Compression of a whole response (proxied, or made by bws): the policy's checks, the
 * negotiated coding, the header edits and the body, in one call.
 *
 * A body of unknown length is read until `min_size` bytes (at most 64 KiB) have arrived before
 * the head goes out: a body that ends sooner is sent as it is, with its length. That wait is why
 * `text/event-stream` is never compressed; other slow streams see their first bytes once that
 * much has arrived (or the body ends), then every chunk as it arrives.
 *
 * @module
 */

import type { BodySource, HttpResponse } from "../http1/types.ts";
import { compressSource } from "./compress_body.ts";
import { compressSync } from "./levels.ts";
import type { Negotiated } from "./negotiate.ts";
import { compressedHeaders, type CompressionPolicy, withVary } from "./policy.ts";

/** The most bytes of a body of unknown length read ahead to learn whether it is small. */
export const MAX_PEEK = 64 * 1024;

/** What {@link compressResponse} needs besides the response. */
export interface CompressResponseOptions {
  readonly policy: CompressionPolicy;
  /** The request's method. */
  readonly method: string;
  /** The codings the client accepts, best first (from `Negotiator.negotiate`). */
  readonly accepted: Negotiated;
  /**
   * Hand on each compressed chunk as soon as its input arrived (proxied bodies); off for
   * bodies that arrive as fast as they can be read. @default true
   */
  readonly flushEachChunk?: boolean;
}

/**
 * `res` compressed when the policy allows and the client accepts a coding; `res` with
 * `Vary: Accept-Encoding` when it could have been; `res` itself otherwise. Rejects only when a
 * body of unknown length fails while its first bytes are read ahead (the body is cancelled).
 */
export async function compressResponse(
  res: HttpResponse,
  opts: CompressResponseOptions,
): Promise<HttpResponse> {
  const { policy, method } = opts;
  const body = res.body;
  if (body === null) return res;
  const length = body instanceof Uint8Array ? body.byteLength : res.length ?? null;
  if (!policy.eligible({ method, status: res.status, headers: res.headers, length })) return res;
  const algorithm = opts.accepted[0];
  if (algorithm === undefined) return { ...res, headers: withVary(res.headers) };

  if (body instanceof Uint8Array) {
    const compressed = compressSync(body, algorithm);
    // Not worth it (already compressed data in a text type): send it as it is.
    if (compressed.byteLength >= body.byteLength) return { ...res, headers: withVary(res.headers) };
    return { ...res, headers: compressedHeaders(res.headers, algorithm), body: compressed };
  }

  const flushEachChunk = opts.flushEachChunk ?? true;
  if (length !== null) {
    return {
      ...res,
      headers: compressedHeaders(res.headers, algorithm),
      body: compressSource(body, algorithm, { sizeHint: length, flushEachChunk }),
      length: null,
    };
  }

  const ahead = await readAhead(body, Math.min(policy.minSize, MAX_PEEK));
  if (ahead.ended) {
    if (ahead.bytes.byteLength < policy.minSize) {
      return { ...res, headers: withVary(res.headers), body: ahead.bytes, length: null };
    }
  }
  const rest = ahead.ended ? null : body;
  return {
    ...res,
    headers: compressedHeaders(res.headers, algorithm),
    body: compressSource(prepend(ahead.bytes, rest), algorithm, { flushEachChunk }),
    length: null,
  };
}

/** Reads (and copies) chunks until `limit` bytes have arrived or the body ends. */
async function readAhead(
  body: BodySource,
  limit: number,
): Promise<{ bytes: Uint8Array; ended: boolean }> {
  const parts: Uint8Array[] = [];
  let total = 0;
  let ended = false;
  try {
    while (total < limit || total === 0) {
      const chunk = await body.read();
      if (chunk === null) {
        ended = true;
        break;
      }
      parts.push(chunk.slice()); // valid only until the next read
      total += chunk.byteLength;
      if (limit === 0) break;
    }
  } catch (e) {
    body.cancel(e);
    throw e;
  }
  if (parts.length === 1) return { bytes: parts[0], ended };
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  return { bytes, ended };
}

/** A source that yields `first` (if not empty), then the rest of `rest` (if any). */
function prepend(first: Uint8Array, rest: BodySource | null): BodySource {
  let pending: Uint8Array | null = first.byteLength > 0 ? first : null;
  return {
    read() {
      if (pending !== null) {
        const chunk = pending;
        pending = null;
        return Promise.resolve(chunk);
      }
      return rest === null ? Promise.resolve(null) : rest.read();
    },
    cancel(reason?: unknown) {
      pending = null;
      rest?.cancel(reason);
    },
  };
}
