/**
 * The request fields that decide framing and connection handling, read strictly: Content-Length
 * (RFC 9110 §8.6), Transfer-Encoding (RFC 9112 §6.1, §6.3) and Connection (RFC 9110 §7.6.1).
 *
 * @module
 */

import { HttpError } from "./errors.ts";
import { equalsLower, TCHAR } from "./char_classes.ts";

/** Longest Content-Length accepted: 15 digits stay below Number.MAX_SAFE_INTEGER. */
const MAX_LENGTH_DIGITS = 15;
const SP = 32;
const HTAB = 9;

function fail(status: number, detail: string): HttpError {
  return new HttpError(status, `Cannot parse request head: ${detail}`);
}

/** 1*DIGIT, at most MAX_LENGTH_DIGITS of them (RFC 9110 §8.6); no sign, space or list. */
export function parseContentLength(v: string): number {
  if (v.length === 0 || v.length > MAX_LENGTH_DIGITS) {
    throw fail(400, `bad Content-Length ${JSON.stringify(v)}`);
  }
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) throw fail(400, `bad Content-Length ${JSON.stringify(v)}`);
    n = n * 10 + c - 48;
  }
  return n;
}

/**
 * Validates a Transfer-Encoding value (RFC 9112 §6.1, §6.3): a list of tokens. Only exactly
 * "chunked" is accepted; other codings before chunked are 501; anything else is 400.
 */
export function checkTransferEncoding(v: string): true {
  let i = 0;
  let codings = 0;
  let chunkedSeen = false;
  while (true) {
    while (i < v.length && (v.charCodeAt(i) === SP || v.charCodeAt(i) === HTAB)) i++;
    const a = i;
    while (i < v.length && TCHAR[v.charCodeAt(i)] !== 0) i++;
    if (i === a || chunkedSeen) {
      throw fail(400, `bad Transfer-Encoding ${JSON.stringify(v)}: chunked must end it`);
    }
    chunkedSeen = equalsLower(v, a, i, "chunked");
    codings++;
    while (i < v.length && (v.charCodeAt(i) === SP || v.charCodeAt(i) === HTAB)) i++;
    if (i === v.length) break;
    if (v.charCodeAt(i) !== 44) throw fail(400, `bad Transfer-Encoding ${JSON.stringify(v)}`);
    i++;
  }
  if (!chunkedSeen) {
    throw fail(400, `bad Transfer-Encoding ${JSON.stringify(v)}: chunked must end it`);
  }
  if (codings > 1) {
    throw fail(501, `transfer codings other than chunked are not supported: ${JSON.stringify(v)}`);
  }
  return true;
}

/** Connection options as bits, from {@link connectionTokens}. */
export const CONN_CLOSE = 1;
export const CONN_KEEP_ALIVE = 2;
export const CONN_UPGRADE = 4;

/** The Connection options bws acts on, as CONN_* bits; other tokens are ignored. */
export function connectionTokens(v: string): number {
  let bits = 0;
  let i = 0;
  while (i < v.length) {
    let e = v.indexOf(",", i);
    if (e === -1) e = v.length;
    let a = i;
    let b = e;
    while (a < b && (v.charCodeAt(a) === SP || v.charCodeAt(a) === HTAB)) a++;
    while (b > a && (v.charCodeAt(b - 1) === SP || v.charCodeAt(b - 1) === HTAB)) b--;
    if (equalsLower(v, a, b, "close")) bits |= CONN_CLOSE;
    else if (equalsLower(v, a, b, "keep-alive")) bits |= CONN_KEEP_ALIVE;
    else if (equalsLower(v, a, b, "upgrade")) bits |= CONN_UPGRADE;
    i = e + 1;
  }
  return bits;
}
