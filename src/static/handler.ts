/**
 * Serves files from a site's `static_dir`: safe path resolution, index files, MIME types,
 * conditional requests, single byte ranges, and streamed bodies.
 *
 * @module
 */

import { sep as SEPARATOR } from "node:path";
import { contentTypeFor } from "./mime.ts";
import { decodeRequestPath } from "./request_path.ts";
import { ifRangeAllows, isNotModified, type Validators, validatorsFor } from "./validators.ts";
import { parseByteRange } from "./byte_range.ts";
import { fileRangeStream } from "./file_stream.ts";

/** Options of {@link createStaticHandler}. */
export interface StaticOptions {
  /** Absolute path of the site's static_dir. */
  root: string;
  /** File served for a directory request ending in "/". @default "index.html" */
  indexFile: string;
}

/** Serves one request from the static root; `pathname` is raw (still percent-encoded). */
export type StaticRequestHandler = (req: Request, pathname: string) => Promise<Response>;

const HTML = "text/html; charset=utf-8";
const TEXT = "text/plain; charset=utf-8";
const NOT_FOUND_PAGE = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>404 Not Found' +
  "</title></head><body><h1>404 Not Found</h1><p>The requested resource was not found.</p>" +
  "</body></html>\n";
const encoder = new TextEncoder();
const NOT_FOUND_BYTES = encoder.encode(NOT_FOUND_PAGE);

/** The small HTML 404 page, also used by the server for unmatched requests. */
export function notFoundResponse(): Response {
  return new Response(NOT_FOUND_BYTES, {
    status: 404,
    headers: {
      "content-type": HTML,
      "content-length": String(NOT_FOUND_BYTES.length),
      "x-content-type-options": "nosniff",
    },
  });
}

function textResponse(status: number, text: string, extra?: Record<string, string>): Response {
  // An explicit length (Deno keeps it) lets the access log report the bytes sent.
  const body = encoder.encode(text);
  return new Response(body, {
    status,
    headers: {
      "content-type": TEXT,
      "content-length": String(body.length),
      "x-content-type-options": "nosniff",
      ...extra,
    },
  });
}

function methodNotAllowed(): Response {
  return textResponse(405, "405 Method Not Allowed\n", { allow: "GET, HEAD" });
}

/** Real path of `path` if it exists, else null; never throws for missing/invalid paths. */
async function realPathOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.realPath(path);
  } catch {
    return null;
  }
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

/** Whether `real` is the root itself or lies below it. */
function isInside(real: string, realRoot: string): boolean {
  return real === realRoot ||
    real.startsWith(realRoot.endsWith(SEPARATOR) ? realRoot : realRoot + SEPARATOR);
}

/** The Location for a directory requested without its trailing slash. */
function directoryRedirect(req: Request, pathname: string): Response {
  // Collapse leading slashes so "//host" can never become a protocol-relative redirect.
  const path = "/" + pathname.replace(/^\/+/, "") + "/";
  const q = req.url.indexOf("?");
  const search = q < 0 ? "" : req.url.slice(q).split("#")[0];
  return new Response(null, { status: 301, headers: { location: path + search } });
}

function baseHeaders(contentType: string, v: Validators): Headers {
  const h = new Headers({
    "content-type": contentType,
    "x-content-type-options": "nosniff",
    "accept-ranges": "bytes",
    etag: v.etag,
  });
  if (v.lastModified !== null) h.set("last-modified", v.lastModified);
  return h;
}

/**
 * Builds the static file handler of one site. The real path of `root` is resolved once, on the
 * first request that finds it (so a root created after start-up still works); until then every
 * request gets 404. Only GET and HEAD are served; bodies are streamed, never buffered.
 */
export function createStaticHandler(opts: StaticOptions): StaticRequestHandler {
  const indexFile = opts.indexFile || "index.html";
  let realRoot: string | null = null;
  try {
    realRoot = Deno.realPathSync(opts.root);
  } catch {
    // Not there yet: retried per request until it exists.
  }

  async function resolveRoot(): Promise<string | null> {
    if (realRoot === null) realRoot = await realPathOrNull(opts.root);
    return realRoot;
  }

  /** Real path of a regular file or directory below the root, with its info; null otherwise. */
  async function locate(
    root: string,
    path: string,
  ): Promise<{ real: string; info: Deno.FileInfo } | null> {
    const real = await realPathOrNull(path);
    if (real === null || !isInside(real, root)) return null;
    const info = await statOrNull(real);
    if (info === null || !(info.isFile || info.isDirectory)) return null;
    return { real, info };
  }

  return async function serveStatic(req: Request, pathname: string): Promise<Response> {
    const method = req.method;
    if (method !== "GET" && method !== "HEAD") return methodNotAllowed();

    const decoded = decodeRequestPath(pathname);
    if (decoded.kind === "bad_request") return textResponse(400, "400 Bad Request\n");
    if (decoded.kind === "not_found") return notFoundResponse();

    const root = await resolveRoot();
    if (root === null) return notFoundResponse();

    let found = await locate(root, [root, ...decoded.segments].join(SEPARATOR));
    if (found === null) return notFoundResponse();
    if (found.info.isDirectory) {
      if (!decoded.trailingSlash) return directoryRedirect(req, pathname);
      found = await locate(root, found.real + SEPARATOR + indexFile);
      if (found === null || !found.info.isFile) return notFoundResponse();
    } else if (decoded.trailingSlash) {
      return notFoundResponse();
    }

    return serveFile(req, found.real, found.info);
  };
}

async function serveFile(req: Request, path: string, info: Deno.FileInfo): Promise<Response> {
  const size = info.size;
  const v = validatorsFor(size, info.mtime);
  const headers = baseHeaders(contentTypeFor(path), v);

  if (isNotModified(req.headers, v)) {
    headers.delete("content-type");
    headers.delete("accept-ranges");
    return new Response(null, { status: 304, headers });
  }

  let status = 200;
  let start = 0;
  let length = size;
  const rangeHeader = req.headers.get("range");
  if (rangeHeader !== null && ifRangeAllows(req.headers, v)) {
    const range = parseByteRange(rangeHeader, size);
    if (range.kind === "unsatisfiable") {
      headers.set("content-range", `bytes */${size}`);
      headers.set("content-type", TEXT);
      return new Response("416 Range Not Satisfiable\n", { status: 416, headers });
    }
    if (range.kind === "partial") {
      status = 206;
      start = range.start;
      length = range.end - range.start + 1;
      headers.set("content-range", `bytes ${range.start}-${range.end}/${size}`);
    }
  }
  headers.set("content-length", String(length));

  if (req.method === "HEAD" || length === 0) {
    return new Response(null, { status, headers });
  }

  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return notFoundResponse();
  }
  // A range that runs to the end of the file can use the file's own stream (which Deno.serve
  // pipes without copying through JS); only a bounded range needs the counting stream.
  let body: ReadableStream<Uint8Array>;
  if (start + length === size) {
    try {
      if (start > 0) await file.seek(start, Deno.SeekMode.Start);
    } catch {
      file.close();
      return notFoundResponse();
    }
    body = file.readable;
  } else {
    body = fileRangeStream(file, start, length);
  }
  return new Response(body, { status, headers });
}
