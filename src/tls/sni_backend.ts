/**
 * SNI path: `node:tls` terminates TLS (certificate chosen per handshake, ALPN h2/http1.1) and
 * pipes the plaintext into an internal loopback `Deno.serve`, which speaks HTTP/1.1 and h2
 * (prior knowledge) exactly as on the fast path.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import type { Backend, BackendOptions } from "./backend.ts";
import type { CertificatePair } from "./certs.ts";
import type { SniTable } from "./sni_table.ts";

const contexts = new WeakMap<CertificatePair, tls.SecureContext>();

function contextOf(pair: CertificatePair): tls.SecureContext {
  let ctx = contexts.get(pair);
  if (!ctx) {
    ctx = tls.createSecureContext({ cert: pair.certPem, key: pair.keyPem });
    contexts.set(pair, ctx);
  }
  return ctx;
}

/** How long shutdown waits for piped responses to reach their clients. */
const FLUSH_MS = 2000;
/** How long a client may take over its handshake (node's own default is 120 s). */
const HANDSHAKE_MS = 10_000;

type Peer = { hostname: string; port: number };

/** A `node:tls` listener choosing certificates from a live {@link SniTable}. */
export class SniBackend implements Backend {
  readonly addr: { hostname: string; port: number };
  readonly #tls: tls.Server;
  readonly #inner: Deno.HttpServer<Deno.NetAddr>;
  readonly #sockets: Set<net.Socket>;
  readonly #closed: Promise<void>;
  #stopped = false;

  private constructor(
    tlsServer: tls.Server,
    inner: Deno.HttpServer<Deno.NetAddr>,
    addr: { hostname: string; port: number },
    closed: Promise<void>,
    sockets: Set<net.Socket>,
  ) {
    this.#sockets = sockets;
    this.#tls = tlsServer;
    this.#inner = inner;
    this.addr = addr;
    this.#closed = closed;
  }

  /** Binds the public TLS port and the internal plaintext server. */
  static async start(opts: BackendOptions, table: SniTable): Promise<SniBackend> {
    /** Inner connection's local port → the real client. */
    const peers = new Map<number, Peer>();
    const { handler } = opts;
    const innerOpts: Deno.ServeTcpOptions = { hostname: "127.0.0.1", port: 0, onListen() {} };
    if (opts.onError) innerOpts.onError = opts.onError;
    const inner = Deno.serve(innerOpts, (req, info) => {
      const peer = peers.get(info.remoteAddr.port);
      if (peer === undefined) return new Response("Forbidden\n", { status: 403 });
      // The inner hop is plain HTTP/1.1 (h2 requests keep the client's :scheme): give the
      // handler the URL the client used. A new Request would cost ~20 µs (it materializes the
      // abort signal); shadowing the getter costs next to nothing.
      const url = req.url;
      if (url.charCodeAt(4) === 58) {
        Object.defineProperty(req, "url", { value: "https" + url.slice(4) });
      }
      // The inner response is done once written into the pipe to the TLS socket; node's pipe
      // backpressure bounds what is still buffered on its way to the client.
      return handler(req, { remoteAddr: peer, completed: info.completed });
    });
    const innerPort = inner.addr.port;

    const sockets = new Set<net.Socket>();
    const tlsServer = tls.createServer({
      ALPNProtocols: ["h2", "http/1.1"],
      handshakeTimeout: opts.handshakeTimeoutMs ?? HANDSHAKE_MS,
      SNICallback(servername, cb) {
        const pair = table.resolve(servername);
        if (pair === null) cb(new Error(`Cannot find certificate "${servername}"`), undefined);
        else cb(null, contextOf(pair));
      },
    }, (sock) => {
      sockets.add(sock);
      const peer = {
        hostname: stripV4Mapped(sock.remoteAddress ?? ""),
        port: sock.remotePort ?? 0,
      };
      const up = net.connect(innerPort, "127.0.0.1");
      let localPort = 0;
      up.setNoDelay(true);
      up.once("connect", () => {
        localPort = up.localPort ?? 0;
        peers.set(localPort, peer);
        sock.pipe(up);
      });
      up.pipe(sock);
      // The inner side ending is passed on by pipe (sock.end() flushes); only errors and the
      // client going away cut both sides at once.
      const cleanup = () => {
        if (localPort) peers.delete(localPort);
        sockets.delete(sock);
        up.destroy();
      };
      sock.on("error", () => sock.destroy()).on("close", cleanup);
      // Once our side has ended and flushed, the connection is over (node:tls under Deno does
      // not always report the client's close afterwards).
      sock.on("finish", () => sock.destroy());
      up.on("error", () => sock.destroy());
    });
    // Failed handshakes (unknown name without certificate, garbage, a client silent past the
    // handshake timeout) end that socket only. Node destroys it itself; node:tls under Deno
    // only reports the timeout and leaves the connection open, so close it here.
    tlsServer.on("tlsClientError", (_err: Error, sock: tls.TLSSocket) => sock.destroy());
    const defaultPair = table.resolve(undefined);
    if (defaultPair) {
      tlsServer.setSecureContext({ cert: defaultPair.certPem, key: defaultPair.keyPem });
    }

    const addr = await new Promise<{ hostname: string; port: number }>((resolve, reject) => {
      tlsServer.once("error", reject);
      tlsServer.listen(
        { host: opts.hostname, port: opts.port, reusePort: opts.reusePort } as net.ListenOptions,
        () => {
          tlsServer.off("error", reject);
          const a = tlsServer.address() as net.AddressInfo;
          resolve({ hostname: stripV4Mapped(a.address), port: a.port });
        },
      );
    }).catch(async (err) => {
      await inner.shutdown();
      throw err;
    });
    const closed = new Promise<void>((resolve) => tlsServer.once("close", () => resolve()));
    return new SniBackend(tlsServer, inner, addr, closed, sockets);
  }

  stopAccepting(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#tls.close();
  }

  async shutdown(): Promise<void> {
    this.stopAccepting();
    await this.#inner.shutdown();
    // Let piped responses flush to their clients, then cut what is left.
    const open = [...this.#sockets].map((s) =>
      new Promise<void>((resolve) => s.once("close", () => resolve()))
    );
    const timer = setTimeout(() => {
      for (const s of this.#sockets) s.destroy();
    }, FLUSH_MS);
    await Promise.all(open);
    clearTimeout(timer);
    await this.#closed;
  }
}

function stripV4Mapped(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}
