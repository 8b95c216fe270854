/**
 * One listening address of bws, plain or TLS, served by bws's own HTTP/1.1 front end (and by the
 * HTTP/2 bridge for connections that speak h2). It owns its open connections: a graceful
 * shutdown lets each finish the request it is serving and closes the idle ones; `cut` ends what
 * is left once a grace period is over.
 *
 * @module
 */

import { ClientConnection } from "../http1/connection.ts";
import type { FrontOptions, RefusedRequest } from "../http1/front_options.ts";
import type { ByteStream, HttpRequest, HttpResponse, Peer } from "../http1/types.ts";
import type { Logger } from "../log/types.ts";
import { type ProxyPreface, readProxyPreface } from "../net/proxy_preface.ts";
import type { ListenerPlan, Plan } from "../plan/plan_types.ts";
import { serveTls, type TlsListener, type TlsProxyProtocol } from "../tls/listener.ts";
import type { CertificatePair } from "../tls/certs.ts";
import { runAcceptLoop } from "./accept_loop.ts";
import type { ConnectionGate } from "./connection_gate.ts";
import type { BridgedConnection, Http2Bridge } from "./h2_bridge.ts";
import { handleRequest, type Services } from "./handle_request.ts";
import { refusalDone } from "./request_record.ts";
import { errorText } from "../log/error_text.ts";

/** What every listener of one server shares. */
export interface ListenerContext {
  readonly services: Services;
  readonly gate: ConnectionGate;
  readonly bridge: Http2Bridge;
  /** The current logger (it changes on reload). */
  logger(): Logger;
  /** In a worker thread (`server.workers`): listen with SO_REUSEPORT, on these ports. */
  readonly sharing?: PortSharing;
  /** Told when a request starts and when its response is over (a worker's own counts). */
  readonly tracker?: RequestTracker;
}

/** How a worker thread binds the addresses every worker of the process accepts on. */
export interface PortSharing {
  /** The port to bind for `lp` (a port-0 listener binds the port the first worker got). */
  port(lp: ListenerPlan): number;
  /** Whether to check first that no other process holds the address (SO_REUSEPORT would
   * share it with that process without a word). */
  probe(lp: ListenerPlan): boolean;
}

/** Counts the requests of one worker thread. */
export interface RequestTracker {
  begin(): void;
  end(): void;
}

/** A listener's certificates when it is a TLS one. */
export interface ListenerCertificates {
  readonly map: ReadonlyMap<string, CertificatePair | null>;
  readonly defaultName: string | undefined;
}

/** A bound socket (or TLS port) and how to stop accepting on it. */
interface Bound {
  readonly addr: { hostname: string; port: number };
  readonly tlsListener: TlsListener | null;
  readonly stop: () => Promise<void>;
}

/** How long after `cut` connections that are still open are closed anyway. */
const CUT_CLOSE_MS = 100;

/** A running listener. */
export class FrontListener {
  lp: ListenerPlan;
  plan: Plan;
  readonly tls: boolean;
  readonly addr: { hostname: string; port: number };
  readonly tlsListener: TlsListener | null;
  readonly #ctx: ListenerContext;
  readonly #conns = new Set<ClientConnection>();
  readonly #h2 = new Set<ByteStream>();
  /** Plain connections whose PROXY protocol header is being read. */
  readonly #prefacing = new Set<Deno.Conn>();
  #lastPrefaceReport = 0;
  readonly #cutter = new AbortController();
  readonly #source: { options: FrontOptions };
  readonly #stopAccepting: () => Promise<void>;
  #stopping: Promise<void> | null = null;
  readonly #finished: Promise<void>;
  #resolveFinished!: () => void;

  private constructor(lp: ListenerPlan, plan: Plan, ctx: ListenerContext, bound: Bound) {
    this.lp = lp;
    this.plan = plan;
    this.tls = lp.tls;
    this.#ctx = ctx;
    this.addr = bound.addr;
    this.tlsListener = bound.tlsListener;
    this.#stopAccepting = bound.stop;
    this.#source = { options: this.#optionsFor(plan) };
    this.#finished = new Promise((r) => (this.#resolveFinished = r));
  }

