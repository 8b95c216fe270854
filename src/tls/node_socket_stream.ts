/**
 * A `node:tls` socket as a {@link ByteStream}, for bws's front end on TLS ports. Reads come from
 * a small queue the socket fills (reading from the network stops past a bound: backpressure); a
 * write resolves once node has handed the bytes on, so the caller may reuse its buffer.
 *
 * @module
 */

import type { Socket } from "node:net";
import type { ByteStream } from "../http1/types.ts";

/** Queued bytes past which reading from the network stops until they are read. */
const HIGH_WATER = 64 * 1024;

/** The TCP handle under a node socket: what reads from the kernel. */
interface TcpHandle {
  readStop(): unknown;
  readStart(): unknown;
}

/**
 * Stops and restarts the reads of `raw` (the TCP socket a TLS socket was made on) at its handle.
 * Deno's node:tls reads the TCP socket on under a paused TLS socket (measured on Deno 2.9.6: a
 * client pushed 700 MB in 5 s into a paused one, all of it held in memory), and a paused raw
 * socket does not start again on `resume()`; its handle's `readStop()` / `readStart()` do both
 * (a client's sends stall once ~4 MB of socket buffers are full). Null when `raw` has no such
 * handle (another runtime): the TLS socket's own pause is used then.
 */
function readSwitch(raw: Socket | undefined): (() => TcpHandle | null) | null {
  if (raw === undefined) return null;
  const handleOf = () => {
    const h = (raw as unknown as { _handle?: Partial<TcpHandle> | null })._handle;
    return h && typeof h.readStop === "function" && typeof h.readStart === "function"
      ? h as TcpHandle
      : null;
  };
  return handleOf() === null ? null : handleOf;
}

export class NodeSocketStream implements ByteStream {
  readonly #sock: Socket;
  readonly #handle: (() => TcpHandle | null) | null;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | null = null;
  #paused = false;
  #wake: (() => void) | null = null;

  /** `raw`: the TCP socket `sock` was made on, when there is one (see {@link readSwitch}). */
  constructor(sock: Socket, raw?: Socket) {
    this.#sock = sock;
    this.#handle = readSwitch(raw);
    sock.on("data", (b: Uint8Array) => {
      this.#chunks.push(b);
      this.#queued += b.length;
      if (this.#queued > HIGH_WATER && !this.#paused) {
        this.#paused = true;
        this.#pause();
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

  #pause(): void {
    if (this.#handle === null) this.#sock.pause();
    else this.#handle()?.readStop();
  }

  #resume(): void {
    if (this.#handle === null) this.#sock.resume();
    else if (!this.#sock.destroyed) this.#handle()?.readStart();
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
      this.#resume();
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
