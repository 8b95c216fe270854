/**
 * Which form of a static file to send: as it is, a precompressed sibling, or compressed by bws
 * (from the in-memory cache for small files, else as it streams). The static handler asks this
 * once it has found the file, before it checks If-None-Match (against the ETag of the form
 * chosen here), and builds the response from the answer.
 *
 * Only files whose type is in `types` are considered, for siblings too (add a type, such as
 * `application/wasm`, to have its siblings served). HEAD and Range requests get the file as it
 * is. Every response of a considered type carries `Vary: Accept-Encoding`.
 *
 * @module
 */

import type { CompressionAlgorithm } from "../config/types.ts";
import { validatorsFor } from "../static/validators.ts";
import type { Negotiator } from "./negotiate.ts";
import type { CompressionPolicy } from "./policy.ts";
import { codedEtag } from "./policy.ts";
import { findPrecompressed } from "./precompressed.ts";
import type { CompressedFileCache } from "./static_cache.ts";

/** The file the static handler found, and the request. */
export interface StaticFileRequest {
  readonly method: string;
  readonly acceptEncoding: string | null;
  /** The request has a Range header. */
  readonly range: boolean;
  /** Real path of the static root, and of the file below it. */
  readonly root: string;
  readonly path: string;
  readonly info: Deno.FileInfo;
  /** The file's Content-Type (from its name). */
  readonly contentType: string;
  /** The file's own (identity) ETag. */
  readonly etag: string;
}

/** The form to send. */
export type StaticVariant =
  /** The file as it is; `vary`: add Vary: Accept-Encoding. */
  | { readonly kind: "identity"; readonly vary: boolean }
  /** Send this sibling file with Content-Encoding, this ETag, the original's Content-Type. */
  | {
    readonly kind: "precompressed";
    readonly algorithm: CompressionAlgorithm;
    readonly path: string;
    readonly info: Deno.FileInfo;
    readonly etag: string;
  }
  /**
   * Compress the file: `cached` → `cache.get(...)` gives the whole body (length known); else
   * stream it through `compressSource` (length unknown). `etag` null: send none.
   */
  | {
    readonly kind: "compress";
    readonly algorithm: CompressionAlgorithm;
    readonly etag: string | null;
    readonly cached: boolean;
  };

const AS_IS: StaticVariant = Object.freeze({ kind: "identity", vary: false });
const AS_IS_VARY: StaticVariant = Object.freeze({ kind: "identity", vary: true });

/** One site's compression settings as the static handler holds them. */
export interface StaticCompression {
  readonly policy: CompressionPolicy;
  readonly negotiator: Negotiator;
  readonly cache: CompressedFileCache;
}

/** Chooses the form of a static file to send (see the module comment). */
export function chooseStaticVariant(
  req: StaticFileRequest,
  site: StaticCompression,
): StaticVariant {
  const { policy } = site;
  if (!policy.static || policy.algorithms.length === 0) return AS_IS;
  if (!policy.compressibleType(req.contentType)) return AS_IS;
  if (req.method !== "GET" || req.range) return AS_IS_VARY;
  const order = site.negotiator.negotiate(req.acceptEncoding);
  if (order.length === 0) return AS_IS_VARY;
  const sibling = findPrecompressed(req.root, req.path, req.info, order);
  if (sibling !== null) {
    const own = validatorsFor(sibling.info.size, sibling.info.mtime).etag;
    return {
      kind: "precompressed",
      algorithm: sibling.algorithm,
      path: sibling.path,
      info: sibling.info,
      etag: codedEtag(own, sibling.algorithm) as string,
    };
  }
  const size = req.info.size;
  if (size === 0 || size < policy.minSize) return AS_IS_VARY;
  const algorithm = order[0];
  return {
    kind: "compress",
    algorithm,
    etag: codedEtag(req.etag, algorithm),
    cached: site.cache.accepts(size),
  };
}
