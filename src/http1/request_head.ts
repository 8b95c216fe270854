/**
 * Strict HTTP/1.1 request-head parser (RFC 9112 §2-§3, §5-§7; RFC 9110 §5, §7.2, §8.6) working
 * on the connection's read buffer. {@link findRequestHeadEnd} runs after every read and rejects
 * what can never become a valid head as soon as it is seen; {@link parseRequestHead} validates
 * the complete head byte by byte with lookup tables, decodes it once, and slices the strings.
 *
 * Stricter than llhttp and hyper on purpose: CRLF only (no bare LF), single spaces in the request
 * line, visible ASCII in the target, no obs-fold, one Host, Transfer-Encoding only as exactly
 * "chunked" and never with Content-Length or in HTTP/1.0.
 *
 * @module
 */

import { HttpError } from "./errors.ts";
import { equalsLower, isDigit, TCHAR } from "./char_classes.ts";
import {
  checkTransferEncoding,
  CONN_CLOSE,
  CONN_KEEP_ALIVE,
  CONN_UPGRADE,
  connectionTokens,
  parseContentLength,
} from "./framing_fields.ts";
import { isValidHostPort, splitOtherTarget } from "./request_target.ts";
import { FieldPositions } from "./field_positions.ts";
import { knownName } from "./known_names.ts";
import { decodeAscii, latin1 } from "./ascii_text.ts";

/** Limits the parser enforces; either one exceeded is answered 431. */
export interface HeadLimits {
  /** Longest head in bytes, request line and final empty line included. */
  maxHeaderSize: number;
  /** Most header field lines. */
  maxHeaders: number;
}

/** A parsed request head plus the framing facts the front end needs. */
export interface RequestHead {
  /** The method token, case-sensitive. */
  method: string;
  /** The request-target as received. */
  target: string;
  /**
   * Origin-form: the target before "?"; absolute-form: its path ("/" when empty); "*" for
   * asterisk-form; "" for authority-form (CONNECT, which the front end answers 501).
   */
  path: string;
  /** "" or "?..." byte-for-byte. */
  query: string;
  version: "1.0" | "1.1";
  /** Lower-cased names, values with OWS trimmed, arrival order, repeated names kept. */
  headers: [string, string][];
  /**
   * The authority of an absolute-form target, else the Host value; null only for HTTP/1.0
   * without Host. Always a valid `host[:port]`.
   */
  host: string | null;
  /** The validated Content-Length, or null when absent. */
  contentLength: number | null;
  /** The body is chunked ("Transfer-Encoding: chunked", the only coding accepted). */
  chunked: boolean;
  /** HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive". */
  keepAlive: boolean;
  /** "Expect: 100-continue" (case-insensitive). */
  expectContinue: boolean;
  /** The Upgrade value when Connection names "upgrade", else null. */
  upgrade: string | null;
  /** Buffer index just after the head. */
  end: number;
}

/** Empty lines (CRLF) skipped before a request line (RFC 9112 §2.2); more is an error. */
const MAX_EMPTY_LINES = 8;
const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;

/** For the head-end scan: 0 ordinary, 1 CR, 2 LF, 3 never allowed in a head. */
const SCAN = new Uint8Array(256);
/** field-value bytes: VCHAR, SP and HTAB 1, obs-text 2, anything else 0. */
const VALUE = new Uint8Array(256);
/** request-target bytes: visible ASCII 1. */
const TARGET = new Uint8Array(256);

for (let c = 0; c < 256; c++) {
  SCAN[c] = c === CR ? 1 : c === LF ? 2 : (c < 32 && c !== HTAB) || c === 127 ? 3 : 0;
  VALUE[c] = c === HTAB || (c >= 32 && c < 127) ? 1 : c >= 128 ? 2 : 0;
  TARGET[c] = c > 32 && c < 127 ? 1 : 0;
}

function fail(status: number, detail: string): HttpError {
  return new HttpError(status, `Cannot parse request head: ${detail}`);
}

/** Up to 60 bytes for an error message, controls escaped. */
function show(buf: Uint8Array, a: number, b: number): string {
  const shown = latin1(buf, a, Math.min(b, a + 60));
  return JSON.stringify(b - a > 60 ? shown + "…" : shown);
}

/** Index of the request line after up to MAX_EMPTY_LINES CRLFs; `end` when only CRLFs so far. */
function skipEmptyLines(buf: Uint8Array, start: number, end: number): number {
  let p = start;
  while (p < end && buf[p] === CR) {
    if (p + 1 === end) return end;
    if (buf[p + 1] !== LF) throw fail(400, "bare CR before the request line");
    p += 2;
    if ((p - start) >> 1 > MAX_EMPTY_LINES) {
      throw fail(400, `more than ${MAX_EMPTY_LINES} empty lines before the request line`);
    }
  }
  return p;
}

