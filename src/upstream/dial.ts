/**
 * Connecting to an upstream: TCP (with TCP_NODELAY) or TLS with its handshake, bounded by the
 * connect timeout and the request's abort.
 *
 * @module
 */

import type { AbortSource } from "../net/abort_source.ts";
import { Connection } from "./connection.ts";
import { connectErrorKind, UpstreamError } from "./errors.ts";
import type { UpstreamTarget } from "./target.ts";
import type { UpstreamRequest } from "./types.ts";
import { errorText } from "../log/error_text.ts";

/**
 * Opens a connection to `target` (TCP, or TLS with its handshake) within the connect timeout;
 * the request's abort ends the attempt. Throws {@link UpstreamError} with `dial` set: a failure
 * to connect is safe to retry on another member for any method.
 */
export async function dial(
  target: UpstreamTarget,
  req: UpstreamRequest,
  caCerts: string[] | undefined,
): Promise<Connection> {
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, req.timeouts.connectMs);
  const abort = req.signal as AbortSource | undefined;
  abort?.onAbort(() => ctl.abort());
  let handshaking = false;
  let sock: Deno.Conn | null = null;
  try {
    if (target.tls) {
      const opts: Deno.ConnectTlsOptions = { hostname: target.hostname, port: target.port };
      if (caCerts !== undefined) opts.caCerts = caCerts;
      const tlsConn = await untilAborted(Deno.connectTls(opts), ctl.signal);
      sock = tlsConn;
      handshaking = true;
      await untilAborted(tlsConn.handshake(), ctl.signal);
    } else {
      const tcp = await Deno.connect({
        hostname: target.hostname,
        port: target.port,
        signal: ctl.signal,
      });
      sock = tcp;
      tcp.setNoDelay(true);
    }
  } catch (err) {
    if (sock !== null) {
      try {
        sock.close();
      } catch { /* already closed */ }
    }
    const kind = timedOut
      ? "connect_timeout"
      : abort?.aborted
      ? "aborted"
      : handshaking
      ? (connectErrorKind(err, true) === "connect_timeout" ? "connect_timeout" : "tls")
      : connectErrorKind(err, target.tls);
    const detail = timedOut
      ? `no connection after ${req.timeouts.connectMs / 1000} s`
      : errorText(err);
    throw new UpstreamError(kind, `Cannot connect to upstream "${target.origin}": ${detail}`, {
      dial: true,
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    abort?.onAbort(null);
  }
  return new Connection(target.origin, sock);
}

/** Resolves like `p` unless `signal` aborts first; a late result is closed if it is a socket. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.then((v) => (v as { close?: () => void }).close?.(), () => {});
    return Promise.reject(new DOMException("aborted", "AbortError"));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      p.then((v) => (v as { close?: () => void }).close?.(), () => {});
      reject(new DOMException("aborted", "AbortError"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) return;
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
