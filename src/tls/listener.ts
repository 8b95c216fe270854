/**
 * TLS termination for one port: certificates chosen by SNI from a live table, h2 or http/1.1 by
 * ALPN, a handshake timeout, and certificate swaps that take effect at the next handshake with
 * no listener restart and no connection dropped. Each connection whose handshake completes is
 * handed to the caller as a decrypted byte stream (bws's own HTTP/1.1 front end, or the HTTP/2
 * bridge).
 *
 * `node:tls` does the TLS on every port, one certificate or many. `Deno.listenTls` would cost
 * about 20 % less CPU per request, but a connection it accepted cannot be closed before its
 * handshake completes (Deno finishes the handshake before it shuts a TLS stream down), so a
 * client that never sends its ClientHello would hold a descriptor for as long as it likes: no
 * handshake timeout is possible there. See README.md in this folder.
 *
 * A plain `net.Server` accepts and hands each socket to a `tls.Server` that never listens
 * itself (`emit("connection")`): on a PROXY protocol port the header is read from the raw socket
 * first, the bytes after it are put back, and the handshake starts on what follows. Connections
 * past the budget (`max_connections`, the per-address limit) are closed at once instead of
 * waiting in the kernel backlog.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import type { ByteStream, Peer } from "../http1/types.ts";
import { isDescriptorShortage } from "../net/descriptor_shortage.ts";
import { readProxyPrefaceFromSocket } from "../net/proxy_preface.ts";
import type { ConnectionGate } from "../server/connection_gate.ts";
import type { CertificatePair } from "./certs.ts";
import { NodeSocketStream } from "./node_socket_stream.ts";
import { SniTable } from "./sni_table.ts";

/** ALPN protocols offered on every TLS port. */
export const ALPN = ["h2", "http/1.1"];

/** A TLS connection whose handshake completed. The callee owns `stream` and must call
 * `release` once it is closed (it frees the connection's place in the budget). */
export type TlsConnectionHandler = (
  stream: ByteStream,
  peer: Peer,
  alpn: string | null,
  release: () => void,
) => void;

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
  /** Milliseconds a client may take to complete its TLS handshake; 0 = no limit.
   * @default 10000 */
  handshakeTimeoutMs?: number;
  /** Accepting failed (descriptors ran out, or another error). */
  onAcceptError?: (err: Error, shortage: boolean) => void;
  /**
   * Asked for every new connection: non-null when this port expects a PROXY protocol header
   * before the TLS handshake (a reload may switch it).
   */
  proxyProtocol?: () => TlsProxyProtocol | null;
  /** Set SO_REUSEPORT, so that every worker thread accepts on the port. @default false */
  reusePort?: boolean;
}

/** How a TLS port reads PROXY protocol headers. */
export interface TlsProxyProtocol {
  /** Peers allowed to send one; other connections are closed at once. */
  readonly trusted: { has(ip: string): boolean };
  /** Milliseconds the header may take; 0 = no limit. */
  readonly timeoutMs: number;
  /** A connection was closed: untrusted peer, bad or missing header. */
  readonly onRefused?: (peer: string, reason: string) => void;
}

/** A running TLS listener. */
export interface TlsListener {
  readonly addr: { hostname: string; port: number };
  /** Adds or replaces the certificate for a name: new handshakes use it at once, open
   * connections keep going. */
  setCertificate(name: string, pair: CertificatePair): Promise<void>;
  /** Stops accepting and ends handshakes in progress; connections already handed over are the
   * caller's to close. */
  shutdown(): Promise<void>;
  /** Resolves once {@link TlsListener.shutdown} has completed. */
  readonly finished: Promise<void>;
}

const contexts = new WeakMap<CertificatePair, tls.SecureContext>();

function contextOf(pair: CertificatePair): tls.SecureContext {
  let ctx = contexts.get(pair);
  if (!ctx) {
    ctx = tls.createSecureContext({ cert: pair.certPem, key: pair.keyPem });
    contexts.set(pair, ctx);
  }
  return ctx;
}

/** How often the front server's accepting is re-armed. */
const REARM_MS = 1000;
/** The listen backlog node's server.listen() uses by default. */
const BACKLOG = 511;

