/**
 * Real backends for end-to-end tests: an echo server that reports what it received, and a raw
 * TCP server that answers with exact bytes.
 *
 * @module
 */

import { createHash } from "node:crypto";

export interface Seen {
  id: string;
  method: string;
  /** Raw request target path + query as the backend saw it. */
  path: string;
  headers: [string, string][];
  bodyLength: number;
  bodySha256: string;
}

export interface Backend {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  /** Every request seen, in order. */
  readonly seen: Seen[];
  close(): Promise<void>;
}

export type Custom = (req: Request, seen: Seen) => Response | Promise<Response> | undefined;

/** An echo backend: replies JSON `Seen` unless `custom` returns a response. */
export function startEchoBackend(id: string, custom?: Custom, port = 0): Backend {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
    const url = req.url;
    const start = url.indexOf("/", url.indexOf("//") + 2);
    const hash = createHash("sha256");
    let len = 0;
    if (req.body) {
      for await (const chunk of req.body) {
        hash.update(chunk);
        len += chunk.byteLength;
      }
    }
    const s: Seen = {
      id,
      method: req.method,
      path: url.slice(start),
      headers: [...req.headers],
      bodyLength: len,
      bodySha256: hash.digest("hex"),
    };
    seen.push(s);
    const res = await custom?.(req, s);
    return res ?? Response.json(s, { headers: { "x-backend": id } });
  });
  const p = (server.addr as Deno.NetAddr).port;
  return {
    id,
    port: p,
    url: `http://127.0.0.1:${p}`,
    seen,
    close: () => server.shutdown(),
  };
}

export interface RawServer {
  readonly port: number;
  readonly url: string;
  /** Number of TCP connections accepted. */
  readonly accepted: number;
  close(): void;
}

/** A TCP server that hands each connection to `onConn`. */
export function startRawServer(onConn: (conn: Deno.Conn) => Promise<void> | void): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let accepted = 0;
  (async () => {
    for await (const conn of listener) {
      accepted++;
      conns.add(conn);
      Promise.resolve(onConn(conn)).catch(() => {}).finally(() => conns.delete(conn));
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    },
  };
}

/** Reads from `conn` until the end of an HTTP request head; returns the head text. */
export async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(65536);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

/** An address that refuses connections: bind a port, then close it. */
export function deadAddress(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `http://127.0.0.1:${port}`;
}

/** Sends raw bytes to 127.0.0.1:port and reads the whole answer until close or `ms`. */
export async function rawRequest(
  port: number,
  bytes: string | Uint8Array,
  ms = 2000,
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
  const buf = new Uint8Array(65536);
  const parts: Uint8Array[] = [];
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  }, ms);
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
  } catch { /* closed by timer */ }
  clearTimeout(timer);
  try {
    conn.close();
  } catch { /* closed */ }
  return bytesToBinary(concat(parts));
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

export function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Bytes to a string with one char per byte (ISO-8859-1; TextDecoder's "latin1" is cp1252). */
export function bytesToBinary(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}
