/**
 * HTTP/2 through an internal `Deno.serve`: bws terminates TLS (or sees an h2c preface) and pipes
 * the connection's plaintext into a `Deno.serve` on a loopback port that only bws connects to,
 * which speaks HTTP/2 (prior knowledge) and hands each request to the same handler as HTTP/1.1.
 *
 * A `Deno.serve` whose accept loop fails (descriptors ran out) dies with its `finished` promise
 * rejected: the bridge logs that and starts a new one, so the process never goes with it.
 *
 * @module
 */

import { refusedAuthority, requestFromFetch, responseToFetch } from "../http1/fetch_adapter.ts";
import type { RefusedRequest } from "../http1/front_options.ts";
import { reasonPhrase } from "../http1/head_bytes.ts";
import type { ByteStream, HttpHandler, Peer } from "../http1/types.ts";
import type { Logger } from "../log/types.ts";
import { pipeStreams } from "../net/pipe.ts";
import { errorText } from "../log/error_text.ts";

/** Who is behind one bridged connection. */
export interface BridgedConnection {
  readonly peer: Peer;
  readonly tls: boolean;
  readonly handler: HttpHandler;
  /** Milliseconds a connection with no request in flight may stay silent (keep_alive); then it
   * is closed, as an idle HTTP/1.1 connection would be. 0 or absent = never. */
  readonly idleMs?: () => number;
  /** Milliseconds a response body may wait for the client to take its next bytes, and the
   * relay's write to the client may wait for it to read (send); then the connection is closed,
   * as an HTTP/1.1 one would be. 0 or absent = never. */
  readonly sendMs?: () => number;
  /** The per-address budget of HTTP/2 requests in flight (`max_connections_per_ip`). */
  readonly streams?: StreamBudget;
  /** Called for every request the bridge answered itself (for the access log). */
  readonly onRefused?: (r: RefusedRequest) => void;
}

/** Counts HTTP/2 requests in flight per client address. */
export interface StreamBudget {
  /** False (not counted) when `ip` has no room for another request. */
  claimStream(ip: string): boolean;
  releaseStream(ip: string): void;
}

/** A bridged connection and its requests in flight. */
interface Entry {
  readonly who: BridgedConnection;
  inFlight: number;
  /** Closes the client's connection (and so the whole relay). */
  readonly close: () => void;
}

const FORBIDDEN = () => new Response("Forbidden\n", { status: 403 });

/** The bridge's own answer to a request it does not hand to the handler, logged as refused. */
function refuse(req: Request, who: BridgedConnection, status: number, detail: string): Response {
  const body = `${status} ${reasonPhrase(status)}\n`;
  const headers: [string, string][] = [["content-type", "text/plain; charset=utf-8"]];
  if (status === 503) headers.push(["retry-after", "1"]);
  const url = req.url;
  const path = url.indexOf("/", url.indexOf("//") + 2);
  who.onRefused?.({
    status,
    detail,
    peer: who.peer,
    method: req.method,
    target: path < 0 ? "/" : url.slice(path),
    time: Date.now(),
    durationMs: 0,
    bytes: body.length,
  });
  return new Response(body, { status, headers });
}

/** How long after a failure the bridge is started again. */
const RESTART_MS = 100;

/** The process's HTTP/2 bridge; started on first use. */
export class Http2Bridge {
  readonly #logger: () => Logger;
  /** Local port of bws's connection to the bridge → who is behind it. */
  readonly #entries = new Map<number, Entry>();
  #server: Deno.HttpServer<Deno.NetAddr> | null = null;
  #starting: Promise<Deno.HttpServer<Deno.NetAddr>> | null = null;
  #stopped = false;

  constructor(logger: () => Logger) {
    this.#logger = logger;
  }

  /** Relays an HTTP/2 connection (`buffered`: bytes already read from it) through the bridge. */
  async attach(stream: ByteStream, buffered: Uint8Array, who: BridgedConnection): Promise<void> {
    let inner: Deno.TcpConn;
    try {
      const server = await this.#ensure();
      inner = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    } catch (err) {
      this.#logger().warn("HTTP/2 connection refused: the bridge is unavailable", {
        error: errorText(err),
      });
      try {
        stream.close();
      } catch {
        // already closed
      }
      return;
    }
    inner.setNoDelay(true);
    const port = (inner.localAddr as Deno.NetAddr).port;
    const close = () => {
      try {
        stream.close();
      } catch {
        // already closed
      }
    };
    const entry: Entry = { who, inFlight: 0, close };
    this.#entries.set(port, entry);
    try {
      await pipeStreams(stream, buffered, inner, {
        idleMs: who.idleMs ?? (() => 0),
        busy: () => entry.inFlight > 0,
        sendMs: who.sendMs,
      });
    } finally {
      this.#entries.delete(port);
    }
  }

  /** Stops the internal server (open HTTP/2 connections end with their streams). */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    const s = this.#server;
    this.#server = null;
    if (s !== null) await s.shutdown().catch(() => {});
  }

  #ensure(): Promise<Deno.HttpServer<Deno.NetAddr>> {
    if (this.#server !== null) return Promise.resolve(this.#server);
    this.#starting ??= Promise.resolve().then(() => {
      const server = Deno.serve({
        hostname: "127.0.0.1",
        port: 0,
        onListen() {},
        onError: (err) => {
          this.#logger().error("request failed", { error: errorText(err) });
          return new Response("500 Internal Server Error\n", { status: 500 });
        },
      }, (req, info) => {
        const entry = this.#entries.get(info.remoteAddr.port);
        if (entry === undefined) return FORBIDDEN();
        const who = entry.who;
        const tls = who.tls;
        // The bridge speaks cleartext HTTP/2: the scheme is the client's.
        let url = req.url;
        if (tls && url.charCodeAt(4) === 58) url = "https" + url.slice(4);
        // Routed on :authority: one HTTP/1.1 would refuse as a Host, or a host field naming another
        // site, is refused.
        if (refusedAuthority(req, url)) {
          return refuse(req, who, 400, ":authority refused, or a host field that differs from it");
        }
        const ip = who.peer.hostname;
        const budget = who.streams;
        if (budget !== undefined && !budget.claimStream(ip)) {
          return refuse(
            req,
            who,
            503,
            "HTTP/2 requests in flight from this address at max_connections_per_ip",
          );
        }
        entry.inFlight++;
        const done = () => {
          entry.inFlight--;
          budget?.releaseStream(ip);
        };
        info.completed.then(done, done);
        const r = requestFromFetch(req, url, who.peer, tls, "2");
        const stall = who.sendMs && { ms: who.sendMs(), onStall: entry.close };
        const answer = who.handler(r);
        return answer instanceof Promise
          ? answer.then((res) => responseToFetch(res, req.method, info.completed, stall))
          : responseToFetch(answer, req.method, info.completed, stall);
      });
      server.finished.catch((err) => {
        if (this.#server === server) this.#server = null;
        if (this.#stopped) return;
        this.#logger().error("HTTP/2 bridge stopped; starting it again", {
          error: errorText(err),
        });
        setTimeout(() => void this.#ensure().catch(() => {}), RESTART_MS);
      });
      this.#server = server;
      this.#starting = null;
      return server;
    }).catch((err) => {
      // Could not bind (descriptors ran out): the next connection tries again.
      this.#starting = null;
      throw err;
    });
    return this.#starting;
  }
}
