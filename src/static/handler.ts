/**
 * Serves files from a site's `static_dir`: safe path resolution, index files, MIME types,
 * conditional requests, single byte ranges, compression (precompressed siblings, the in-memory
 * cache of compressed small files, compression as the file streams), the SPA fallback, and file
 * bodies read into one reused buffer per response.
 *
 * Responses are bws's own `HttpResponse`: the front end writes Content-Length from `length` (or
 * the body's size) and chooses the framing, so no header list here carries a framing field.
 *
 * @module
 */

import { sep as SEPARATOR } from "node:path";
import type { CompressionAlgorithm } from "../config/types.ts";
import { compressSource } from "../compress/compress_body.ts";
import type { CompressedFileCache } from "../compress/static_cache.ts";
import {
  chooseStaticVariant,
  type StaticCompression,
  type StaticVariant,
} from "../compress/static_variant.ts";
import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import { isDescriptorShortage } from "../net/descriptor_shortage.ts";
import { coarseNow } from "../net/deadlines.ts";
import { parseByteRange } from "./byte_range.ts";
import { openFileRange, readSmallRange, SMALL_RANGE } from "./file_stream.ts";
import { contentTypeFor } from "./mime.ts";
import { type Found, REAL_PATH_TTL_MS, realPathOrNull, RealPaths } from "./real_paths.ts";
import { decodeRequestPath } from "./request_path.ts";
import { SMALL_FILE, SmallFiles } from "./small_files.ts";
import { spaFallbackApplies } from "./spa_fallback.ts";
import { ifRangeAllows, isNotModified, type Validators, validatorsFor } from "./validators.ts";

/** Options of {@link createStaticHandler}. */
export interface StaticOptions {
  /** Absolute path of the site's static_dir. */
  readonly root: string;
  /** File served for a directory request ending in "/". @default "index.html" */
  readonly indexFile: string;
  /**
   * The site's compression (`[sites.compression]` with `static = true` and some algorithm), with
   * the process-wide cache of compressed small files; null or absent: files go as they are.
   */
  readonly compression?: StaticCompression | null;
  /**
   * `spa_fallback`: a file below the root ("index.html", "app/index.html"), served with 200 for
   * a GET/HEAD of a missing path that does not look like a file. Null, absent or "": off.
   */
  readonly spaFallback?: string | null;
}

/** Serves one request from the static root. Never rejects. */
export type StaticHandler = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

type Field = readonly [string, string];

const HTML = "text/html; charset=utf-8";
const TEXT = "text/plain; charset=utf-8";
const NOSNIFF: Field = ["x-content-type-options", "nosniff"];
const VARY: Field = ["vary", "Accept-Encoding"];
const ACCEPT_RANGES: Field = ["accept-ranges", "bytes"];
const NOT_FOUND_PAGE = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>404 Not Found' +
  "</title></head><body><h1>404 Not Found</h1><p>The requested resource was not found.</p>" +
  "</body></html>\n";
const encoder = new TextEncoder();
const NOT_FOUND_BYTES = encoder.encode(NOT_FOUND_PAGE);
const EMPTY = new Uint8Array(0);
/** Small files of every site, kept while they stay the same file (8 MiB for the process). */
const smallFiles = new SmallFiles();

/**
 * The small HTML 404 page, also used by the server for unmatched requests. The header list is a
 * fresh array on every call (callers may add to it); the body bytes are shared: never modify.
 */
export function notFoundResponse(): HttpResponse {
  return { status: 404, headers: [["content-type", HTML], NOSNIFF], body: NOT_FOUND_BYTES };
}

function textResponse(status: number, text: string, extra: Field[] = []): HttpResponse {
  return {
    status,
    headers: [["content-type", TEXT], NOSNIFF, ...extra],
    body: encoder.encode(text),
  };
}

/**
 * The answer for a file that was found but could not be opened: 503 while the process is out of
 * file descriptors (a moment's shortage: the file is there), else 404 (gone since it was found).
 */
function cannotOpen(err: unknown): HttpResponse {
  if (!isDescriptorShortage(err)) return notFoundResponse();
  return textResponse(503, "503 Service Unavailable\n", [["retry-after", "1"]]);
}

function methodNotAllowed(): HttpResponse {
  return textResponse(405, "405 Method Not Allowed\n", [["allow", "GET, HEAD"]]);
}

/** The 301 for a directory requested without its trailing slash; the query is kept. */
function directoryRedirect(path: string, query: string): HttpResponse {
  // Collapse leading slashes so "//host" can never become a protocol-relative redirect.
  const location = "/" + path.replace(/^\/+/, "") + "/" + query;
  return { status: 301, headers: [["location", location]], body: null };
}

/** What a path names below the root. */
type Lookup =
  | { readonly kind: "file"; readonly real: string; readonly info: Deno.FileInfo }
  /** A directory asked for without its trailing slash. */
  | { readonly kind: "directory" }
  | { readonly kind: "missing" };

const MISSING: Lookup = { kind: "missing" };
const DIRECTORY: Lookup = { kind: "directory" };

