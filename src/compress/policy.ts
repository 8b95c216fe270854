/**
 * Which responses get compressed, and the header edits a compressed response needs
 * (docs/behaviour.md "Compression").
 *
 * Never compressed: HEAD, 1xx/204/206/304, a response that already has Content-Encoding or a
 * Content-Range, `Cache-Control: no-transform`, `text/event-stream`, a type not in `types`, a
 * missing Content-Type, and a body known to be shorter than `min_size`.
 *
 * A compressed response gets `Content-Encoding`, `Vary: Accept-Encoding` (merged into an
 * existing Vary), no Content-Length or Accept-Ranges, and its ETag suffixed with the coding
 * inside the quotes (`"abc"` → `"abc-gzip"`, `W/"abc"` → `W/"abc-gzip"`), so it never equals
 * the identity ETag; an ETag that cannot be suffixed (not quoted) is dropped.
 *
 * @module
 */

import type { CompressionAlgorithm, CompressionConfig } from "../config/types.ts";

/** Response header fields as handlers return them: `[name, value]`, any name case. */
export type HeaderList = readonly (readonly [string, string])[];

/** What the policy needs to know about a response. */
export interface ResponseFacts {
  /** The request's method. */
  readonly method: string;
  readonly status: number;
  readonly headers: HeaderList;
  /** The body's length when known, else null. */
  readonly length: number | null;
}

/** One site's compression rules, compiled from `[sites.compression]`. */
export class CompressionPolicy {
  /** `[sites.compression] static`. */
  readonly static: boolean;
  /** `[sites.compression] proxy`. */
  readonly proxy: boolean;
  readonly minSize: number;
  readonly algorithms: readonly CompressionAlgorithm[];
  readonly #exact: ReadonlySet<string>;
  /** Top-level types of `type/*` entries. */
  readonly #major: ReadonlySet<string>;
  readonly #any: boolean;

  constructor(config: CompressionConfig) {
    this.static = config.static;
    this.proxy = config.proxy;
    this.minSize = config.minSize;
    this.algorithms = config.algorithms;
    this.#exact = new Set(config.types.filter((t) => !t.endsWith("/*")));
    this.#major = new Set(config.types.filter((t) => t.endsWith("/*")).map((t) => t.slice(0, -2)));
    this.#any = this.#major.has("*");
  }

  /** Whether a Content-Type value (parameters allowed, any case) is one of `types`. */
  compressibleType(contentType: string | null): boolean {
    if (contentType === null) return false;
    const semi = contentType.indexOf(";");
    const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    if (type === "text/event-stream") return false;
    const slash = type.indexOf("/");
    if (slash <= 0 || slash === type.length - 1) return false;
    return this.#any || this.#exact.has(type) || this.#major.has(type.slice(0, slash));
  }

  /**
   * Whether this response may be compressed (whatever the client accepts). A body of unknown
   * length may still turn out shorter than `minSize`: `compressResponse` checks that.
   */
  eligible(r: ResponseFacts): boolean {
    const s = r.status;
    if (r.method === "HEAD" || s < 200 || s === 204 || s === 206 || s === 304) return false;
    if (r.length !== null && (r.length < this.minSize || r.length === 0)) return false;
    let type: string | null = null;
    for (const [name, value] of r.headers) {
      const n = name.toLowerCase();
      if (n === "content-encoding" || n === "content-range") return false;
      if (n === "cache-control" && /(^|[\s,])no-transform(\s*(,|$))/i.test(value)) return false;
      if (n === "content-type") type = value;
    }
    return this.compressibleType(type);
  }
}

/** The ETag of the `algorithm`-coded form of a response whose identity ETag is `etag`. */
export function codedEtag(etag: string, algorithm: CompressionAlgorithm): string | null {
  const t = etag.trim();
  const weak = t.startsWith("W/");
  const opaque = weak ? t.slice(2) : t;
  if (opaque.length < 2 || opaque[0] !== '"' || opaque[opaque.length - 1] !== '"') return null;
  return `${weak ? "W/" : ""}${opaque.slice(0, -1)}-${algorithm}"`;
}

/**
 * The headers of the compressed form: Content-Encoding set, Vary merged, ETag suffixed (or
 * dropped), Content-Length and Accept-Ranges removed. Other fields keep their order.
 */
export function compressedHeaders(
  headers: HeaderList,
  algorithm: CompressionAlgorithm,
): HeaderList {
  const out: (readonly [string, string])[] = [];
  for (const field of headers) {
    const n = field[0].toLowerCase();
    if (n === "content-length" || n === "accept-ranges") continue;
    if (n === "etag") {
      const tag = codedEtag(field[1], algorithm);
      if (tag !== null) out.push([field[0], tag]);
      continue;
    }
    out.push(field);
  }
  out.push(["content-encoding", algorithm]);
  return withVary(out);
}

/**
 * The headers with `Vary: Accept-Encoding` (merged into the first Vary field, unless it already
 * names Accept-Encoding or is `*`). For every eligible response, compressed or not: a shared
 * cache must not hand one client's coding to another.
 */
export function withVary(headers: HeaderList): HeaderList {
  let first = -1;
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i];
    if (name.toLowerCase() !== "vary") continue;
    for (const token of value.split(",")) {
      const t = token.trim().toLowerCase();
      if (t === "*" || t === "accept-encoding") return headers;
    }
    if (first < 0) first = i;
  }
  if (first < 0) return [...headers, ["vary", "Accept-Encoding"]];
  const out = [...headers];
  const [name, value] = out[first];
  out[first] = [name, value.trim() === "" ? "Accept-Encoding" : `${value}, Accept-Encoding`];
  return out;
}

/**
 * For a proxied request: If-None-Match with the `algorithm`-suffixed tags bws gave out turned
 * back into the upstream's own tags, so the upstream can answer 304. Returns the value to send
 * and whether a tag was changed (then the upstream's 304 needs {@link notModifiedHeaders}).
 * Tags of another coding stay as they are: they name a form this client will not get.
 */
export function upstreamIfNoneMatch(
  value: string,
  algorithm: CompressionAlgorithm,
): { value: string; changed: boolean } {
  const suffix = `-${algorithm}"`;
  if (!value.includes(suffix)) return { value, changed: false };
  let changed = false;
  const tags = value.split(",").map((raw) => {
    const tag = raw.trim();
    if (!tag.endsWith(suffix)) return tag;
    changed = true;
    return tag.slice(0, -suffix.length) + '"';
  });
  return { value: tags.join(", "), changed };
}

/**
 * The headers of an upstream's 304 for a request whose If-None-Match was rewritten by
 * {@link upstreamIfNoneMatch}: the ETag gets the coding suffix back, Vary is merged.
 */
export function notModifiedHeaders(
  headers: HeaderList,
  algorithm: CompressionAlgorithm,
): HeaderList {
  const out = headers.map((field): readonly [string, string] => {
    if (field[0].toLowerCase() !== "etag") return field;
    return [field[0], codedEtag(field[1], algorithm) ?? field[1]];
  });
  return withVary(out);
}
