/**
 * Hand-written HTTP/1.1 response head parser (RFC 9112 §4-§6) working on the connection's read
 * buffer: finds the end of the head in bytes, decodes it once as latin1 and splits it.
 *
 * @module
 */

import { FieldPositions } from "../http1/field_positions.ts";
import { knownName } from "../http1/known_names.ts";
import { decodeAscii, latin1 } from "../http1/ascii_text.ts";
import { UpstreamError } from "./errors.ts";

/** A parsed response head plus the framing facts the client needs. */
export interface ResponseHead {
  status: number;
  statusText: string;
  /** In order, repeated names kept, names lower-cased. */
  headers: [string, string][];
  /** Validated Content-Length, or null when absent. */
  contentLength: number | null;
  /** A Transfer-Encoding header was present. */
  hasTransferEncoding: boolean;
  /** The final transfer coding is chunked. */
  chunked: boolean;
  /** The upstream allows reusing the connection (HTTP/1.1 without close, or 1.0 keep-alive). */
  keepAlive: boolean;
  /** Buffer index just after the head's empty line. */
  end: number;
}

const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/**
 * Finds the end of a head in `buf[start, end)`: the index after the empty line, or -1 when more
 * bytes are needed. Lines end in CRLF or a bare LF. `from` resumes a scan: bytes before it were
 * scanned already (it must be at most the previous `end` - 3).
 */
export function findHeadEnd(buf: Uint8Array, start: number, end: number, from = start): number {
  let i = from;
  while (true) {
    const lf = buf.indexOf(10, i);
    if (lf === -1 || lf >= end) return -1;
    const n1 = lf + 1;
    if (n1 < end) {
      const c = buf[n1];
      if (c === 10) return n1 + 1;
      if (c === 13) {
        if (n1 + 1 >= end) return -1;
        if (buf[n1 + 1] === 10) return n1 + 2;
      }
    } else return -1;
    i = n1;
  }
}

