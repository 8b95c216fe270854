/**
 * Test helper: a raw TCP upstream on 127.0.0.1 that writes exact bytes, so tests control every
 * byte of the HTTP/1.1 response.
 *
 * @module
 */

import { parseUpstreamUrl, type UpstreamTarget } from "../../src/upstream/target.ts";
import { concat, fromLatin1, latin1 } from "./bytes.ts";

/** One accepted connection, seen from the upstream's side. */
export class Peer {
  readonly conn: Deno.TcpConn;
  #cap: Uint8Array = new Uint8Array(0);
  #off = 0;
  #len = 0;
  #eof = false;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  async #more(): Promise<boolean> {
    if (this.#eof) return false;
    if (this.#cap.length - this.#len < 16 * 1024) {
      const bigger = new Uint8Array(Math.max(64 * 1024, this.#cap.length * 2));
      bigger.set(this.#cap.subarray(this.#off, this.#off + this.#len));
      this.#cap = bigger;
      this.#off = 0;
    } else if (this.#off > 0) {
      this.#cap.copyWithin(0, this.#off, this.#off + this.#len);
      this.#off = 0;
    }
    let n: number | null;
    try {
      n = await this.conn.read(this.#cap.subarray(this.#len));
    } catch {
      n = null;
    }
    if (n === null) {
      this.#eof = true;
      return false;
    }
    this.#len += n;
    return true;
  }

  get #buf(): Uint8Array {
    return this.#cap.subarray(this.#off, this.#off + this.#len);
  }

  #take(n: number): Uint8Array {
    const out = this.#cap.slice(this.#off, this.#off + n);
    this.#off += n;
    this.#len -= n;
    return out;
  }

  /** The request head as latin1 text (with its final CRLFCRLF), or null at EOF. */
  async readHead(): Promise<string | null> {
    while (true) {
      const text = latin1(this.#buf);
      const i = text.indexOf("\r\n\r\n");
      if (i !== -1) return latin1(this.#take(i + 4));
      if (!(await this.#more())) return null;
    }
  }

  /** Exactly `n` bytes (fewer at EOF). */
  async readExactly(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n && await this.#more()) { /* keep reading */ }
    return this.#take(Math.min(n, this.#buf.length));
  }

  /** One request: head plus its body (Content-Length or chunked, decoded). */
  async readRequest(): Promise<{ head: string; body: Uint8Array } | null> {
    const head = await this.readHead();
    if (head === null) return null;
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (cl) return { head, body: await this.readExactly(Number(cl[1])) };
    if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const parts: Uint8Array[] = [];
      while (true) {
        const line = await this.#line();
        const size = parseInt(line, 16);
        if (size === 0) {
          while ((await this.#line()) !== "") { /* trailers */ }
          break;
        }
        parts.push(await this.readExactly(size));
        await this.readExactly(2);
      }
      return { head, body: concat(parts) };
    }
    return { head, body: new Uint8Array(0) };
  }

  async #line(): Promise<string> {
    while (true) {
      const i = this.#buf.indexOf(10);
      if (i !== -1) return latin1(this.#take(i + 1)).replace(/\r?\n$/, "");
      if (!(await this.#more())) throw new Error("EOF in chunked request body");
    }
  }

  /** Resolves once the other side closed (EOF or reset), discarding what it sends. */
  async waitClosed(): Promise<void> {
    while (await this.#more()) this.#take(this.#len);
  }

  /** Writes a latin1 string or bytes; swallows errors from a peer that went away. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? fromLatin1(data) : data;
    let off = 0;
    try {
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
    } catch {
      // the client closed: fine for tests that provoke it
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** A listening raw upstream. */
export interface RawUpstream {
  readonly port: number;
  /** `http://127.0.0.1:port` parsed. */
  readonly target: UpstreamTarget;
  /** Connections accepted so far. */
  accepted(): number;
  /** Stops listening and closes every accepted connection. */
  close(): void;
}

/** Listens on an ephemeral loopback port and runs `onConn` for every accepted connection. */
export function listenRaw(
  onConn: (peer: Peer, index: number) => Promise<void> | void,
): RawUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const peers = new Set<Peer>();
  let count = 0;
  (async () => {
    for await (const conn of listener) {
      const peer = new Peer(conn);
      peers.add(peer);
      const index = count++;
      (async () => {
        try {
          await onConn(peer, index);
        } catch {
          // test servers may die on purpose
        }
      })();
    }
  })().catch(() => {});
  const port = listener.addr.port;
  return {
    port,
    target: parseUpstreamUrl(`http://127.0.0.1:${port}`),
    accepted: () => count,
    close() {
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const p of peers) p.close();
    },
  };
}

/** Serves keep-alive requests on each connection by answering with `respond(head, body, n)`. */
export function serveRaw(
  respond: (head: string, body: Uint8Array, n: number) => string | Uint8Array,
): RawUpstream {
  let n = 0;
  return listenRaw(async (peer) => {
    while (true) {
      const req = await peer.readRequest();
      if (req === null) break;
      await peer.write(respond(req.head, req.body, n++));
    }
    peer.close();
  });
}
