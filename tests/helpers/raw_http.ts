/**
 * A raw-socket HTTP/1.1 client for end-to-end tests that must see the bytes on the wire: the
 * response head as sent, the body still compressed (de-chunked), and a decoder per coding.
 *
 * @module
 */

import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from "node:zlib";
import { concat } from "./bytes.ts";

/** A response as it came over the socket. */
export interface RawResponse {
  readonly status: number;
  /** Lower-case names; repeated fields joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  /** The body bytes (de-chunked when chunked), still content-coded. */
  readonly body: Uint8Array;
}

const encoder = new TextEncoder();

/**
 * Sends one request with `Connection: close` to 127.0.0.1:`port` and reads the answer to the
 * end (at most `ms` milliseconds). `headers` are sent as given, after Host.
 */
export async function rawExchange(
  port: number,
  method: string,
  target: string,
  headers: Readonly<Record<string, string>> = {},
  ms = 5000,
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => closeQuietly(conn), ms);
  const parts: Uint8Array[] = [];
  try {
    let head = `${method} ${target} HTTP/1.1\r\nhost: localhost\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    await conn.write(encoder.encode(head + "connection: close\r\n\r\n"));
    const buf = new Uint8Array(64 * 1024);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      parts.push(buf.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
  return parseResponse(concat(parts), method === "HEAD");
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}

/** Parses one complete response (head and body) from `bytes`. */
export function parseResponse(bytes: Uint8Array, head = false): RawResponse {
  const end = indexOfCrlfCrlf(bytes);
  if (end < 0) throw new Error(`Cannot parse response: no complete head in ${bytes.length} bytes`);
  const lines = new TextDecoder().decode(bytes.subarray(0, end)).split("\r\n");
  const status = Number(lines[0].split(" ")[1]);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  let body = bytes.subarray(end + 4);
  if (head || status === 304 || status === 204) body = new Uint8Array(0);
  else if (headers.get("transfer-encoding") === "chunked") body = dechunk(body);
  else if (headers.has("content-length")) {
    const length = Number(headers.get("content-length"));
    if (body.length !== length) {
      throw new Error(`Cannot parse response: ${body.length} body bytes for length ${length}`);
    }
  }
  return { status, headers, body };
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function dechunk(b: Uint8Array): Uint8Array {
  const out: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    let eol = at;
    while (eol + 1 < b.length && !(b[eol] === 13 && b[eol + 1] === 10)) eol++;
    if (eol + 1 >= b.length) throw new Error("Cannot de-chunk body: truncated size line");
    const size = parseInt(new TextDecoder().decode(b.subarray(at, eol)), 16);
    if (size === 0) return concat(out);
    at = eol + 2;
    if (at + size + 2 > b.length) throw new Error("Cannot de-chunk body: truncated chunk");
    out.push(b.subarray(at, at + size));
    at += size + 2;
  }
}

/** The body decoded by its Content-Encoding (none: the body itself). */
export function decodedBody(res: RawResponse): Uint8Array {
  const coding = res.headers.get("content-encoding");
  switch (coding) {
    case undefined:
      return res.body;
    case "gzip":
      return new Uint8Array(gunzipSync(res.body));
    case "br":
      return new Uint8Array(brotliDecompressSync(res.body));
    case "zstd":
      return new Uint8Array(zstdDecompressSync(res.body));
    default:
      throw new Error(`Cannot decode body: unknown coding "${coding}"`);
  }
}
