/**
 * A `node:tls` socket as a {@link ByteStream}, for bws's front end on the SNI path. Reads come
 * from a small queue the socket fills (paused past a bound: backpressure); a write resolves once
 * node has handed the bytes on, so the caller may reuse its buffer.
 *
 * @module
 */

import type { Socket } from "node:net";
import type { ByteStream } from "../http1/types.ts";

/** Queued bytes past which the socket is paused until they are read. */
const HIGH_WATER = 64 * 1024;

export class NodeSocketStream implements ByteStream {
  readonly #sock: Socket;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | null = null;
  #paused = false;
  #wake: (() => void) | null = null;

  constructor(sock: Socket) {
    this.#sock = sock;
    sock.on("data", (b: Uint8Array) => {
      this.#chunks.push(b);
      this.#queued += b.length;
      if (this.#queued > HIGH_WATER && !this.#paused) {
        this.#paused = true;
        sock.pause();
      }
      this.#notify();
    });
    sock.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    sock.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
    sock.on("error", (err: Error) => {
      this.#error ??= err;
      this.#notify();
    });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error !== null) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((r) => (this.#wake = r));
    }
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const c = this.#chunks[0];
      const take = Math.min(c.length, p.length - n);
      p.set(take === c.length ? c : c.subarray(0, take), n);
      n += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#queued -= n;
    if (this.#paused && this.#queued <= HIGH_WATER / 2) {
      this.#paused = false;
      this.#sock.resume();
    }
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#sock.destroyed) return Promise.reject(new Error("Cannot write: socket closed"));
    return new Promise((resolve, reject) => {
      this.#sock.write(p, (err) => (err ? reject(err) : resolve(p.length)));
    });
  }

  /** Sends the end of the stream (TLS close_notify, then FIN) once written data is flushed. */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#sock.end(resolve));
  }

  close(): void {
    this.#sock.destroy();
    this.#ended = true;
    this.#notify();
  }
}
