/**
 * SNI path: `node:tls` terminates TLS (certificate chosen per handshake from a live table, ALPN
 * h2/http1.1) and hands the decrypted socket to bws's front end as a byte stream.
 *
 * node's server accepts by itself: connections past the budget (`max_connections`, per-address
 * limit) are closed at once instead of waiting in the kernel backlog. It also stops accepting for
 * good when accept() meets EMFILE/ENFILE, without an 'error' event (Deno 2.9): a timer re-arms it
 * every second and reports the shortage (see {@link rearmAccepting}).
 *
 * @module
 */

import type net from "node:net";
import tls from "node:tls";
import { ALPN, type Backend, type BackendOptions } from "./backend.ts";
import type { CertificatePair } from "./certs.ts";
import { NodeSocketStream } from "./node_socket_stream.ts";
import { isDescriptorShortage } from "../net/descriptor_shortage.ts";
import type { SniTable } from "./sni_table.ts";

const contexts = new WeakMap<CertificatePair, tls.SecureContext>();

/** How often the server's accepting is re-armed. */
const REARM_MS = 1000;
/** The listen backlog node's server.listen() uses by default. */
const BACKLOG = 511;

function contextOf(pair: CertificatePair): tls.SecureContext {
  let ctx = contexts.get(pair);
  if (!ctx) {
    ctx = tls.createSecureContext({ cert: pair.certPem, key: pair.keyPem });
    contexts.set(pair, ctx);
  }
  return ctx;
}

/** A `node:tls` listener choosing certificates from a live {@link SniTable}. */
export class SniBackend implements Backend {
  readonly addr: { hostname: string; port: number };
  readonly #server: tls.Server;
  readonly #handshaking: Map<string, net.Socket>;
  readonly #closed: Promise<void>;
  readonly #rearm: ReturnType<typeof setInterval>;
  #stopped = false;

  private constructor(
    server: tls.Server,
    addr: { hostname: string; port: number },
    handshaking: Map<string, net.Socket>,
    closed: Promise<void>,
    opts: BackendOptions,
  ) {
    this.#server = server;
    this.addr = addr;
    this.#handshaking = handshaking;
    this.#closed = closed;
    this.#rearm = setInterval(() => rearmAccepting(server, opts), REARM_MS);
    Deno.unrefTimer(this.#rearm);
  }

  /** Binds the TLS port. */
  static async start(opts: BackendOptions, table: SniTable): Promise<SniBackend> {
    const handshaking = new Map<string, net.Socket>();
    /** `address:port` of a raw connection → its release (node hands the TLS socket over as a
     * new object; the peer's address and port name the connection). */
    const releases = new Map<string, () => void>();
    const keyOf = (s: net.Socket) => `${s.remoteAddress}:${s.remotePort}`;
    const server = tls.createServer({
      ALPNProtocols: ALPN,
      handshakeTimeout: opts.handshakeTimeoutMs() || 120_000,
      SNICallback(servername, cb) {
        const pair = table.resolve(servername);
        if (pair === null) cb(new Error(`Cannot find certificate "${servername}"`), undefined);
        else cb(null, contextOf(pair));
      },
    }, (sock: tls.TLSSocket) => {
      handshaking.delete(keyOf(sock));
      const release = releases.get(keyOf(sock)) ?? (() => {});
      sock.setNoDelay(true);
      opts.onConnection(
        new NodeSocketStream(sock),
        { hostname: stripV4Mapped(sock.remoteAddress ?? ""), port: sock.remotePort ?? 0 },
        typeof sock.alpnProtocol === "string" ? sock.alpnProtocol : null,
        release,
      );
    });
    server.on("connection", (raw: net.Socket) => {
      const ip = stripV4Mapped(raw.remoteAddress ?? "");
      if (opts.gate.open >= opts.gate.max || !opts.gate.admit(ip)) {
        raw.destroy();
        return;
      }
      const key = keyOf(raw);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        releases.delete(key);
        opts.gate.release(ip);
      };
      releases.set(key, release);
      handshaking.set(key, raw);
      raw.on("close", () => {
        handshaking.delete(key);
        release();
      });
    });
    // Failed handshakes (unknown name without certificate, garbage, a client silent past the
    // handshake timeout) end that socket only; node:tls under Deno only reports the timeout.
    server.on("tlsClientError", (_err: Error, sock: tls.TLSSocket) => sock.destroy());
    // An accept failure must never become an uncaught 'error' event (it would end the process).
    server.on(
      "error",
      (err: Error) => opts.onAcceptError?.(err, /EMFILE|ENFILE/.test(err.message)),
    );
    const defaultPair = table.resolve(undefined);
    if (defaultPair) {
      server.setSecureContext({ cert: defaultPair.certPem, key: defaultPair.keyPem });
    }

    const addr = await new Promise<{ hostname: string; port: number }>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once("error", onError);
      server.listen(
        { host: opts.hostname, port: opts.port, reusePort: opts.reusePort } as net.ListenOptions,
        () => {
          server.off("error", onError);
          const a = server.address() as net.AddressInfo;
          resolve({ hostname: stripV4Mapped(a.address), port: a.port });
        },
      );
    });
    const closed = new Promise<void>((resolve) => server.once("close", () => resolve()));
    return new SniBackend(server, addr, handshaking, closed, opts);
  }

  stopAccepting(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#rearm);
    this.#server.close();
  }

  async shutdown(): Promise<void> {
    this.stopAccepting();
    for (const s of this.#handshaking.values()) s.destroy();
    // node's server reports 'close' once every connection it accepted is closed: the front end
    // owns those now, so do not wait for them here.
    await Promise.race([this.#closed, new Promise((r) => setTimeout(r, 0))]);
  }
}

/**
 * Deno's node:net server stops accepting for good once accept() fails with EMFILE/ENFILE, and
 * says nothing (no 'error' event): after a moment's descriptor shortage the port would queue
 * connections in the kernel forever. Calling its handle's listen() again re-arms accepting (a
 * no-op while it accepts). The shortage itself is reported when a probe descriptor cannot be
 * opened.
 */
function rearmAccepting(server: tls.Server, opts: BackendOptions): void {
  const handle = (server as unknown as { _handle?: { listen?(backlog: number): number } | null })
    ._handle;
  handle?.listen?.(BACKLOG);
  try {
    Deno.openSync(Deno.build.os === "windows" ? "NUL" : "/dev/null").close();
  } catch (err) {
    if (isDescriptorShortage(err)) opts.onAcceptError?.(err as Error, true);
  }
}

function stripV4Mapped(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}
