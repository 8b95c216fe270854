/**
 * `[sites.forward_auth]`: asks an auth service (Authelia, authentik, oauth2-proxy) about every
 * request before any upstream is contacted (docs/behaviour.md "Edge protection").
 *
 * The service gets a GET to `url` with the client's headers (no body; hop-by-hop fields, Host
 * and the client's own X-Forwarded-* of the names below dropped) plus `X-Forwarded-Method`,
 * `-Proto`, `-Host`, `-Uri` and `-For` (the client address as bws resolved it). A 2xx answer
 * lets the request through with `copy_headers` taken from the answer (the client's fields of
 * those names are removed first, so a client cannot claim to be `Remote-User: admin`). Any
 * other answer goes back to the client as it is: status, headers, body (a 302 to a login page,
 * a 401 with its challenge). The service unreachable, too slow (the site's proxy timeouts) or
 * answering garbage: 503. Nothing is cached.
 *
 * Uses bws's own upstream client (keep-alive pool to the auth service).
 *
 * @module
 */

import type { ForwardAuthConfig } from "../config/types.ts";
import type { BodySource, HttpRequest, HttpResponse } from "../http1/types.ts";
import type { UpstreamClient, UpstreamResponse, UpstreamTimeouts } from "../upstream/client.ts";
import { parseUpstreamUrl, type UpstreamTarget } from "../upstream/target.ts";
import { CONNECTION_FIELDS } from "../proxy/header_plan.ts";
import { refusalResponse } from "./responses.ts";
import type { EdgeCheck, EdgeRefusal, EdgeUpstreamEdit, EdgeVerdict } from "./types.ts";

/** Options of {@link ForwardAuth}. */
export interface ForwardAuthOptions {
  /** The upstream client to ask with (the site's, so the pool is shared). */
  readonly client: UpstreamClient;
  /** The site's `[sites.proxy.timeout]`, in milliseconds. */
  readonly timeouts: UpstreamTimeouts;
  /** Told why the service could not be asked (for the error log); the client gets 503. */
  readonly onError?: (err: unknown) => void;
}

/** Fields never sent to the auth service nor passed back from it. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  ...CONNECTION_FIELDS,
  "content-length",
  "expect",
  "host",
]);

/** Set by bws; a client's own values of these never reach the auth service. */
const FORWARDED = new Set([
  "x-forwarded-method",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-uri",
  "x-forwarded-for",
]);

/** How much of a 2xx answer's body is read (and dropped) to keep its connection for reuse. */
const DRAIN_LIMIT = 64 * 1024;

/** The compiled forward auth of one site or route. */
export class ForwardAuth implements EdgeCheck {
  readonly rule = "forward_auth" as const;
  readonly #target: UpstreamTarget;
  /** Path and query sent on the request line. */
  readonly #path: string;
  /** Configured names (as written) and their lower-case forms. */
  readonly #copy: readonly (readonly [string, string])[];
  readonly #removeCopied: readonly string[];
  readonly #client: UpstreamClient;
  readonly #timeouts: UpstreamTimeouts;
  readonly #onError: ((err: unknown) => void) | undefined;
  readonly #unavailable: EdgeRefusal = {
    refused: true,
    rule: "forward_auth",
    response: refusalResponse(503),
  };

  constructor(config: ForwardAuthConfig, opts: ForwardAuthOptions) {
    const url = new URL(config.url);
    this.#target = parseUpstreamUrl(url.origin);
    this.#path = (url.pathname || "/") + url.search;
    this.#copy = config.copyHeaders.map((n) => [n, n.toLowerCase()] as const);
    this.#removeCopied = [...new Set(this.#copy.map(([, lower]) => lower))];
    this.#client = opts.client;
    this.#timeouts = opts.timeouts;
    this.#onError = opts.onError;
  }

  async check(req: HttpRequest, client: string): Promise<EdgeVerdict> {
    let res: UpstreamResponse;
    try {
      res = await this.#client.request(this.#target, {
        method: "GET",
        target: this.#path,
        headers: this.#headersFor(req, client),
        body: null,
        bodyLength: null,
        signal: req,
        timeouts: this.#timeouts,
      });
    } catch (err) {
      this.#onError?.(err);
      return this.#unavailable;
    }
    if (res.status >= 200 && res.status < 300) return await this.#pass(res);
    return { refused: true, rule: "forward_auth", response: passBack(res), passedOn: true };
  }

  #headersFor(req: HttpRequest, client: string): [string, string][] {
    const out: [string, string][] = [["host", this.#target.hostHeader]];
    const list = req.headers.list;
    const connectionTokens = connectionOptions(req.headers.get("connection"));
    for (let i = 0; i < list.length; i++) {
      const [name, value] = list[i];
      if (HOP_BY_HOP.has(name) || FORWARDED.has(name) || connectionTokens?.has(name)) continue;
      out.push([name, value]);
    }
    out.push(
      ["x-forwarded-method", req.method],
      ["x-forwarded-proto", req.tls ? "https" : "http"],
      ["x-forwarded-host", req.host ?? ""],
      ["x-forwarded-uri", req.path + req.query],
      ["x-forwarded-for", client],
    );
    return out;
  }

  async #pass(res: UpstreamResponse): Promise<EdgeUpstreamEdit | null> {
    if (res.bytes === null) await drain(res.body);
    if (this.#copy.length === 0) return null;
    const add: [string, string][] = [];
    for (const [name, lower] of this.#copy) {
      for (const [n, v] of res.headers) if (n === lower) add.push([name, v]);
    }
    return { refused: false, removeHeaders: this.#removeCopied, addHeaders: add };
  }
}

/** Lower-case names listed in a Connection field (they are hop-by-hop too), or null. */
function connectionOptions(value: string | null): Set<string> | null {
  if (value === null) return null;
  return new Set(value.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean));
}

/** Reads a small body to its end (so the connection can be reused), or gives up on a big one. */
async function drain(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (body === null) return;
  const reader = body.getReader();
  let seen = 0;
  try {
    while (seen <= DRAIN_LIMIT) {
      const { done, value } = await reader.read();
      if (done) return;
      seen += value.length;
    }
    await reader.cancel();
  } catch {
    // A broken body after a 2xx head: the verdict stands, the connection is dropped.
  }
}

/** The auth service's answer as the client's response. */
function passBack(res: UpstreamResponse): HttpResponse {
  const headers: [string, string][] = [];
  const tokens = connectionOptions(
    res.headers.find(([n]) => n === "connection")?.[1] ?? null,
  );
  for (const [n, v] of res.headers) {
    if (!HOP_BY_HOP.has(n) && !tokens?.has(n)) headers.push([n, v]);
  }
  if (res.bytes !== null) return { status: res.status, headers, body: res.bytes };
  const stream = res.body;
  return {
    status: res.status,
    headers,
    body: stream === null ? null : streamSource(stream),
    length: res.contentLength,
  };
}

/** A BodySource over a ReadableStream (the upstream client's streamed body). */
export function streamSource(stream: ReadableStream<Uint8Array>): BodySource {
  const reader = stream.getReader();
  let done = false;
  return {
    async read() {
      if (done) return null;
      const r = await reader.read();
      if (r.done) {
        done = true;
        return null;
      }
      return r.value;
    },
    cancel(reason?: unknown) {
      if (done) return;
      done = true;
      reader.cancel(reason).catch(() => {});
    },
  };
}
