/**
 * Fast path: `Deno.serve` terminating TLS itself with one certificate for the whole port.
 *
 * @module
 */

import type { Backend, BackendOptions } from "./backend.ts";
import type { CertificatePair } from "./certs.ts";

/** A `Deno.serve` TLS listener (HTTP/1.1 and h2 by ALPN) serving one certificate. */
export class DirectBackend implements Backend {
  readonly addr: { hostname: string; port: number };
  /** The certificate this listener was started with (it cannot change). */
  readonly pair: CertificatePair;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  #stopping: Promise<void> | undefined;

  constructor(opts: BackendOptions, pair: CertificatePair) {
    this.pair = pair;
    const serveOpts: Deno.ServeTcpOptions & Deno.TlsCertifiedKeyPem = {
      hostname: opts.hostname,
      port: opts.port,
      cert: pair.certPem,
      key: pair.keyPem,
      onListen() {},
    };
    if (opts.reusePort) serveOpts.reusePort = true;
    if (opts.onError) serveOpts.onError = opts.onError;
    this.#server = Deno.serve(serveOpts, opts.handler);
    this.addr = { hostname: this.#server.addr.hostname, port: this.#server.addr.port };
  }

  stopAccepting(): void {
    this.#stopping ??= this.#server.shutdown();
  }

  async shutdown(): Promise<void> {
    this.stopAccepting();
    await this.#stopping;
    await this.#server.finished;
  }
}
