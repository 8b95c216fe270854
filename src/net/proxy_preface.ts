/**
 * Reads the PROXY protocol header a connection starts with (on a port whose sites set
 * `proxy_protocol = true`), before anything else reads from it: from a Deno connection (plain
 * ports) or from a node socket (TLS ports, where the header comes before the handshake).
 *
 * Bytes arrive in pieces of any size; they are kept until `parseProxyHeader` decides, so at most
 * a v2 header's 16 + 65535 bytes plus what one read brought after it. The wait is bounded by a
 * timeout; a peer that sends garbage, closes or stays silent gets an error and its connection
 * is the caller's to close.
 *
 * @module
 */

import type { Socket } from "node:net";
import type { Peer } from "../http1/types.ts";
import { parseProxyHeader, PROXY_V2_MAX, type ProxyHeader } from "./proxy_protocol.ts";

/** What a connection's PROXY header said. */
export interface ProxyPreface {
  /**
   * The client the header names (an IPv4-mapped IPv6 address as IPv4); null to keep the
   * socket's peer (LOCAL, UNKNOWN, unix).
   */
  readonly client: Peer | null;
  /** Bytes read after the header: the start of the connection's own data. */
  readonly rest: Uint8Array;
  readonly header: ProxyHeader;
}

/** The connection did not start with a usable PROXY header in time. */
export class ProxyPrefaceError extends Error {}

/** First buffer: room for every v1 header and the usual v2 ones with a few TLVs. */
const INITIAL = 512;
/** Largest buffer: a whole v2 header and as much again read after it. */
const LARGEST = 2 * PROXY_V2_MAX;

/** Collects the bytes of a connection until they hold a whole PROXY header. */
export class ProxyHeaderReader {
  #buf = new Uint8Array(INITIAL);
  #end = 0;

  /** Free room to read into (grown when full). */
  space(): Uint8Array {
    if (this.#end === this.#buf.length) this.#grow(this.#end + 1);
    return this.#buf.subarray(this.#end);
  }

  /** `n` bytes were read into {@link space}: the preface, or null when more are needed. */
  advance(n: number): ProxyPreface | null {
    this.#end += n;
    return this.#decide();
  }

  /** Adds a chunk received from an event-driven socket: the preface, or null. */
  push(chunk: Uint8Array): ProxyPreface | null {
    if (this.#end + chunk.length > this.#buf.length) this.#grow(this.#end + chunk.length);
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
    return this.#decide();
  }

  #grow(needed: number): void {
    if (needed > LARGEST) {
      throw new ProxyPrefaceError("Cannot read PROXY protocol header: more bytes than one holds");
    }
    const next = new Uint8Array(Math.min(LARGEST, Math.max(needed, this.#buf.length * 2)));
    next.set(this.#buf.subarray(0, this.#end));
    this.#buf = next;
  }

  #decide(): ProxyPreface | null {
    const r = parseProxyHeader(this.#buf, 0, this.#end);
    if (r.kind === "need-more") return null;
    if (r.kind === "error") throw new ProxyPrefaceError(r.message);
    const src = r.source;
    const client = r.command === "proxy" && src !== null
      ? { hostname: unmapV4(src.hostname), port: src.port }
      : null;
    return { client, rest: this.#buf.slice(r.consumed, this.#end), header: r };
  }
}

/** An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) as the IPv4 address it maps. */
function unmapV4(host: string): string {
  return host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host;
}

/** A connection to read from (a `Deno.Conn`). */
interface Readable {
  read(p: Uint8Array): Promise<number | null>;
  close(): void;
}

/**
 * Reads the header from `conn` within `timeoutMs` (0 = no limit). Rejects with a
 * {@link ProxyPrefaceError} on a bad header, EOF or the timeout (`conn` is closed then, to end
 * the read in progress); any other error is the socket's.
 */
export async function readProxyPreface(conn: Readable, timeoutMs: number): Promise<ProxyPreface> {
  const reader = new ProxyHeaderReader();
  let timedOut = false;
  const timer = timeoutMs > 0
    ? setTimeout(() => {
      timedOut = true;
      try {
        conn.close();
      } catch {
        // already closed
      }
    }, timeoutMs)
    : undefined;
  try {
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(reader.space());
      } catch (err) {
        if (timedOut) throw timeoutError(timeoutMs);
        throw err;
      }
      if (timedOut) throw timeoutError(timeoutMs);
      if (n === null) throw closedError();
      const done = reader.advance(n);
      if (done !== null) return done;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads the header from a node socket within `timeoutMs` (0 = no limit). On success the bytes
 * after the header are put back (`unshift`) and the socket is paused, ready to be handed on
 * (`rest` is empty). Rejects like {@link readProxyPreface}; the socket is left for the caller to
 * destroy.
 */
export function readProxyPrefaceFromSocket(
  sock: Socket,
  timeoutMs: number,
): Promise<ProxyPreface> {
  return new Promise((resolve, reject) => {
    const reader = new ProxyHeaderReader();
    const timer = timeoutMs > 0
      ? setTimeout(() => finish(timeoutError(timeoutMs)), timeoutMs)
      : undefined;
    const finish = (err: Error | null, preface?: ProxyPreface) => {
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("end", onEnd);
      sock.off("close", onEnd);
      sock.off("error", onError);
      if (err !== null) return reject(err);
      sock.pause();
      const rest = preface!.rest;
      if (rest.length > 0) sock.unshift(rest);
      resolve({ ...preface!, rest: new Uint8Array(0) });
    };
    const onData = (chunk: Uint8Array) => {
      let done: ProxyPreface | null;
      try {
        done = reader.push(chunk);
      } catch (err) {
        return finish(err as Error);
      }
      if (done !== null) finish(null, done);
    };
    const onEnd = () => finish(closedError());
    const onError = (err: Error) => finish(err);
    sock.on("data", onData);
    sock.on("end", onEnd);
    sock.on("close", onEnd);
    sock.on("error", onError);
  });
}

function timeoutError(ms: number): ProxyPrefaceError {
  return new ProxyPrefaceError(
    `Cannot read PROXY protocol header: none complete within ${ms} ms`,
  );
}

function closedError(): ProxyPrefaceError {
  return new ProxyPrefaceError(
    "Cannot read PROXY protocol header: the peer closed the connection first",
  );
}