function rearmAccepting(front: net.Server, opts: TlsListenerOptions): void {
  const handle = (front as unknown as { _handle?: { listen?(backlog: number): number } | null })
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

/** Starts a TLS listener. Rejects when the address cannot be bound. */
export async function serveTls(opts: TlsListenerOptions): Promise<TlsListener> {
  const table = new SniTable(opts.certificates, opts.defaultName);
  const gate = opts.gate;
  /** `address:port` → a raw connection still in its handshake, with its release. node hands
   * the TLS socket over as a new object; the peer's address and port name the connection. */
  const handshaking = new Map<
    string,
    { raw: net.Socket; release: () => void; peer: Peer | null }
  >();
  const keyOf = (s: net.Socket) => `${s.remoteAddress}:${s.remotePort}`;
  const server = tls.createServer({
    ALPNProtocols: ALPN,
    handshakeTimeout: opts.handshakeTimeoutMs === 0 ? 0 : opts.handshakeTimeoutMs ?? 10_000,
    SNICallback(servername, cb) {
      const pair = table.resolve(servername);
      if (pair === null) cb(new Error(`Cannot find certificate "${servername}"`), undefined);
      else cb(null, contextOf(pair));
    },
  }, (sock: tls.TLSSocket) => {
    const key = keyOf(sock);
    const entry = handshaking.get(key);
    handshaking.delete(key);
    sock.setNoDelay(true);
    opts.onConnection(
      new NodeSocketStream(sock, entry?.raw),
      entry?.peer ??
        { hostname: stripV4Mapped(sock.remoteAddress ?? ""), port: sock.remotePort ?? 0 },
      typeof sock.alpnProtocol === "string" ? sock.alpnProtocol : null,
      entry?.release ?? (() => {}),
    );
  });
  const front = net.createServer((raw: net.Socket) => {
    const ip = stripV4Mapped(raw.remoteAddress ?? "");
    const pp = opts.proxyProtocol?.() ?? null;
    if (pp !== null && !pp.trusted.has(ip)) {
      raw.destroy();
      pp.onRefused?.(ip, "the peer is not in server.trusted_proxies");
      return;
    }
    // A balancer's connection counts by the client its header names, not by the balancer.
    let counted: string | null = pp === null ? ip : null;
    if (gate.open >= gate.max || !gate.admit(counted)) {
      raw.destroy();
      return;
    }
    const key = keyOf(raw);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      gate.release(counted);
    };
    const entry = { raw, release, peer: null as Peer | null };
    handshaking.set(key, entry);
    raw.on("close", () => {
      if (handshaking.get(key)?.raw === raw) handshaking.delete(key);
      release();
    });
    if (pp === null) {
      server.emit("connection", raw);
      return;
    }
    readProxyPrefaceFromSocket(raw, pp.timeoutMs).then((preface) => {
      if (raw.destroyed) return;
      const client = preface.client;
      if (client !== null) {
        const host = stripV4Mapped(client.hostname);
        if (!gate.claim(host)) {
          raw.destroy();
          return;
        }
        counted = host;
        entry.peer = { hostname: host, port: client.port };
      } else {
        entry.peer = { hostname: ip, port: raw.remotePort ?? 0 };
      }
      server.emit("connection", raw);
    }, (err: Error) => {
      raw.destroy();
      pp.onRefused?.(ip, err.message);
    });
  });
  // Failed handshakes (unknown name without certificate, garbage, plain HTTP, a client silent
  // past the handshake timeout) end that socket only; node:tls under Deno only reports the
  // timeout, so close it here.
  server.on("tlsClientError", (_err: Error, sock: tls.TLSSocket) => sock.destroy());
  // An accept failure must never become an uncaught 'error' event (it would end the process).
  front.on("error", (err: Error) => opts.onAcceptError?.(err, /EMFILE|ENFILE/.test(err.message)));
  const setDefault = () => {
    const pair = table.resolve(undefined);
    if (pair !== null) server.setSecureContext({ cert: pair.certPem, key: pair.keyPem });
  };
  setDefault();

  const addr = await new Promise<{ hostname: string; port: number }>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    front.once("error", onError);
    front.listen({ host: opts.hostname, port: opts.port, reusePort: opts.reusePort }, () => {
      front.off("error", onError);
      const a = front.address() as net.AddressInfo;
      resolve({ hostname: stripV4Mapped(a.address), port: a.port });
    });
  });

  // node's server stops accepting for good when accept() meets EMFILE/ENFILE, without an
  // 'error' event (Deno 2.9): re-arm it every second and report the shortage.
  const rearm = setInterval(() => rearmAccepting(front, opts), REARM_MS);
  Deno.unrefTimer(rearm);

  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  let stopping: Promise<void> | null = null;
  return {
    addr,
    finished,
    setCertificate(name, pair) {
      table.set(name, pair);
      setDefault();
      return Promise.resolve();
    },
    shutdown() {
      return stopping ??= (async () => {
        clearInterval(rearm);
        front.close();
        for (const { raw } of handshaking.values()) raw.destroy();
        handshaking.clear();
        // node's 'close' comes once every connection it accepted is closed: those are the
        // front end's now, so do not wait for them here.
        resolveFinished();
        await Promise.resolve();
      })();
    },
  };
}
