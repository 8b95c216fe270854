/**
 * A request as the front end would hand it to a handler, for unit tests of the edge rules
 * (they read only the head).
 *
 * @module
 */

import { Fields, type HttpRequest } from "../../src/http1/types.ts";
import { SignalAbortSource } from "../../src/net/abort_source.ts";

/** Options of {@link testRequest}. */
export interface TestRequestInit {
  method?: string;
  /** Origin-form target; path and query are split from it. @default "/" */
  target?: string;
  /** Header fields; names are lower-cased. */
  headers?: [string, string][];
  host?: string | null;
  peer?: string;
  tls?: boolean;
  signal?: AbortSignal;
}

/** An HttpRequest without a body. */
export function testRequest(init: TestRequestInit = {}): HttpRequest {
  const target = init.target ?? "/";
  const q = target.indexOf("?");
  const controller = new AbortController();
  const abort = new SignalAbortSource(init.signal ?? controller.signal);
  return {
    method: init.method ?? "GET",
    target,
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? "" : target.slice(q),
    version: "1.1",
    headers: new Fields((init.headers ?? []).map(([n, v]) => [n.toLowerCase(), v] as const)),
    host: init.host === undefined ? "example.com" : init.host,
    body: null,
    bodyLength: null,
    peer: { hostname: init.peer ?? "127.0.0.1", port: 40000 },
    tls: init.tls ?? false,
    time: Date.now(),
    started: performance.now(),
    signal: init.signal ?? controller.signal,
    clientGone: false,
    get aborted() {
      return abort.aborted;
    },
    onAbort(fn: (() => void) | null) {
      abort.onAbort(fn);
    },
  };
}
