/**
 * TLS termination for one port: several certificates chosen by SNI, h2 or http/1.1 by ALPN, a
 * handshake timeout, and live certificate swap without a restart. Each connection whose
 * handshake completes is handed to the caller as a decrypted byte stream (bws's own HTTP/1.1
 * front end, or the HTTP/2 bridge). See README.md for the route chosen and its cost.
 *
 * @module
 */

import type { ConnectionGate } from "../server/connection_gate.ts";
import { type Backend, canReusePort, type TlsConnectionHandler } from "./backend.ts";
import type { CertificatePair } from "./certs.ts";
import { DirectBackend } from "./direct_backend.ts";
import { SniTable } from "./sni_table.ts";

export type { TlsConnectionHandler } from "./backend.ts";

/** Options of {@link serveTls}. */
export interface TlsListenerOptions {
  hostname: string;
  /** 0 picks a free port; read it from {@link TlsListener.addr}. */
  port: number;
  /**
   * Server name (lower-case, may be `*.example.org`) → certificate. `null` marks a name whose
   * certificate is pending (ACME): handshakes for it fail, other names keep working.
   */
  certificates: ReadonlyMap<string, CertificatePair | null>;
  /** Name whose entry answers a handshake without SNI or with an unknown name.
   * @default the first name in `certificates` */
  defaultName?: string;
  /** Receives every connection whose handshake completed. */
  onConnection: TlsConnectionHandler;
  /** The process's client connection budget. */
  gate: ConnectionGate;
  /**
   * Always use the SNI path, even for one certificate: certificate swaps then never reset a
   * connection, at a higher CPU cost per request (see README.md). @default false
   */
  alwaysSni?: boolean;
  /** Milliseconds a client may take to complete its TLS handshake (read at each connection);
   * 0 = no limit. @default 10000 */
  handshakeTimeoutMs?: () => number;
  /** Accepting failed (descriptors ran out, or another error). */
  onAcceptError?: (err: Error, shortage: boolean) => void;
}

/** A running HTTPS listener. */
export interface TlsListener {
  readonly addr: { hostname: string; port: number };
  /** Adds or replaces the certificate for a name; open connections keep going. The returned
   * promise resolves once new handshakes use it (after a hand-over when one is needed); it never
   * rejects (a failed hand-over rejects {@link TlsListener.finished}). */
  setCertificate(name: string, pair: CertificatePair): Promise<void>;
  /** Stops accepting and ends handshakes in progress; connections already handed over are the
   * caller's to close. */
  shutdown(): Promise<void>;
  /** Resolves once {@link TlsListener.shutdown} has completed. */
  readonly finished: Promise<void>;
}

/** How long a hand-over without `reusePort` keeps retrying to bind the freed port. */
const REBIND_MS = 2000;
/** How long a `reusePort` hand-over waits for the old listening socket to close. */
const CLOSE_SETTLE_MS = 20;

/**
 * Starts an HTTPS listener. A port whose names all share one certificate (and none is pending)
 * runs on `Deno.serve` directly (fast path); otherwise `node:tls` picks the certificate by SNI
 * in front of an internal `Deno.serve`. A certificate change that needs another path or
 * another `Deno.serve` certificate hands the port over to a new listener: with `--unstable-net`
 * both share the port (`reusePort`) so no connection is refused; without it the old socket is
 * closed first and the new one bound about a millisecond later.
 */
export async function serveTls(opts: TlsListenerOptions): Promise<TlsListener> {
  const table = new SniTable(opts.certificates, opts.defaultName);
  const listener = new Listener(opts, table);
  await listener.start();
  return listener;
}

class Listener implements TlsListener {
  readonly #opts: TlsListenerOptions;
  readonly #table: SniTable;
  readonly #reusePort = canReusePort();
  readonly #draining = new Set<Promise<void>>();
  #backend!: Backend;
  #addr!: { hostname: string; port: number };
  /** Serializes hand-overs. */
  #queue: Promise<void> = Promise.resolve();
  #closing = false;
  #resolveFinished!: () => void;
  #rejectFinished!: (err: unknown) => void;
  readonly finished: Promise<void>;

  constructor(opts: TlsListenerOptions, table: SniTable) {
    this.#opts = opts;
    this.#table = table;
    this.finished = new Promise((resolve, reject) => {
      this.#resolveFinished = resolve;
      this.#rejectFinished = reject;
    });
  }

  get addr(): { hostname: string; port: number } {
    return this.#addr;
  }

  async start(): Promise<void> {
    this.#backend = await this.#make(this.#opts.port);
    this.#addr = this.#backend.addr;
  }

  setCertificate(name: string, pair: CertificatePair): Promise<void> {
    this.#table.set(name, pair);
    this.#queue = this.#queue.then(() => this.#reconcile()).catch((err) => {
      this.#rejectFinished(err);
    });
    return this.#queue;
  }

  async shutdown(): Promise<void> {
    this.#closing = true;
    await this.#queue.catch(() => {});
    await Promise.all([this.#backend.shutdown(), ...this.#draining]);
    this.#resolveFinished();
  }

  /** Brings the backend in line with the table (the SNI backend reads the table live). */
  async #reconcile(): Promise<void> {
    if (this.#closing) return;
    const single = this.#single();
    const current = this.#backend;
    if (current instanceof DirectBackend) {
      if (
        single && single.certPem === current.pair.certPem && single.keyPem === current.pair.keyPem
      ) {
        return;
      }
    } else if (single === null) {
      return;
    }
    await this.#handOver();
  }

  async #handOver(): Promise<void> {
    const old = this.#backend;
    let next: Backend;
    if (this.#reusePort) {
      next = await this.#make(this.#addr.port);
      // Deno closes the old listening socket a moment after shutdown() is called; connections
      // the kernel queues on it until then are reset. Wait for that before reporting the swap
      // done, so a connection made after setCertificate() resolved always reaches the new one.
      old.stopAccepting();
      await new Promise((r) => setTimeout(r, CLOSE_SETTLE_MS));
    } else {
      old.stopAccepting();
      next = await this.#bindRetry();
    }
    this.#backend = next;
    const draining = old.shutdown().finally(() => this.#draining.delete(draining));
    this.#draining.add(draining);
  }

  async #bindRetry(): Promise<Backend> {
    const deadline = Date.now() + REBIND_MS;
    for (;;) {
      try {
        return await this.#make(this.#addr.port);
      } catch (err) {
        if (
          !(err instanceof Deno.errors.AddrInUse) &&
          (err as { code?: string }).code !== "EADDRINUSE"
        ) {
          throw err;
        }
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  }

  /** The certificate for the fast path, or null when the SNI path is needed. */
  #single(): CertificatePair | null {
    return this.#opts.alwaysSni ? null : this.#table.single();
  }

  #make(port: number): Promise<Backend> {
    const o = {
      hostname: this.#opts.hostname,
      port,
      reusePort: this.#reusePort,
      onConnection: this.#opts.onConnection,
      gate: this.#opts.gate,
      handshakeTimeoutMs: this.#opts.handshakeTimeoutMs ?? (() => 10_000),
      onAcceptError: this.#opts.onAcceptError,
    };
    const single = this.#single();
    if (single) return Promise.resolve(new DirectBackend(o, single));
    // Loaded on first use: node:tls and node:net cost startup time and memory that ports with
    // one certificate never need.
    return import("./sni_backend.ts").then(({ SniBackend }) => SniBackend.start(o, this.#table));
  }
}
