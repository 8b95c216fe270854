/**
 * Header rewriting for proxied requests and responses, compiled once per site from
 * `[sites.proxy.headers]` and `[sites.headers]`.
 *
 * @module
 */

import type { ProxyHeadersConfig } from "../config/types.ts";
import type { EdgeUpstreamEdit } from "../edge/types.ts";
import type { Fields } from "../http1/types.ts";

/** The connection-specific fields (RFC 9110 §7.6.1) and their legacy kin: they describe one
 * hop, so no hop passes them on. */
export const CONNECTION_FIELDS = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
] as const;

/** Hop-by-hop headers (the connection fields and proxy credentials), never forwarded either way. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  ...CONNECTION_FIELDS,
  "proxy-authorization",
  "proxy-authenticate",
]);

/** Headers the proxy sets itself; a client naming them in `Connection` cannot remove them. */
const PROTECTED: ReadonlySet<string> = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "forwarded",
  "x-request-id",
  "host",
]);

/** Request headers the client transport decides itself (framing, Host, 100-continue). */
const REQUEST_SKIP: ReadonlySet<string> = new Set(["host", "content-length", "expect"]);

export interface HeaderPlan {
  readonly addXForwarded: boolean;
  readonly addForwarded: boolean;
  readonly preserveHost: boolean;
  /** Lower-cased names removed from the upstream request. */
  readonly requestRemove: ReadonlySet<string>;
  /** Set (replacing) on the upstream request, names lower-cased; X-Request-ID "auto" is excluded. */
  readonly requestAdd: readonly (readonly [string, string])[];
  /** Lower-cased names removed from the client response. */
  readonly responseRemove: ReadonlySet<string>;
  /** Set (replacing) on the client response (names lower-cased), then the site's headers. */
  readonly responseAdd: readonly (readonly [string, string])[];
  /** X-Request-ID = "auto": send the request id upstream / return it to the client. */
  readonly requestIdUpstream: boolean;
  readonly requestIdResponse: boolean;
}

function isAutoRequestId(name: string, value: string): boolean {
  return name.toLowerCase() === "x-request-id" && value === "auto";
}

/** Compiles the header rules of one site. */
export function compileHeaderPlan(cfg: ProxyHeadersConfig): HeaderPlan {
  const lower = (names: readonly string[]) => names.map((n) => n.toLowerCase());
  const requestAdd: [string, string][] = [];
  const responseAdd: [string, string][] = [];
  let requestIdUpstream = false;
  let requestIdResponse = false;
  for (
    const [table, toReq, toRes] of [
      [cfg.both.add, true, true],
      [cfg.request.add, true, false],
      [cfg.response.add, false, true],
    ] as const
  ) {
    for (const [name, value] of Object.entries(table)) {
      if (isAutoRequestId(name, value)) {
        requestIdUpstream ||= toReq;
        requestIdResponse ||= toRes;
        continue;
      }
      const lowerName = name.toLowerCase();
      if (toReq) requestAdd.push([lowerName, value]);
      if (toRes) responseAdd.push([lowerName, value]);
    }
  }
  return Object.freeze({
    addXForwarded: cfg.addXForwarded,
    addForwarded: cfg.addForwarded,
    preserveHost: cfg.preserveHost,
    requestRemove: new Set([...lower(cfg.both.remove), ...lower(cfg.request.remove)]),
    requestAdd,
    responseRemove: new Set([...lower(cfg.both.remove), ...lower(cfg.response.remove)]),
    responseAdd,
    requestIdUpstream,
    requestIdResponse,
  });
}

/** Lower-cased header names listed in a Connection header value, minus the protected ones. */
function connectionNamed(value: string | null): Set<string> | null {
  if (!value) return null;
  // The usual values name no header (checked without splitting or allocating).
  const v = value.length <= 10 ? value.toLowerCase() : "";
  if (v === "keep-alive" || v === "close" || v === "upgrade") return null;
  const names = new Set<string>();
  for (const part of value.split(",")) {
    const n = part.trim().toLowerCase();
    if (n && !PROTECTED.has(n)) names.add(n);
  }
  return names;
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:@/+=-]{1,200}$/;

/** Keeps a well-formed incoming request id, else generates one. */
export function resolveRequestId(incoming: string | null): string {
  if (incoming !== null && REQUEST_ID_RE.test(incoming)) return incoming;
  return crypto.randomUUID();
}

/** The per-request facts the header rewrite needs. */
export interface ForwardContext {
  /** The socket peer. */
  readonly peer: string;
  /** Whether the peer is in trusted_proxies. */
  readonly peerTrusted: boolean;
  /** "http" or "https": how the client reached us. */
  readonly proto: string;
  /** The client's Host header value. */
  readonly host: string;
  readonly requestId: string;
}

function forwardedFor(ip: string): string {
  // RFC 7239 §6: IPv6 in brackets and quoted.
  return ip.includes(":") ? `"[${ip}]"` : ip;
}

const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") {
  TOKEN[c.charCodeAt(0)] = 1;
}

