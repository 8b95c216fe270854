/**
 * Fast path: `Deno.listenTls` with one certificate for the whole port, accepted by bws's own
 * accept loop (descriptor shortages pause it, never end it).
 *
 * @module
 */

import { runAcceptLoop } from "../server/accept_loop.ts";
import { ALPN, type Backend, type BackendOptions } from "./backend.ts";
import type { CertificatePair } from "./certs.ts";

/** A `Deno.listenTls` listener serving one certificate (h2 and http/1.1 by ALPN). */
export class DirectBackend implements Backend {
  readonly addr: { hostname: string; port: number };
  /** The certificate this listener was started with (it cannot change). */
  readonly pair: CertificatePair;
  readonly #listener: Deno.TlsListener;
  readonly #handshaking = new Set<Deno.TlsConn>();
  readonly #loop: Promise<void>;
  #stopped = false;

  constructor(opts: BackendOptions, pair: CertificatePair) {
    this.pair = pair;
    const listenOpts: Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem = {
      hostname: opts.hostname,
      port: opts.port,
      cert: pair.certPem,
      key: pair.keyPem,
      alpnProtocols: ALPN,
    };
    if (opts.reusePort) (listenOpts as { reusePort?: boolean }).reusePort = true;
    this.#listener = Deno.listenTls(listenOpts);
    const a = this.#listener.addr;
    this.addr = { hostname: a.hostname, port: a.port };
    this.#loop = runAcceptLoop(this.#listener, opts.gate, {
      onConnection: (conn, release) => void this.#handshake(conn as Deno.TlsConn, release, opts),
      onDescriptorShortage: (err) => opts.onAcceptError?.(err, true),
      onAcceptError: (err) => opts.onAcceptError?.(err, false),
    }).done;
  }

  async #handshake(conn: Deno.TlsConn, release: () => void, opts: BackendOptions) {
    this.#handshaking.add(conn);
    const ms = opts.handshakeTimeoutMs();
    const timer = ms > 0 ? setTimeout(() => closeQuietly(conn), ms) : undefined;
    let alpn: string | null;
    try {
      alpn = (await conn.handshake()).alpnProtocol;
    } catch {
      // Garbage, plain HTTP, an unknown name, or silent past the timeout: that socket only.
      closeQuietly(conn);
      release();
      return;
    } finally {
      clearTimeout(timer);
      this.#handshaking.delete(conn);
    }
    const a = conn.remoteAddr as Deno.NetAddr;
    opts.onConnection(conn, { hostname: a.hostname, port: a.port }, alpn, release);
  }

  stopAccepting(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
  }

  async shutdown(): Promise<void> {
    this.stopAccepting();
    for (const c of this.#handshaking) closeQuietly(c);
    await this.#loop;
  }
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}
