/**
 * Real backends for tests: one that reports what it received and can be stopped, restarted,
 * held and made unhealthy, a raw TCP server that answers with exact bytes, and an address that
 * refuses connections.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { concat, latin1 } from "./bytes.ts";

export interface Seen {
  id: string;
  method: string;
  /** Raw request target path + query as the backend saw it. */
  path: string;
  headers: [string, string][];
  bodyLength: number;
  bodySha256: string;
}

/**
 * A loopback backend (see {@link startBackend}): records what it is sent and answers with its
 * id, for the end-to-end tests and for the balancing and health tests that drive an upstream
 * group directly.
 */
export interface Backend {
  readonly id: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Every request seen, in order. */
  readonly seen: Seen[];
  /** Status answered on paths ending in `/health`. @default 200 */
  healthStatus: number;
  /** Requests seen on paths ending in `/health`. */
  healthHits: number;
  /** Lets every request held by `holdPath` finish. */
  release(): void;
  /** Stops listening (the port then refuses connections). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): void;
  readonly running: boolean;
  /** The same as {@link stop}. */
  close(): Promise<void>;
}

/** Answers a request instead of the default; undefined falls through to the default answer. */
export type Custom = (req: Request, seen: Seen) => Response | Promise<Response> | undefined;

/** Options of {@link startBackend}. */
export interface BackendOptions {
  /** Asked first for every request. */
  custom?: Custom;
  /** @default 0 (an ephemeral port) */
  port?: number;
  /** Requests on paths that start with it wait until `release()`. @default none */
  holdPath?: string;
}

/**
 * Starts a backend on 127.0.0.1. Every request is recorded in `seen` (its body read and hashed)
 * and offered to `custom`; otherwise a path under `holdPath` waits until `release()`, a path
 * ending in `/health` counts in `healthHits` and answers `healthStatus`, and the answer is the
 * `Seen` record as JSON. Every default answer carries `x-backend: <id>`.
 */
export function startBackend(id: string, options: BackendOptions = {}): Backend {
  const seen: Seen[] = [];
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;
  let waiters: (() => void)[] = [];
  const handler = async (req: Request): Promise<Response> => {
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
    const res = await options.custom?.(req, s);
    if (res) return res;
    // Not new URL(url): a Host such as "localhost:99999" makes req.url one it cannot parse.
    const query = s.path.indexOf("?");
    const path = query === -1 ? s.path : s.path.slice(0, query);
    const hold = options.holdPath;
    if (hold !== undefined && path.startsWith(hold)) {
      await new Promise<void>((r) => waiters.push(r));
    }
    let status = 200;
    if (path.endsWith("/health")) {
      b.healthHits++;
      status = b.healthStatus;
    }
    return Response.json(s, { status, headers: { "x-backend": id } });
  };
  const b = {
    id,
    port: options.port ?? 0,
    url: "",
    seen,
    healthStatus: 200,
    healthHits: 0,
    release() {
      for (const w of waiters) w();
      waiters = [];
    },
    async stop() {
      b.release();
      const s = server;
      server = null;
      if (s) await s.shutdown();
    },
    restart() {
      if (server) return;
      server = Deno.serve({ hostname: "127.0.0.1", port: b.port, onListen() {} }, handler);
      b.port = server.addr.port;
      b.url = `http://127.0.0.1:${b.port}`;
    },
    get running() {
      return server !== null;
    },
    close: () => b.stop(),
  };
  b.restart();
  return b;
}

/** {@link startBackend} with `custom` and `port` as arguments. */
export function startEchoBackend(id: string, custom?: Custom, port = 0): Backend {
  return startBackend(id, { custom, port });
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
  return latin1(concat(parts));
}