/** `v` as an RFC 7239 value: itself when it is a token, else a quoted string. */
function quoteIfNeeded(v: string): string {
  let token = v.length > 0;
  for (let i = 0; i < v.length && token; i++) {
    const c = v.charCodeAt(i);
    token = c < 128 && TOKEN[c] === 1;
  }
  return token ? v : `"${v.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * Builds the upstream request header list: hop-by-hop and Connection-named headers dropped,
 * removals applied (the site's, then an edge rule's, e.g. Authorization after basic auth),
 * forwarding headers set, Host chosen, configured headers set, an edge rule's headers added
 * (e.g. forward auth's Remote-User).
 */
export function buildUpstreamHeaders(
  src: Fields,
  plan: HeaderPlan,
  ctx: ForwardContext,
  upstreamHost: string,
  edit: EdgeUpstreamEdit | null = null,
): [string, string][] {
  let out: [string, string][] = [];
  let connection: string | null = null;
  let xff: string | null = null;
  let xfProto: string | null = null;
  let xfHost: string | null = null;
  let fwd: string | null = null;
  const remove = plan.requestRemove;
  const removes = remove.size > 0;
  const editRemove = edit === null ? null : edit.removeHeaders;
  const list = src.list;
  for (let i = 0; i < list.length; i++) {
    const name = list[i][0];
    const value = list[i][1];
    if (HOP_BY_HOP.has(name)) {
      if (name === "connection") {
        connection = connection === null ? value : connection + "," + value;
      }
      continue;
    }
    if (REQUEST_SKIP.has(name) || (removes && remove.has(name))) continue;
    if (editRemove !== null && editRemove.includes(name)) continue;
    switch (name) {
      case "x-forwarded-for":
        xff = xff === null ? value : xff + ", " + value;
        if (plan.addXForwarded) continue;
        break;
      case "x-forwarded-proto":
        xfProto = value;
        if (plan.addXForwarded) continue;
        break;
      case "x-forwarded-host":
        xfHost = value;
        if (plan.addXForwarded) continue;
        break;
      case "forwarded":
        fwd = fwd === null ? value : fwd + ", " + value;
        if (plan.addForwarded) continue;
        break;
      case "x-request-id":
        if (plan.requestIdUpstream) continue;
        break;
    }
    out.push([name, value]);
  }
  if (connection !== null) {
    const named = connectionNamed(connection);
    if (named !== null && named.size > 0) out = out.filter(([name]) => !named.has(name));
  }
  // An HTTP/1.0 request may come without a Host: the upstream gets its own name, not an empty one.
  const host = ctx.host;
  out.push(["host", plan.preserveHost && host !== "" ? host : upstreamHost]);
  const trusted = ctx.peerTrusted;
  if (plan.addXForwarded) {
    out.push(["x-forwarded-for", trusted && xff ? `${xff}, ${ctx.peer}` : ctx.peer]);
    out.push(["x-forwarded-proto", trusted && xfProto ? xfProto : ctx.proto]);
    const forwardedHost = trusted && xfHost ? xfHost : host;
    if (forwardedHost !== "") out.push(["x-forwarded-host", forwardedHost]);
  }
  if (plan.addForwarded) {
    let el = `for=${forwardedFor(ctx.peer)};proto=${ctx.proto}`;
    if (host !== "") el += `;host=${quoteIfNeeded(host)}`;
    out.push(["forwarded", trusted && fwd ? `${fwd}, ${el}` : el]);
  }
  if (plan.requestIdUpstream) out.push(["x-request-id", ctx.requestId]);
  for (const h of plan.requestAdd) setHeader(out, h);
  if (edit !== null) {
    for (const [name, value] of edit.addHeaders) out.push([name.toLowerCase(), value]);
  }
  return out;
}

/** Replaces every entry of `list` named like `field` (names lower-case) by `field` at the end. */
function setHeader(list: [string, string][], field: readonly [string, string]): void {
  const name = field[0];
  for (let i = list.length - 1; i >= 0; i--) if (list[i][0] === name) list.splice(i, 1);
  list.push(field as [string, string]);
}

/**
 * Builds the client response header list from the upstream's (names lower-cased): hop-by-hop
 * and Connection-named headers dropped, removals applied, configured and site headers set.
 * A plain list, not a `Headers`: `new Response` validates it once, a `Headers` twice.
 * `dropContentLength` leaves out Content-Length (for a body whose length the platform sets).
 */
export function buildResponseHeaders(
  upstream: readonly [string, string][],
  plan: HeaderPlan,
  siteHeaders: readonly (readonly [string, string])[],
  requestId: string,
  dropContentLength = false,
): [string, string][] {
  const out: [string, string][] = [];
  let named: Set<string> | null = null;
  for (let i = 0; i < upstream.length; i++) {
    if (upstream[i][0] === "connection") named = connectionNamed(upstream[i][1]);
  }
  const remove = plan.responseRemove;
  const removes = remove.size > 0;
  for (let i = 0; i < upstream.length; i++) {
    const h = upstream[i];
    const name = h[0];
    if (HOP_BY_HOP.has(name)) continue;
    if (named !== null && named.has(name)) continue;
    if (removes && remove.has(name)) continue;
    if (dropContentLength && name === "content-length") continue;
    out.push(h as [string, string]);
  }
  for (const h of plan.responseAdd) setHeader(out, h);
  if (plan.requestIdResponse) setHeader(out, ["x-request-id", requestId]);
  for (const h of siteHeaders) setHeader(out, h);
  return out;
}
