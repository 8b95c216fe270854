/**
 * The request object the front end hands to handlers: the parsed head's fields, the body, and
 * the abort signal that fires when the client goes away (or the request is cut at shutdown).
 *
 * @module
 */

import { wallTime } from "../net/deadlines.ts";
import type { RequestBody } from "./request_body.ts";
import type { RequestHead } from "./request_head.ts";
import { Fields, type HttpRequest, type HttpVersion, type Peer } from "./types.ts";

/** What a request reads from its connection. */
export interface RequestConnection {
  readonly peer: Peer;
  readonly tls: boolean;
  /** The client went away. */
  readonly gone: boolean;
}

/** A request of one client connection (fields filled from the parsed head). */
export class FrontRequest implements HttpRequest {
  readonly method: string;
  readonly target: string;
  readonly path: string;
  readonly query: string;
  readonly version: HttpVersion;
  readonly headers: Fields;
  readonly host: string | null;
  body: RequestBody | null = null;
  readonly bodyLength: number | null;
  readonly peer: Peer;
  readonly tls: boolean;
  readonly time: number;
  readonly started: number;
  readonly #conn: RequestConnection;
  #ctl: AbortController | null = null;
  #abortFn: (() => void) | null = null;
  #cut = false;

  constructor(conn: RequestConnection, head: RequestHead) {
    this.#conn = conn;
    this.method = head.method;
    this.target = head.target;
    this.path = head.path;
    this.query = head.query;
    this.version = head.version;
    this.headers = new Fields(head.headers);
    this.host = head.host;
    this.bodyLength = head.chunked ? null : head.contentLength;
    this.peer = conn.peer;
    this.tls = conn.tls;
    this.started = performance.now();
    this.time = wallTime(this.started);
  }

  get signal(): AbortSignal {
    if (this.#ctl === null) {
      this.#ctl = new AbortController();
      if (this.#conn.gone) this.#ctl.abort();
    }
    return this.#ctl.signal;
  }

  get clientGone(): boolean {
    return this.#conn.gone;
  }

  get aborted(): boolean {
    return this.#conn.gone || this.#cut;
  }

  onAbort(fn: (() => void) | null): void {
    if (fn !== null && (this.#conn.gone || this.#cut)) {
      this.#abortFn = null;
      fn();
      return;
    }
    this.#abortFn = fn;
  }

  /** The client went away, or the request was cut (its listener's grace period is over). */
  abort(cut = false): void {
    if (cut) this.#cut = true;
    const fn = this.#abortFn;
    this.#abortFn = null;
    fn?.();
    this.#ctl?.abort();
  }
}