  /** Binds `lp` and starts accepting. Rejects when the address cannot be bound. */
  static async open(
    lp: ListenerPlan,
    plan: Plan,
    ctx: ListenerContext,
    certificates: ListenerCertificates | null,
  ): Promise<FrontListener> {
    // The connection handlers need the listener object, which needs the bound address: bind
    // with handlers that forward to a holder filled right after.
    let self: FrontListener | null = null;
    const pending: (() => void)[] = [];
    const whenReady = (fn: (l: FrontListener) => void) => {
      if (self !== null) fn(self);
      else pending.push(() => fn(self!));
    };
    const report = (err: Error, shortage: boolean) => {
      const logger = ctx.logger();
      if (shortage) {
        // Idle upstream connections are the descriptors cheapest to give back.
        const closed = ctx.services.client.closeIdle();
        logger.warn("out of file descriptors: accepting paused for a moment", {
          listener: lp.key,
          error: err.message,
          idleUpstreamClosed: closed,
        });
      } else logger.warn("accept failed", { listener: lp.key, error: err.message });
    };
    let bound: Bound;
    const sharing = ctx.sharing;
    const port = sharing?.port(lp) ?? lp.port;
    if (sharing?.probe(lp)) Deno.listen({ hostname: lp.bind, port }).close();
    if (lp.tls) {
      const tl = await serveTls({
        hostname: lp.bind,
        port,
        reusePort: sharing !== undefined,
        certificates: certificates?.map ?? new Map(),
        defaultName: certificates?.defaultName,
        gate: ctx.gate,
        handshakeTimeoutMs: plan.client.tlsHandshakeMs,
        onAcceptError: report,
        proxyProtocol: () =>
          proxyProtocolRules(
            self === null ? lp : self.lp,
            self === null ? plan : self.plan,
            (peer, reason) => whenReady((l) => l.#prefaceRefused(peer, reason)),
          ),
        onConnection: (stream, peer, alpn, release) =>
          whenReady((l) =>
            alpn === "h2"
              ? l.#serveHttp2(stream, new Uint8Array(0), peer, release)
              : l.#serve(stream, peer, release)
          ),
      });
      bound = { addr: tl.addr, tlsListener: tl, stop: () => tl.shutdown() };
    } else {
      const listener = sharing
        ? Deno.listen({ hostname: lp.bind, port, reusePort: true })
        : Deno.listen({ hostname: lp.bind, port });
      const a = listener.addr as Deno.NetAddr;
      const loop = runAcceptLoop(listener, ctx.gate, {
        onConnection: (conn, release) => {
          try {
            (conn as Deno.TcpConn).setNoDelay(true);
          } catch {
            // not TCP
          }
          const r = conn.remoteAddr as Deno.NetAddr;
          const peer = { hostname: r.hostname, port: r.port };
          whenReady((l) =>
            l.lp.proxyProtocol
              ? void l.#servePrefaced(conn, peer, release)
              : l.#serve(conn, peer, release)
          );
        },
        // A balancer's connection counts by the client its PROXY header names.
        perIpKey: (ip) => {
          const [p, t] = self === null ? [lp, plan.trusted] : [self.lp, self.plan.trusted];
          return p.proxyProtocol && t.has(ip) ? null : ip;
        },
        onDescriptorShortage: (err) => report(err, true),
        onAcceptError: (err) => report(err, false),
      });
      bound = {
        addr: { hostname: a.hostname, port: a.port },
        tlsListener: null,
        stop: async () => {
          try {
            listener.close();
          } catch {
            // already closed
          }
          await loop.done;
        },
      };
    }
    self = new FrontListener(lp, plan, ctx, bound);
    for (const fn of pending) fn();
    return self;
  }

  /** Settles once {@link FrontListener.shutdown} has completed. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /** Open client connections (HTTP/2 ones and those still sending a PROXY header included). */
  get connections(): number {
    return this.#conns.size + this.#h2.size + this.#prefacing.size;
  }

  /** Serves new requests from `plan` (reload); connections pick up its timeouts and limits. */
  update(lp: ListenerPlan, plan: Plan): void {
    this.lp = lp;
    this.plan = plan;
    this.#source.options = this.#optionsFor(plan);
  }

  /** Stops accepting, lets every connection finish its request, closes idle ones; resolves
   * once all are closed. Idempotent. */
  shutdown(): Promise<void> {
    return this.#stopping ??= (async () => {
      await this.#stopAccepting().catch(() => {});
      for (const c of this.#prefacing) closeQuietly(c);
      this.#prefacing.clear();
      for (const c of this.#conns) c.shutdown();
      await Promise.all([...this.#conns].map((c) => c.done));
      for (const s of this.#h2) closeQuietly(s);
      this.#resolveFinished();
    })();
  }

  /** Ends every request still waiting for its upstream (its client gets a 503), then closes
   * what is still open. */
  cut(): void {
    this.#cutter.abort();
    for (const c of this.#conns) c.cut();
    setTimeout(() => {
      for (const c of this.#conns) c.close();
      for (const s of this.#h2) closeQuietly(s);
    }, CUT_CLOSE_MS);
  }

  #serve(stream: ByteStream, peer: Peer, release: () => void, initial?: Uint8Array): void {
    const conn = new ClientConnection(stream, peer, this.tls, this.#source, initial);
    this.#conns.add(conn);
    conn.onClose = () => {
      this.#conns.delete(conn);
      release();
    };
    if (this.#stopping !== null) conn.shutdown();
    void conn.run();
  }

  /**
   * A plain connection on a PROXY protocol port: only a trusted peer may send the header, and
   * the client it names is the connection's peer from then on (LOCAL and UNKNOWN keep the
   * socket's); the bytes read after it start the HTTP/1.1 connection.
   */
  async #servePrefaced(conn: Deno.Conn, peer: Peer, release: () => void): Promise<void> {
    if (!this.plan.trusted.has(peer.hostname)) {
      closeQuietly(conn);
      release();
      this.#prefaceRefused(peer.hostname, "the peer is not in server.trusted_proxies");
      return;
    }
    this.#prefacing.add(conn);
    let preface: ProxyPreface;
    try {
      preface = await readProxyPreface(conn, this.plan.client.timeouts.headerMs);
    } catch (err) {
      closeQuietly(conn);
      release();
      if (this.#prefacing.has(conn)) {
        this.#prefaceRefused(peer.hostname, errorText(err));
      }
      return;
    } finally {
      this.#prefacing.delete(conn);
    }
    const client = preface.client;
    if (client === null) return this.#serve(conn, peer, release, preface.rest);
    const gate = this.#ctx.gate;
    if (!gate.claim(client.hostname)) {
      closeQuietly(conn);
      release();
      return;
    }
    this.#serve(conn, client, () => {
      gate.unclaim(client.hostname);
      release();
    }, preface.rest);
  }

  /** Logs a connection closed for its PROXY header (at most one line a second). */
  #prefaceRefused(peer: string, reason: string): void {
    const now = Date.now();
    if (now - this.#lastPrefaceReport < 1000) return;
    this.#lastPrefaceReport = now;
    this.#ctx.logger().warn("connection closed: no valid PROXY protocol header", {
      listener: this.lp.key,
      peer,
      reason,
    });
  }

  #serveHttp2(stream: ByteStream, buffered: Uint8Array, peer: Peer, release: () => void): void {
    this.#h2.add(stream);
    void this.#ctx.bridge.attach(stream, buffered, this.#bridged(peer, this.tls)).finally(() => {
      this.#h2.delete(stream);
      release();
    });
  }