/**
 * Builds the static file handler of one site. The real path of `root` is resolved again every
 * second (so a root created after start-up, or a symlinked root switched to a new release, is
 * served); while it does not exist every request gets 404. Only GET and HEAD are served; bodies
 * are streamed, except small files (read whole, or kept in memory) and compressed small files
 * (whole from the cache).
 */
export function createStaticHandler(opts: StaticOptions): StaticHandler {
  const indexFile = opts.indexFile || "index.html";
  const compression = opts.compression ?? null;
  const fallback = opts.spaFallback ? opts.spaFallback.split("/").filter((s) => s !== "") : null;
  const realPaths = new RealPaths();
  let realRoot = realPathOrNull(opts.root);
  let rootUntil = coarseNow() + REAL_PATH_TTL_MS;

  /** The root's real path, resolved again every second: a root created after start-up, or a
   * symlinked root pointed at a new release, is served within a second. */
  function resolveRoot(): string | null {
    const now = coarseNow();
    if (realRoot === null || now >= rootUntil) {
      realRoot = realPathOrNull(opts.root);
      rootUntil = now + REAL_PATH_TTL_MS;
    }
    return realRoot;
  }

  /** Real path of a regular file or directory below the root, with its info; null otherwise. */
  function locate(root: string, path: string): Found | null {
    const found = realPaths.find(path, root);
    if (found === null) return null;
    const info = found.info;
    return info.isFile || info.isDirectory ? found : null;
  }

  /** The file that safe, decoded `segments` name (a directory's index file with a slash). */
  function lookup(root: string, segments: readonly string[], trailingSlash: boolean): Lookup {
    let found = locate(root, [root, ...segments].join(SEPARATOR));
    if (found === null) return MISSING;
    if (found.info.isDirectory) {
      if (!trailingSlash) return DIRECTORY;
      found = locate(root, found.real + SEPARATOR + indexFile);
      if (found === null || !found.info.isFile) return MISSING;
    } else if (trailingSlash) {
      return MISSING;
    }
    return { kind: "file", real: found.real, info: found.info };
  }

  return function serveStatic(req: HttpRequest): HttpResponse | Promise<HttpResponse> {
    const method = req.method;
    if (method !== "GET" && method !== "HEAD") return methodNotAllowed();

    const decoded = decodeRequestPath(req.path);
    if (decoded.kind === "bad_request") return textResponse(400, "400 Bad Request\n");

    const root = resolveRoot();
    if (root === null) return notFoundResponse();

    const found = decoded.kind === "ok"
      ? lookup(root, decoded.segments, decoded.trailingSlash)
      : MISSING;
    if (found.kind === "directory") return directoryRedirect(req.path, req.query);
    if (found.kind === "file") return serveFile(req, root, found.real, found.info, compression);

    if (fallback !== null && spaFallbackApplies(method, req.path)) {
      const app = lookup(root, fallback, false);
      if (app.kind === "file") return serveFile(req, root, app.real, app.info, compression);
    }
    return notFoundResponse();
  };
}

/** The form of a file being sent: what its headers say about it. */
interface Form {
  readonly contentType: string;
  /** null: send no ETag. */
  readonly etag: string | null;
  readonly lastModified: string | null;
  readonly encoding: CompressionAlgorithm | null;
  readonly vary: boolean;
  /** Accept-Ranges: bytes (only the identity form serves ranges). */
  readonly ranges: boolean;
}

function formHeaders(f: Form): Field[] {
  const h: Field[] = [["content-type", f.contentType], NOSNIFF];
  if (f.ranges) h.push(ACCEPT_RANGES);
  if (f.encoding !== null) h.push(["content-encoding", f.encoding]);
  if (f.vary) h.push(VARY);
  if (f.etag !== null) h.push(["etag", f.etag]);
  if (f.lastModified !== null) h.push(["last-modified", f.lastModified]);
  return h;
}

/** The 304 for a form: its validators and Vary, nothing about a body. */
function notModified(f: Form): HttpResponse {
  const h: Field[] = [];
  if (f.etag !== null) h.push(["etag", f.etag]);
  if (f.lastModified !== null) h.push(["last-modified", f.lastModified]);
  h.push(NOSNIFF);
  if (f.vary) h.push(VARY);
  return { status: 304, headers: h, body: null };
}

function serveFile(
  req: HttpRequest,
  root: string,
  path: string,
  info: Deno.FileInfo,
  compression: StaticCompression | null,
): HttpResponse | Promise<HttpResponse> {
  const v = validatorsFor(info.size, info.mtime);
  const contentType = contentTypeFor(path);
  if (compression === null) return serveAsIs(req, path, info, contentType, v, false);
  const variant = chooseStaticVariant({
    method: req.method,
    acceptEncoding: req.headers.get("accept-encoding"),
    range: req.headers.has("range"),
    root,
    path,
    info,
    contentType,
    etag: v.etag,
  }, compression);
  switch (variant.kind) {
    case "identity":
      return serveAsIs(req, path, info, contentType, v, variant.vary);
    case "precompressed":
      return servePrecompressed(req, contentType, variant);
    case "compress":
      return serveCompressed(req, path, info, contentType, v, variant, compression.cache);
  }
}