/**
 * Index just after the head's terminating CRLFCRLF in `buf[start, end)`, or -1 when more bytes
 * are needed. Throws HttpError 400 as soon as the bytes seen cannot start a valid head (a bare
 * LF, a CR not followed by LF, a control byte other than HTAB), and 431 when the head (counted
 * from the request line) does not end within `limits.maxHeaderSize` bytes.
 *
 * `from` (optional) is where a previous call with the same `start` stopped (its `end`): bytes
 * before it are not scanned again.
 */
export function findRequestHeadEnd(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits,
  from = start,
): number {
  const first = skipEmptyLines(buf, start, end);
  if (first === end) return -1;
  const max = first + limits.maxHeaderSize;
  // Resume one byte early: the previous call may have stopped on a CR whose LF had not arrived.
  let i = from - 1 > first ? from - 1 : first;
  for (; i < end; i++) {
    const k = SCAN[buf[i]];
    if (k === 0) continue;
    if (k === 1) {
      if (i + 1 === end) break;
      if (buf[i + 1] !== LF) throw fail(400, "CR not followed by LF");
      // An empty line: this CRLF directly follows the previous line's LF.
      if (i > first && buf[i - 1] === LF) {
        if (i + 2 > max) break;
        return i + 2;
      }
      i++;
    } else if (k === 2) {
      if (i === first || buf[i - 1] !== CR) throw fail(400, "bare LF as line end");
    } else {
      throw fail(400, `control byte 0x${buf[i].toString(16).padStart(2, "0")}`);
    }
  }
  if (end - first >= limits.maxHeaderSize) {
    throw fail(431, `head longer than ${limits.maxHeaderSize} bytes`);
  }
  return -1;
}

/** The 24 bytes an HTTP/2 client with prior knowledge starts with (RFC 9113 §3.4). */
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/**
 * Whether `buf[start, end)` begins with the complete HTTP/2 connection preface. Call it when
 * {@link parseRequestHead} threw an HttpError with `http2Preface` set, once 24 bytes are there.
 */
export function isHttp2Preface(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < PREFACE.length) return false;
  for (let i = 0; i < PREFACE.length; i++) {
    if (buf[start + i] !== PREFACE.charCodeAt(i)) return false;
  }
  return true;
}

/** Header positions of the head being parsed (flags: which letter cases the name has). */
const fieldPositions = new FieldPositions();

/**
 * Parses `buf[start, headEnd)` (`headEnd` from {@link findRequestHeadEnd}). Throws HttpError with
 * the status to answer: 400 malformed, 431 over a limit, 501 a transfer coding other than chunked,
 * 505 an HTTP version other than 1.0 / 1.1 (with `http2Preface` for "PRI * HTTP/2.0").
 */
