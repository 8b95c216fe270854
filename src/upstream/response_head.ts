/**
 * Hand-written HTTP/1.1 response head parser (RFC 9112 §4-§6) working on the connection's read
 * buffer: finds the end of the head in bytes, decodes it once as latin1 and splits it.
 *
 * @module
 */

import { knownName } from "../http1/known_names.ts";
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
 * bytes are needed. Lines end in CRLF or a bare LF.
 */
export function findHeadEnd(buf: Uint8Array, start: number, end: number): number {
  let i = start;
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

const utf8 = new TextDecoder();

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
  if (ascii) return utf8.decode(buf.subarray(start, end));
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
  const s = latin1(buf, start, headEnd);
  let nl = s.indexOf("\n");
  let lineEnd = nl > 0 && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
  const statusLine = s.slice(0, lineEnd);
  // HTTP/1.x SP 3DIGIT [SP reason]
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
  const statusText = statusLine.length > 13 ? statusLine.slice(13) : "";
  if (hasCtl(statusText)) throw protocol("control character in reason phrase", statusLine);

  const headers: [string, string][] = [];
  let contentLength: number | null = null;
  let hasTransferEncoding = false;
  let chunked = false;
  let close = false;
  let keepAliveToken = false;
  let p = nl + 1;
  while (p < s.length) {
    nl = s.indexOf("\n", p);
    lineEnd = nl > p && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    if (lineEnd === p) break; // the empty line
    const first = s.charCodeAt(p);
    if (isOws(first)) throw protocol("obsolete line folding", s.slice(p, lineEnd));
    const colon = s.indexOf(":", p);
    if (colon === -1 || colon >= lineEnd || colon === p) {
      throw protocol("bad header line", s.slice(p, lineEnd));
    }
    let upper = false;
    for (let i = p; i < colon; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128 || TCHAR[c] === 0) throw protocol("bad header name", s.slice(p, lineEnd));
      if (c <= 90 && c >= 65) upper = true;
    }
    let vs = colon + 1;
    let ve = lineEnd;
    while (vs < ve && isOws(s.charCodeAt(vs))) vs++;
    while (ve > vs && isOws(s.charCodeAt(ve - 1))) ve--;
    const name = knownName(s, p, colon) ??
      (upper ? lowerName(s.slice(p, colon)) : s.slice(p, colon));
    const value = s.slice(vs, ve);
    if (hasCtl(value)) throw protocol("control character in header value", s.slice(p, lineEnd));
    headers.push([name, value]);
    switch (name) {
      case "content-length": {
        const n = parseContentLength(value);
        if (n === null || (contentLength !== null && contentLength !== n)) {
          throw protocol("bad or conflicting Content-Length", s.slice(p, lineEnd));
        }
        contentLength = n;
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
    p = nl + 1;
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

function hasCtl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return true;
  }
  return false;
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
