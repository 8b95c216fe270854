/** INTERIM stub (replaced by the parser branch). @module */
import { HttpError } from "./errors.ts";
import { isValidHost } from "../server/valid_host.ts";
export interface HeadLimits {
  maxHeaderSize: number;
  maxHeaders: number;
}
export interface RequestHead {
  method: string;
  target: string;
  path: string;
  query: string;
  version: "1.0" | "1.1";
  headers: [string, string][];
  host: string | null;
  contentLength: number | null;
  chunked: boolean;
  keepAlive: boolean;
  expectContinue: boolean;
  upgrade: string | null;
  end: number;
}
export function isHttp2Preface(buf: Uint8Array, start: number, end: number): boolean {
  const p = "PRI * HTTP/2.0\r\n";
  if (end - start < p.length) return false;
  for (let i = 0; i < p.length; i++) if (buf[start + i] !== p.charCodeAt(i)) return false;
  return true;
}
export function findRequestHeadEnd(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits,
): number {
  let i = start;
  while (i < end) {
    const lf = buf.indexOf(10, i);
    if (lf < 0 || lf >= end) break;
    if (lf === start || buf[lf - 1] !== 13) throw new HttpError(400, "bare LF");
    if (lf + 2 < end && buf[lf + 1] === 13 && buf[lf + 2] === 10) {
      if (lf + 3 - start > limits.maxHeaderSize) throw new HttpError(431, "head too large");
      return lf + 3;
    }
    i = lf + 1;
  }
  if (end - start > limits.maxHeaderSize) throw new HttpError(431, "head too large");
  return -1;
}
const dec = new TextDecoder();
export function parseRequestHead(
  buf: Uint8Array,
  start: number,
  headEnd: number,
  limits: HeadLimits,
): RequestHead {
  const s = dec.decode(buf.subarray(start, headEnd - 4));
  const lines = s.split("\r\n");
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.([01])$/.exec(lines[0]);
  if (!m) throw new HttpError(400, "bad request line");
  if (lines.length - 1 > limits.maxHeaders) throw new HttpError(431, "too many headers");
  const headers: [string, string][] = [];
  let cl: number | null = null;
  let chunked = false;
  let te = false;
  let conn = "";
  let host: string | null = null;
  let hosts = 0;
  let expect = false;
  let upgrade: string | null = null;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    const c = l.indexOf(":");
    if (c <= 0 || /[\s]/.test(l[0]) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(l.slice(0, c))) {
      throw new HttpError(400, "bad header");
    }
    const name = l.slice(0, c).toLowerCase();
    const value = l.slice(c + 1).trim();
    if (/[\0-\x08\x0a-\x1f\x7f]/.test(value)) throw new HttpError(400, "bad value");
    headers.push([name, value]);
    if (name === "content-length") {
      if (!/^\d{1,15}$/.test(value)) throw new HttpError(400, "bad cl");
      if (cl !== null && cl !== Number(value)) throw new HttpError(400, "cl conflict");
      cl = Number(value);
    } else if (name === "transfer-encoding") {
      if (te) throw new HttpError(400, "te twice");
      te = true;
      const v = value.toLowerCase();
      if (v === "chunked") chunked = true;
      else if (v.endsWith("chunked") && !v.includes("identity")) throw new HttpError(501, "te");
      else throw new HttpError(400, "te");
    } else if (name === "connection") conn += "," + value.toLowerCase();
    else if (name === "host") {
      host = value;
      hosts++;
    } else if (name === "expect") expect = value.toLowerCase() === "100-continue";
    else if (name === "upgrade") upgrade = value;
  }
  const version = m[3] === "1" ? "1.1" : "1.0";
  if (te && cl !== null) throw new HttpError(400, "te+cl");
  if (te && version === "1.0") throw new HttpError(400, "te 1.0");
  if (hosts > 1 || (version === "1.1" && hosts === 0)) throw new HttpError(400, "host");
  if (host !== null && !isValidHost(host)) throw new HttpError(400, "host value");
  const tokens = conn.split(",").map((t) => t.trim());
  let target = m[2];
  let path = target;
  if (/^https?:\/\//i.test(target)) {
    const a = target.indexOf("//") + 2;
    const p = target.indexOf("/", a);
    host = target.slice(a, p < 0 ? undefined : p);
    path = p < 0 ? "/" : target.slice(p);
  } else if (target === "*") {
    if (m[1] !== "OPTIONS") throw new HttpError(400, "*");
  } else if (!target.startsWith("/")) {
    if (m[1] !== "CONNECT") throw new HttpError(400, "target");
  }
  const q = path.indexOf("?");
  const query = q < 0 ? "" : path.slice(q);
  if (q >= 0) path = path.slice(0, q);
  target = m[2];
  return {
    method: m[1],
    target,
    path,
    query,
    version,
    headers,
    host,
    contentLength: cl,
    chunked,
    keepAlive: version === "1.1" ? !tokens.includes("close") : tokens.includes("keep-alive"),
    expectContinue: expect,
    upgrade: tokens.includes("upgrade") ? upgrade : null,
    end: headEnd,
  };
}