/** The file as it is: conditional requests, a single range, HEAD. */
function serveAsIs(
  req: HttpRequest,
  path: string,
  info: Deno.FileInfo,
  contentType: string,
  v: Validators,
  vary: boolean,
): HttpResponse {
  const size = info.size;
  const form: Form = {
    contentType,
    etag: v.etag,
    lastModified: v.lastModified,
    encoding: null,
    vary,
    ranges: true,
  };
  if (isNotModified(req.headers, v)) return notModified(form);

  let status = 200;
  let start = 0;
  let length = size;
  const headers = formHeaders(form);
  const rangeHeader = req.headers.get("range");
  if (rangeHeader !== null && ifRangeAllows(req.headers, v)) {
    const range = parseByteRange(rangeHeader, size);
    if (range.kind === "unsatisfiable") {
      const h = formHeaders({ ...form, contentType: TEXT });
      h.push(["content-range", `bytes */${size}`]);
      return { status: 416, headers: h, body: encoder.encode("416 Range Not Satisfiable\n") };
    }
    if (range.kind === "partial") {
      status = 206;
      start = range.start;
      length = range.end - range.start + 1;
      headers.push(["content-range", `bytes ${range.start}-${range.end}/${size}`]);
    }
  }

  if (req.method === "HEAD") return { status, headers, body: null, length };
  if (length === 0) return { status, headers, body: EMPTY };
  const whole = smallFile(path, info);
  if (whole !== null) {
    const body = length === size ? whole : whole.subarray(start, start + length);
    return { status, headers, body };
  }
  try {
    if (length <= SMALL_RANGE) {
      // Whole, in the head's write. A file that shrank since its stat takes the streamed path,
      // which fails the body the way a file shrinking while it streams does.
      const small = readSmallRange(path, start, length);
      if (small !== null) {
        return { status, headers, body: small.bytes, done: small.release };
      }
    }
    return { status, headers, body: openFileRange(path, start, length), length };
  } catch (err) {
    return cannotOpen(err); // gone or unreadable since it was found
  }
}

/** The whole small file from memory, or read now and remembered; null when it is not kept
 * (large, just changed, or changed while read). */
function smallFile(path: string, info: Deno.FileInfo): Uint8Array | null {
  if (info.size > SMALL_FILE) return null;
  const known = smallFiles.get(path, info);
  if (known !== null || !smallFiles.accepts(info, Date.now())) return known;
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch {
    return null; // the usual path reports it
  }
  if (bytes.length !== info.size) return null;
  smallFiles.put(path, info, bytes);
  return bytes;
}

/** A precompressed sibling, whole, with the original's type and the sibling's validators. */
function servePrecompressed(
  req: HttpRequest,
  contentType: string,
  variant: Extract<StaticVariant, { kind: "precompressed" }>,
): HttpResponse {
  const own = validatorsFor(variant.info.size, variant.info.mtime);
  const form: Form = {
    contentType,
    etag: variant.etag,
    lastModified: own.lastModified,
    encoding: variant.algorithm,
    vary: true,
    ranges: false,
  };
  if (isNotModified(req.headers, { ...own, etag: variant.etag })) return notModified(form);
  const size = variant.info.size;
  const headers = formHeaders(form);
  if (size === 0) return { status: 200, headers, body: EMPTY };
  try {
    return { status: 200, headers, body: openFileRange(variant.path, 0, size), length: size };
  } catch (err) {
    return cannotOpen(err);
  }
}

/** The file compressed by bws: whole from the cache (small files), else as it streams. */
function serveCompressed(
  req: HttpRequest,
  path: string,
  info: Deno.FileInfo,
  contentType: string,
  v: Validators,
  variant: Extract<StaticVariant, { kind: "compress" }>,
  cache: CompressedFileCache,
): HttpResponse | Promise<HttpResponse> {
  const form: Form = {
    contentType,
    etag: variant.etag,
    lastModified: v.lastModified,
    encoding: variant.algorithm,
    vary: true,
    ranges: false,
  };
  // A form without an ETag (never for bws's own tags) matches only `If-None-Match: *`.
  if (isNotModified(req.headers, { ...v, etag: variant.etag ?? "" })) return notModified(form);
  const headers = formHeaders(form);
  const size = info.size;
  try {
    if (variant.cached) {
      const file = { path, size, mtime: info.mtime, ctime: info.ctime, ino: info.ino };
      const body = cache.get(file, variant.algorithm, () => Deno.readFile(path));
      if (body instanceof Uint8Array) return { status: 200, headers, body };
      return body.then((bytes) => ({ status: 200, headers, body: bytes }), cannotOpen);
    }
    const source = openFileRange(path, 0, size);
    const body = compressSource(source, variant.algorithm, { sizeHint: size });
    return { status: 200, headers, body, length: null };
  } catch (err) {
    return cannotOpen(err);
  }
}