export function parseRequestHead(
  buf: Uint8Array,
  start: number,
  headEnd: number,
  limits: HeadLimits,
): RequestHead {
  const first = skipEmptyLines(buf, start, headEnd);
  if (headEnd - first > limits.maxHeaderSize) {
    throw fail(431, `head longer than ${limits.maxHeaderSize} bytes`);
  }
  // The head must end in CRLFCRLF. Every scan below stops at a CR at the latest, so none of the
  // loops needs a bounds check.
  if (
    headEnd - first < 4 || buf[headEnd - 4] !== CR || buf[headEnd - 3] !== LF ||
    buf[headEnd - 2] !== CR || buf[headEnd - 1] !== LF
  ) {
    throw fail(400, "the head does not end with an empty line");
  }

  // Request line: method SP request-target SP HTTP-version CRLF.
  let i = first;
  while (TCHAR[buf[i]] !== 0) i++;
  if (i === first || buf[i] !== SP) {
    throw fail(400, `bad request line ${show(buf, first, lineEnd(buf, first))}`);
  }
  const methodEnd = i;
  const targetStart = ++i;
  while (TARGET[buf[i]] !== 0) i++;
  if (i === targetStart || buf[i] !== SP) {
    throw fail(400, `bad request line ${show(buf, first, lineEnd(buf, first))}`);
  }
  const targetEnd = i;
  const v = i + 1;
  if (
    buf[v] !== 72 || buf[v + 1] !== 84 || buf[v + 2] !== 84 || buf[v + 3] !== 80 ||
    buf[v + 4] !== 47 || !isDigit(buf[v + 5]) || buf[v + 6] !== 46 || !isDigit(buf[v + 7]) ||
    buf[v + 8] !== CR || buf[v + 9] !== LF
  ) {
    throw fail(400, `bad request line ${show(buf, first, lineEnd(buf, first))}`);
  }
  const major = buf[v + 5] - 48;
  const minor = buf[v + 7] - 48;
  if (major !== 1 || minor > 1) {
    const preface = major === 2 && minor === 0 && methodEnd - first === 3 &&
      buf[first] === 80 && buf[first + 1] === 82 && buf[first + 2] === 73 &&
      targetEnd - targetStart === 1 && buf[targetStart] === 42;
    throw new HttpError(
      505,
      `Cannot parse request head: HTTP version ${major}.${minor} is not supported`,
      { http2Preface: preface },
    );
  }

  // Header lines: field-name ":" OWS field-value OWS CRLF.
  let p = v + 10;
  let n = 0;
  let obsText = 0;
  const last = headEnd - 2;
  while (p < last) {
    const c = buf[p];
    if (c === SP || c === HTAB) {
      throw fail(
        400,
        n === 0 ? "whitespace before the first header line" : "obsolete line folding",
      );
    }
    let j = p;
    let upper = 0;
    for (let t = TCHAR[buf[j]]; t !== 0; t = TCHAR[buf[++j]]) upper |= t;
    if (j === p || buf[j] !== 58) {
      throw fail(400, `bad header name in ${show(buf, p, lineEnd(buf, p))}`);
    }
    let vs = j + 1;
    while (buf[vs] === SP || buf[vs] === HTAB) vs++;
    let k = vs;
    for (let t = VALUE[buf[k]]; t !== 0; t = VALUE[buf[++k]]) obsText |= t;
    if (buf[k] !== CR || buf[k + 1] !== LF) {
      throw fail(400, `bad byte in header value ${show(buf, p, lineEnd(buf, p))}`);
    }
    let ve = k;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    if (n === limits.maxHeaders) throw fail(431, `more than ${limits.maxHeaders} header fields`);
    fieldPositions.set(n, p - first, j - first, vs - first, ve - first, upper);
    n++;
    p = k + 2;
  }

  // One decode for the whole head: ASCII (nearly always) in one native call.
  const s = (obsText & 2) === 0 ? decodeAscii(buf.subarray(first, last)) : latin1(buf, first, last);
  const method = s.slice(0, methodEnd - first);
  const target = s.slice(targetStart - first, targetEnd - first);
  const version = minor === 1 ? "1.1" : "1.0";

  const positions = fieldPositions.at;
  const headers: [string, string][] = [];
  let hostCount = 0;
  let hostValue: string | null = null;
  let contentLength: number | null = null;
  let teCount = 0;
  let teValue = "";
  let connection = 0;
  let upgradeValue: string | null = null;
  let expectContinue = false;
  for (let h = 0; h < n; h++) {
    const o = h * 5;
    const ns = positions[o];
    const ne = positions[o + 1];
    let name = knownName(s, ns, ne);
    if (name === null) {
      name = s.slice(ns, ne);
      if (positions[o + 4] & 2) name = name.toLowerCase();
    }
    const value = s.slice(positions[o + 2], positions[o + 3]);
    headers.push([name, value]);
    switch (name) {
      case "host":
        hostCount++;
        hostValue = value;
        break;
      case "content-length": {
        const length = parseContentLength(value);
        if (contentLength !== null && contentLength !== length) {
          throw fail(400, "different Content-Length values");
        }
        contentLength = length;
        break;
      }
      case "transfer-encoding":
        teCount++;
        teValue = value;
        break;
      case "connection":
        connection |= connectionTokens(value);
        break;
      case "upgrade":
        upgradeValue = upgradeValue === null ? value : upgradeValue + ", " + value;
        break;
      case "expect":
        if (equalsLower(value, 0, value.length, "100-continue")) expectContinue = true;
        break;
    }
  }

  if (hostCount > 1) throw fail(400, "more than one Host");
  if (hostCount === 0 && version === "1.1") throw fail(400, "no Host in an HTTP/1.1 request");
  if (hostValue !== null && !isValidHostPort(hostValue, 0, hostValue.length, false)) {
    throw fail(400, `bad Host ${JSON.stringify(hostValue)}`);
  }

  let chunked = false;
  if (teCount > 0) {
    if (version === "1.0") throw fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (contentLength !== null) throw fail(400, "both Content-Length and Transfer-Encoding");
    if (teCount > 1) throw fail(400, "more than one Transfer-Encoding");
    chunked = checkTransferEncoding(teValue);
  }

  let path = target;
  let query = "";
  let host = hostValue;
  if (target.charCodeAt(0) === 47 && method !== "CONNECT") {
    const q = target.indexOf("?");
    if (q !== -1) {
      path = target.slice(0, q);
      query = target.slice(q);
    }
  } else {
    const parts = splitOtherTarget(method, target);
    path = parts.path;
    query = parts.query;
    if (parts.host !== null) host = parts.host;
  }

  const close = (connection & CONN_CLOSE) !== 0;
  return {
    method,
    target,
    path,
    query,
    version,
    headers,
    host,
    contentLength,
    chunked,
    keepAlive: version === "1.1" ? !close : !close && (connection & CONN_KEEP_ALIVE) !== 0,
    expectContinue,
    upgrade: (connection & CONN_UPGRADE) !== 0 ? upgradeValue : null,
    end: headEnd,
  };
}

/** Index of the CR or LF ending the line at `p` (for error messages). */
function lineEnd(buf: Uint8Array, p: number): number {
  let e = p;
  while (e < buf.length && buf[e] !== CR && buf[e] !== LF) e++;
  return e;
}
