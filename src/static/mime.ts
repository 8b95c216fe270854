/**
 * Content types for static files, chosen by file extension.
 *
 * @module
 */

const UTF8 = "; charset=utf-8";

/** Lower-case extension (no dot) → media type. Text types get `; charset=utf-8` on lookup. */
const TYPES: Readonly<Record<string, string>> = {
  html: "text/html",
  htm: "text/html",
  css: "text/css",
  js: "text/javascript",
  mjs: "text/javascript",
  cjs: "text/javascript",
  json: "application/json",
  map: "application/json",
  webmanifest: "application/manifest+json",
  txt: "text/plain",
  xml: "application/xml",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  ico: "image/x-icon",
  bmp: "image/bmp",
  woff: "font/woff",
  woff2: "font/woff2",
  ttf: "font/ttf",
  otf: "font/otf",
  pdf: "application/pdf",
  wasm: "application/wasm",
  mp4: "video/mp4",
  webm: "video/webm",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  wav: "audio/wav",
  zip: "application/zip",
  gz: "application/gzip",
  tar: "application/x-tar",
  csv: "text/csv",
  md: "text/markdown",
  yaml: "application/yaml",
  yml: "application/yaml",
  toml: "application/toml",
};

/** Types that are text although not `text/*`; they get a charset too. */
const TEXTUAL = new Set([
  "application/json",
  "application/manifest+json",
  "application/xml",
  "image/svg+xml",
  "application/yaml",
  "application/toml",
]);

/** The fallback for unknown or missing extensions. */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/**
 * The `Content-Type` for a file name or path, by its extension (case-insensitive). Text types
 * carry `; charset=utf-8`; unknown extensions give `application/octet-stream`.
 */
export function contentTypeFor(path: string): string {
  const slash = path.lastIndexOf("/");
  const dot = path.lastIndexOf(".");
  if (dot <= slash + 1) return DEFAULT_CONTENT_TYPE; // no extension, or a dotfile name only
  const type = TYPES[path.slice(dot + 1).toLowerCase()];
  if (type === undefined) return DEFAULT_CONTENT_TYPE;
  return type.startsWith("text/") || TEXTUAL.has(type) ? type + UTF8 : type;
}