  /** Who is behind an HTTP/2 connection handed to the bridge (TLS by ALPN, or h2c). */
  #bridged(peer: Peer, tls: boolean): BridgedConnection {
    const services = this.#ctx.services;
    const cut = this.#cutter.signal;
    return {
      peer,
      tls,
      handler: (req) => this.#handle(req, services, cut),
      idleMs: () => this.plan.client.timeouts.keepAliveMs,
      sendMs: () => this.plan.client.timeouts.sendMs,
      streams: this.#ctx.gate,
      onRefused: this.#refused,
    };
  }

  /** A request answered before a handler had it: the access log and metrics. */
  #refused = (r: RefusedRequest): void =>
    refusalDone(r, this.plan.logger, this.#ctx.services.metrics);

  #handle(
    req: HttpRequest,
    services: Services,
    cut: AbortSignal,
  ): HttpResponse | Promise<HttpResponse> {
    const tracker = this.#ctx.tracker;
    const res = handleRequest(req, this.plan, this.lp, services, cut);
    return tracker === undefined ? res : tracked(tracker, res);
  }

  #optionsFor(plan: Plan): FrontOptions {
    const ctx = this.#ctx;
    const services = ctx.services;
    const cut = this.#cutter.signal;
    return {
      handler: (req) => this.#handle(req, services, cut),
      timeouts: plan.client.timeouts,
      limits: plan.client.limits,
      onRefused: this.#refused,
      onHttp2: (stream, buffered) => {
        // An h2c connection: it stays one of #conns (and counted) until the bridge closes it.
        const conn = stream as ClientConnection;
        void ctx.bridge.attach(conn, buffered, this.#bridged(conn.peer, false))
          .finally(() => conn.close());
      },
      onHandlerError: (err) =>
        ctx.logger().error("request handler failed", {
          listener: this.lp.key,
          error: errorText(err),
        }),
    };
  }
}

/** Counts a request from now until its response is over (or the handler failed). */
async function tracked(
  tracker: RequestTracker,
  pending: HttpResponse | Promise<HttpResponse>,
): Promise<HttpResponse> {
  tracker.begin();
  let res: HttpResponse;
  try {
    res = await pending;
  } catch (err) {
    tracker.end();
    throw err;
  }
  const inner = res.done;
  let ended = false;
  res.done = (bytes, error) => {
    if (!ended) {
      ended = true;
      tracker.end();
    }
    inner?.(bytes, error);
  };
  return res;
}

/** How a TLS port reads PROXY headers under `lp` and `plan`, or null when it expects none. */
function proxyProtocolRules(
  lp: ListenerPlan,
  plan: Plan,
  onRefused: (peer: string, reason: string) => void,
): TlsProxyProtocol | null {
  if (!lp.proxyProtocol) return null;
  return { trusted: plan.trusted, timeoutMs: plan.client.timeouts.headerMs, onRefused };
}

function closeQuietly(s: ByteStream): void {
  try {
    s.close();
  } catch {
    // already closed
  }
}