function protocol(detail: string, line: string): UpstreamError {
  const shown = line.length > 80 ? line.slice(0, 80) + "…" : line;
  return new UpstreamError("protocol", `Cannot parse upstream response "${shown}": ${detail}`);
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * Parses the head that ends at `headEnd` (from {@link findHeadEnd}). Throws UpstreamError
 * "protocol" on a malformed status line, header line or framing headers.
 */
export function parseResponseHead(buf: Uint8Array, start: number, headEnd: number): ResponseHead {
  const head = readResponseHeadIn(buf, start, headEnd);
  if (head === null) throw protocol("incomplete head", latin1(buf, start, headEnd));
  return head;
}

/** Token bytes of a field name (RFC 9110 §5.6.2). */
const NAME = new Uint8Array(256);
for (let c = 0; c < 128; c++) NAME[c] = TCHAR[c];
/** Bytes a field value or reason phrase may hold: HTAB, visible ASCII, space, obs-text. */
const TEXT = new Uint8Array(256);
for (let c = 0; c < 256; c++) TEXT[c] = c === 9 || (c >= 32 && c !== 127) ? 1 : 0;

/** Field positions of the head being read (flags: 1 when the name has an upper-case letter). */
const fieldPositions = new FieldPositions();

/**
 * Reads a response head from `buf[start, end)` in one pass over its bytes (line ends, names,
 * values and their checks), then decodes it once: the head, or null when it is not complete yet.
 * Throws UpstreamError "protocol" for a malformed head as soon as the bad byte is seen.
 */
export function readResponseHeadIn(
  buf: Uint8Array,
  start: number,
  end: number,
): ResponseHead | null {
  // Status line: HTTP/1.x SP 3DIGIT [SP reason] (CR)LF.
  let i = start;
  while (i < end && buf[i] !== 10) i++;
  if (i === end) return null;
  const statusEnd = i > start && buf[i - 1] === 13 ? i - 1 : i;
  let obs = 0;
  let badReason = false;
  for (let k = start + 13; k < statusEnd; k++) {
    const c = buf[k];
    if (TEXT[c] === 0) badReason = true;
    obs |= c;
  }
  // Header lines: name ":" OWS value OWS (CR)LF, up to the empty line.
  let p = i + 1;
  let n = 0;
  let headEnd = -1;
  while (true) {
    if (p >= end) return null;
    let c = buf[p];
    if (c === 10) {
      headEnd = p + 1;
      break;
    }
    if (c === 13) {
      if (p + 1 >= end) return null;
      if (buf[p + 1] === 10) {
        headEnd = p + 2;
        break;
      }
    }
    if (c === 32 || c === 9) throw protocol("obsolete line folding", lineText(buf, p, end));
    let j = p;
    let upper = 0;
    while (j < end && NAME[c = buf[j]] !== 0) {
      if (c <= 90 && c >= 65) upper = 1;
      j++;
    }
    if (j === end) return null;
    if (c !== 58 || j === p) {
      const line = lineText(buf, p, end);
      throw protocol(c === 58 || !line.includes(":") ? "bad header line" : "bad header name", line);
    }
    let vs = j + 1;
    while (vs < end && (buf[vs] === 32 || buf[vs] === 9)) vs++;
    let k = vs;
    while (k < end && TEXT[c = buf[k]] !== 0) {
      obs |= c;
      k++;
    }
    if (k === end) return null;
    let next: number;
    if (c === 10) next = k + 1;
    else if (c === 13 && k + 1 < end && buf[k + 1] === 10) next = k + 2;
    else if (c === 13 && k + 1 >= end) return null;
    else throw protocol("control character in header value", lineText(buf, p, end));
    let ve = k;
    while (ve > vs && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--;
    fieldPositions.set(n, p - start, j - start, vs - start, ve - start, upper);
    n++;
    p = next;
  }

  // One decode of the whole head (ASCII nearly always: one native call), then slices of it.
  const s = obs < 128 ? decodeAscii(buf.subarray(start, headEnd)) : latin1(buf, start, headEnd);
  const statusLine = s.slice(0, statusEnd - start);
  if (
    statusLine.length < 12 || !statusLine.startsWith("HTTP/1.") ||
    !isDigit(statusLine.charCodeAt(7)) || statusLine.charCodeAt(8) !== 32 ||
    !isDigit(statusLine.charCodeAt(9)) || !isDigit(statusLine.charCodeAt(10)) ||
    !isDigit(statusLine.charCodeAt(11)) ||
    (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)
  ) {
    throw protocol("bad status line", statusLine);
  }
  const http10 = statusLine.charCodeAt(7) === 48;
  const status = (statusLine.charCodeAt(9) - 48) * 100 + (statusLine.charCodeAt(10) - 48) * 10 +
    statusLine.charCodeAt(11) - 48;
  if (status < 100) throw protocol("bad status code", statusLine);
  if (badReason) throw protocol("control character in reason phrase", statusLine);
  const statusText = statusLine.length > 13 ? statusLine.slice(13) : "";

  const fields = fieldPositions.at;
  const headers: [string, string][] = [];
  let contentLength: number | null = null;
  let hasTransferEncoding = false;
  let chunked = false;
  let close = false;
  let keepAliveToken = false;
  for (let h = 0; h < n; h++) {
    const o = h * 5;
    const ns = fields[o];
    const ne = fields[o + 1];
    const name = knownName(s, ns, ne) ??
      (fields[o + 4] !== 0 ? lowerName(s.slice(ns, ne)) : s.slice(ns, ne));
    const value = s.slice(fields[o + 2], fields[o + 3]);
    headers.push([name, value]);
    switch (name) {
      case "content-length": {
        const len = parseContentLength(value);
        if (len === null || (contentLength !== null && contentLength !== len)) {
          throw protocol("bad or conflicting Content-Length", s.slice(ns, fields[o + 3]));
        }
        contentLength = len;
        break;
      }
      case "transfer-encoding": {
        hasTransferEncoding = true;
        const codings = value.toLowerCase().split(",");
        const last = codings[codings.length - 1].trim();
        chunked = last === "chunked";
        break;
      }
      case "connection": {
        // The usual values without splitting.
        if (value === "keep-alive" || value === "Keep-Alive") {
          keepAliveToken = true;
          break;
        }
        if (value === "close") {
          close = true;
          break;
        }
        for (const token of value.toLowerCase().split(",")) {
          const t = token.trim();
          if (t === "close") close = true;
          else if (t === "keep-alive") keepAliveToken = true;
        }
        break;
      }
    }
  }
  if (hasTransferEncoding && contentLength !== null) {
    throw protocol("both Content-Length and Transfer-Encoding", statusLine);
  }
  return {
    status,
    statusText,
    headers,
    contentLength,
    hasTransferEncoding,
    chunked,
    keepAlive: !close && (!http10 || keepAliveToken),
    end: headEnd,
  };
}

/** The line at `p` as text, for an error message (up to its end or the buffered bytes'). */
function lineText(buf: Uint8Array, p: number, end: number): string {
  let e = p;
  while (e < end && e - p < 200 && buf[e] !== 10 && buf[e] !== 13) e++;
  return latin1(buf, p, e);
}

/** Lower-cased header names as upstreams spell them ("Content-Type"), remembered (bounded). */
const lowerNames = new Map<string, string>();

function lowerName(name: string): string {
  let lower = lowerNames.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    if (lowerNames.size < 512) lowerNames.set(name, lower);
  }
  return lower;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** "12" or "12, 12" → 12; anything else (empty, signs, differing list members) → null. */
function parseContentLength(v: string): number | null {
  let result: number | null = null;
  let i = 0;
  while (i <= v.length) {
    let j = v.indexOf(",", i);
    if (j === -1) j = v.length;
    let a = i;
    let b = j;
    while (a < b && isOws(v.charCodeAt(a))) a++;
    while (b > a && isOws(v.charCodeAt(b - 1))) b--;
    if (a === b || b - a > 15) return null;
    let n = 0;
    for (let k = a; k < b; k++) {
      const c = v.charCodeAt(k);
      if (!isDigit(c)) return null;
      n = n * 10 + c - 48;
    }
    if (result !== null && result !== n) return null;
    result = n;
    i = j + 1;
  }
  return result;
}
