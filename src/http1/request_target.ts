/**
 * The URI parts of a request (RFC 9112 §3.2, RFC 3986 §3.2.2-§3.2.3): the request-target forms
 * other than origin-form, and the `host[:port]` grammar that Host and every authority must match.
 *
 * @module
 */

import { HttpError } from "./errors.ts";
import { equalsLower, HEX, isDigit } from "./char_classes.ts";

/** reg-name bytes (RFC 3986 unreserved / sub-delims) 1, "%" 2. */
const REG_NAME = new Uint8Array(256);
for (const c of "-._~!$&'()*+,;=0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  REG_NAME[c.charCodeAt(0)] = 1;
}
REG_NAME[37] = 2;

/** A request-target split up; `host` is the target's authority, or null when it has none. */
export interface TargetParts {
  path: string;
  query: string;
  host: string | null;
}

function fail(detail: string, target: string): HttpError {
  return new HttpError(400, `Cannot parse request head: ${detail} ${JSON.stringify(target)}`);
}

/**
 * Splits a request-target that does not start with "/": asterisk-form ("*", OPTIONS only),
 * authority-form (CONNECT only, `host:port`; path ""), absolute-form (http or https with a
 * valid authority and no userinfo; path "/" when empty). Anything else is HttpError 400.
 * CONNECT with any other form is 400 too.
 */
export function splitOtherTarget(method: string, target: string): TargetParts {
  if (method === "CONNECT") {
    if (!isValidHostPort(target, 0, target.length, true)) {
      throw fail("bad CONNECT target", target);
    }
    return { path: "", query: "", host: null };
  }
  if (target === "*") {
    if (method !== "OPTIONS") throw fail("asterisk-form for a method other than OPTIONS", target);
    return { path: "*", query: "", host: null };
  }
  const authorityStart = schemeLength(target);
  if (authorityStart === 0) throw fail("bad request-target", target);
  let a = authorityStart;
  while (a < target.length && target.charCodeAt(a) !== 47 && target.charCodeAt(a) !== 63) a++;
  if (!isValidHostPort(target, authorityStart, a, false)) {
    throw fail("bad authority in", target);
  }
  const q = target.indexOf("?", a);
  const path = q === -1 ? target.slice(a) : target.slice(a, q);
  return {
    path: path === "" ? "/" : path,
    query: q === -1 ? "" : target.slice(q),
    host: target.slice(authorityStart, a),
  };
}

/** Length of a leading "http://" or "https://" (case-insensitive), else 0. */
function schemeLength(t: string): number {
  if (equalsLower(t, 0, 7, "http://")) return 7;
  if (equalsLower(t, 0, 8, "https://")) return 8;
  return 0;
}

/**
 * Whether `s[a, b)` is `uri-host [":" port]` (RFC 3986 §3.2.2-§3.2.3, RFC 9110 §7.2) with a
 * non-empty host: a reg-name (unreserved, sub-delims, %XX), or an IP-literal in brackets.
 * `port` required: the ":" port part must be there and have digits (authority-form).
 */
export function isValidHostPort(s: string, a: number, b: number, port: boolean): boolean {
  let i = a;
  if (i < b && s.charCodeAt(i) === 91) {
    const close = s.indexOf("]", i);
    if (close === -1 || close >= b || !isIpLiteral(s, i + 1, close)) return false;
    i = close + 1;
  } else {
    for (; i < b; i++) {
      const c = s.charCodeAt(i);
      const k = c < 256 ? REG_NAME[c] : 0;
      if (k === 1) continue;
      if (k === 0) break;
      if (i + 2 >= b || !isHexAt(s, i + 1) || !isHexAt(s, i + 2)) return false;
      i += 2;
    }
    if (i === a) return false;
  }
  if (i === b) return !port;
  if (s.charCodeAt(i) !== 58) return false;
  if (port && i + 1 === b) return false;
  for (i++; i < b; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

function isHexAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c < 256 && HEX[c] !== 0;
}

/** IPv6address or IPvFuture between the brackets of an IP-literal (RFC 3986 §3.2.2). */
function isIpLiteral(s: string, a: number, b: number): boolean {
  if (a < b && (s.charCodeAt(a) | 0x20) === 118) {
    // IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
    let i = a + 1;
    while (i < b && isHexAt(s, i)) i++;
    if (i === a + 1 || i >= b - 1 || s.charCodeAt(i) !== 46) return false;
    for (i++; i < b; i++) {
      const c = s.charCodeAt(i);
      if (c !== 58 && (c > 255 || REG_NAME[c] !== 1)) return false;
    }
    return true;
  }
  return isIpv6(s, a, b);
}

/** RFC 4291 text form: 8 groups of 1-4 hex digits, one "::" at most, an IPv4 tail allowed. */
function isIpv6(s: string, a: number, b: number): boolean {
  let groups = 0;
  let elided = false;
  let i = a;
  if (i + 1 < b && s.charCodeAt(i) === 58 && s.charCodeAt(i + 1) === 58) {
    elided = true;
    i += 2;
    if (i === b) return true;
  }
  while (true) {
    let j = i;
    while (j < b && j - i < 5 && isHexAt(s, j)) j++;
    if (j < b && s.charCodeAt(j) === 46) {
      if (!isIpv4(s, i, b)) return false;
      groups += 2;
      break;
    }
    if (j === i || j - i > 4) return false;
    groups++;
    if (j === b) break;
    if (s.charCodeAt(j) !== 58) return false;
    j++;
    if (j < b && s.charCodeAt(j) === 58) {
      if (elided) return false;
      elided = true;
      j++;
      if (j === b) break;
    } else if (j === b) {
      return false;
    }
    i = j;
  }
  return elided ? groups <= 7 : groups === 8;
}

/** dec-octet "." dec-octet "." dec-octet "." dec-octet (RFC 3986 §3.2.2). */
function isIpv4(s: string, a: number, b: number): boolean {
  let parts = 0;
  let i = a;
  while (true) {
    const d = i;
    let value = 0;
    while (i < b && isDigit(s.charCodeAt(i)) && i - d < 4) {
      value = value * 10 + s.charCodeAt(i++) - 48;
    }
    const len = i - d;
    if (len === 0 || len > 3 || value > 255 || (len > 1 && s.charCodeAt(d) === 48)) return false;
    parts++;
    if (i === b) return parts === 4;
    if (parts === 4 || s.charCodeAt(i) !== 46) return false;
    i++;
  }
}
