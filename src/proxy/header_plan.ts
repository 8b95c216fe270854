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
  /** Set (replacing) on the upstream request, names lower-cased, one per name (the last one
   * configured); X-Request-ID "auto" is excluded. */
  readonly requestAdd: readonly (readonly [string, string])[];
  /** The names of `requestAdd`: no other field of these names goes upstream. */
  readonly requestAddNames: ReadonlySet<string>;
  /** `requestAdd` as header lines (`name: value\r\n`). */
  readonly requestAddLines: string;
  /** The forwarding fields rendered for recent clients (a memo, not configuration). */
  readonly forwardLines: ForwardLinesCache;
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
  // A name set twice (in `both` and `request`) keeps its last value, in the last one's place.
  const lastAdds: [string, string][] = [];
  const added = new Set<string>();
  for (let i = requestAdd.length - 1; i >= 0; i--) {
    if (added.has(requestAdd[i][0])) continue;
    added.add(requestAdd[i][0]);
    lastAdds.unshift(requestAdd[i]);
  }
  return Object.freeze({
    addXForwarded: cfg.addXForwarded,
    addForwarded: cfg.addForwarded,
    preserveHost: cfg.preserveHost,
    requestRemove: new Set([...lower(cfg.both.remove), ...lower(cfg.request.remove)]),
    requestAdd: lastAdds,
    requestAddNames: added,
    requestAddLines: headerLines(lastAdds),
    forwardLines: new ForwardLinesCache(),
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

/** What the client sent of the fields the proxy rewrites. */
interface Incoming {
  xff: string | null;
  xfProto: string | null;
  xfHost: string | null;
  fwd: string | null;
}

/**
 * The client's fields that go upstream as they came: hop-by-hop and Connection-named fields
 * dropped, removals applied (the site's, then an edge rule's, e.g. Authorization after basic
 * auth), and the fields the proxy sets itself left out (their incoming values kept in `inc`).
 */
function keptRequestFields(
  src: Fields,
  plan: HeaderPlan,
  edit: EdgeUpstreamEdit | null,
  inc: Incoming,
): [string, string][] {
  let out: [string, string][] = [];
  let connection: string | null = null;
  const remove = plan.requestRemove;
  const removes = remove.size > 0;
  const added = plan.requestAddNames;
  const adds = added.size > 0;
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
    if (REQUEST_SKIP.has(name) || (removes && remove.has(name)) || (adds && added.has(name))) {
      continue;
    }
    if (editRemove !== null && editRemove.includes(name)) continue;
    switch (name) {
      case "x-forwarded-for":
        inc.xff = inc.xff === null ? value : inc.xff + ", " + value;
        if (plan.addXForwarded) continue;
        break;
      case "x-forwarded-proto":
        inc.xfProto = value;
        if (plan.addXForwarded) continue;
        break;
      case "x-forwarded-host":
        inc.xfHost = value;
        if (plan.addXForwarded) continue;
        break;
      case "forwarded":
        inc.fwd = inc.fwd === null ? value : inc.fwd + ", " + value;
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
  return out;
}

/** The Host sent upstream. An HTTP/1.0 request may come without one: the upstream gets its
 * own name then, not an empty one. */
function upstreamHostValue(plan: HeaderPlan, host: string, upstreamHost: string): string {
  return plan.preserveHost && host !== "" ? host : upstreamHost;
}

/** X-Forwarded-For/-Proto/-Host and Forwarded as the plan asks (a trusted peer's incoming
 * values extended), minus the names `requestAdd` sets. */
function forwardingFields(
  plan: HeaderPlan,
  ctx: ForwardContext,
  inc: Incoming,
): [string, string][] {
  const out: [string, string][] = [];
  const host = ctx.host;
  const trusted = ctx.peerTrusted;
  const added = plan.requestAddNames;
  if (plan.addXForwarded) {
    const xff = inc.xff;
    out.push(["x-forwarded-for", trusted && xff ? `${xff}, ${ctx.peer}` : ctx.peer]);
    out.push(["x-forwarded-proto", trusted && inc.xfProto ? inc.xfProto : ctx.proto]);
    const forwardedHost = trusted && inc.xfHost ? inc.xfHost : host;
    if (forwardedHost !== "") out.push(["x-forwarded-host", forwardedHost]);
  }
  if (plan.addForwarded) {
    let el = `for=${forwardedFor(ctx.peer)};proto=${ctx.proto}`;
    if (host !== "") el += `;host=${quoteIfNeeded(host)}`;
    out.push(["forwarded", trusted && inc.fwd ? `${inc.fwd}, ${el}` : el]);
  }
  return added.size === 0 ? out : out.filter(([name]) => !added.has(name));
}

function sendsRequestId(plan: HeaderPlan): boolean {
  return plan.requestIdUpstream && !plan.requestAddNames.has("x-request-id");
}

/**
 * Builds the upstream request header list: the client's kept fields, then Host, the forwarding
 * fields, X-Request-ID, the configured fields and an edge rule's (e.g. forward auth's
 * Remote-User), each name the proxy sets appearing once.
 */
export function buildUpstreamHeaders(
  src: Fields,
  plan: HeaderPlan,
  ctx: ForwardContext,
  upstreamHost: string,
  edit: EdgeUpstreamEdit | null = null,
): [string, string][] {
  const inc: Incoming = { xff: null, xfProto: null, xfHost: null, fwd: null };
  const out = keptRequestFields(src, plan, edit, inc);
  if (!plan.requestAddNames.has("host")) {
    out.push(["host", upstreamHostValue(plan, ctx.host, upstreamHost)]);
  }
  out.push(...forwardingFields(plan, ctx, inc));
  if (sendsRequestId(plan)) out.push(["x-request-id", ctx.requestId]);
  out.push(...plan.requestAdd as [string, string][]);
  if (edit !== null) {
    for (const [name, value] of edit.addHeaders) out.push([name.toLowerCase(), value]);
  }
  return out;
}

/** The upstream request's fields: the client's as pairs, the proxy's as ready header lines. */
export interface UpstreamFields {
  readonly headers: [string, string][];
  /** `name: value\r\n` lines, sent after `headers`. */
  readonly lines: string;
}

/**
 * The fields of {@link buildUpstreamHeaders}, in the same order, with the proxy's own rendered as
 * header lines: the forwarding lines of a client that keeps its connection (same address, Host
 * and scheme, no incoming forwarding values to extend) are rendered once, not per request.
 */
export function upstreamFields(
  src: Fields,
  plan: HeaderPlan,
  ctx: ForwardContext,
  upstreamHost: string,
  edit: EdgeUpstreamEdit | null,
): UpstreamFields {
  const inc: Incoming = { xff: null, xfProto: null, xfHost: null, fwd: null };
  const headers = keptRequestFields(src, plan, edit, inc);
  let lines = plan.requestAddNames.has("host")
    ? ""
    : "host: " + upstreamHostValue(plan, ctx.host, upstreamHost) + "\r\n";
  const cacheable = ctx.host.length <= FORWARD_LINES_HOST &&
    (!ctx.peerTrusted ||
      (inc.xff === null && inc.xfProto === null && inc.xfHost === null && inc.fwd === null));
  const cache = plan.forwardLines;
  let forwarding = cacheable ? cache.get(ctx.peer, ctx.host, ctx.proto) : null;
  if (forwarding === null) {
    forwarding = headerLines(forwardingFields(plan, ctx, inc));
    if (cacheable) cache.set(ctx.peer, ctx.host, ctx.proto, forwarding);
  }
  lines += forwarding;
  if (sendsRequestId(plan)) lines += "x-request-id: " + ctx.requestId + "\r\n";
  lines += plan.requestAddLines;
  if (edit !== null) {
    for (const [name, value] of edit.addHeaders) {
      lines += name.toLowerCase() + ": " + value + "\r\n";
    }
  }
  return { headers, lines };
}

/** `fields` as header lines, one flat string (kept and sent often: no rope to walk each time). */
function headerLines(fields: readonly (readonly [string, string])[]): string {
  return fields.map(([name, value]) => name + ": " + value + "\r\n").join("");
}

/** Entries a {@link ForwardLinesCache} keeps; past it the oldest goes. */
const FORWARD_LINES_KEPT = 1024;
/** The longest Host whose lines are kept (a DNS name and a port): the cache holds ~1 KB per
 * entry at most, whatever Host values clients make up. */
const FORWARD_LINES_HOST = 260;

/**
 * Forwarding lines by client address: a client on a kept-alive connection sends request after
 * request with the same Host over the same scheme, and its lines come out the same every time.
 * One entry per address (the last Host and scheme it used), at most {@link FORWARD_LINES_KEPT}.
 */
export class ForwardLinesCache {
  readonly #byPeer = new Map<string, { host: string; proto: string; lines: string }>();

  /** The lines stored for this client, Host and scheme, or null. */
  get(peer: string, host: string, proto: string): string | null {
    const e = this.#byPeer.get(peer);
    return e !== undefined && e.host === host && e.proto === proto ? e.lines : null;
  }

  set(peer: string, host: string, proto: string, lines: string): void {
    const m = this.#byPeer;
    if (m.size >= FORWARD_LINES_KEPT && !m.has(peer)) m.delete(m.keys().next().value!);
    m.set(peer, { host, proto, lines });
  }
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
