/**
 * The static handler's options for one site, built from its config: the plan compiler calls
 * {@link staticOptionsFor} and hands the result to `createStaticHandler`.
 *
 * @module
 */

import type { SiteConfig } from "../config/types.ts";
import { Negotiator } from "../compress/negotiate.ts";
import { CompressionPolicy } from "../compress/policy.ts";
import type { CompressedFileCache } from "../compress/static_cache.ts";
import type { StaticOptions } from "./handler.ts";

/**
 * The options of a site that has a `static_dir`. `cache` is the process-wide cache of compressed
 * small files: create it once and pass the same one on every reload (its keys name the file's
 * path, size and mtime, so entries of files that changed simply age out).
 * Compression is off when `[sites.compression]` has `static = false` or no algorithm.
 */
export function staticOptionsFor(site: SiteConfig, cache: CompressedFileCache): StaticOptions {
  const c = site.compression;
  const compress = c.static && c.algorithms.length > 0;
  return {
    root: site.staticDir,
    indexFile: site.indexFile,
    compression: compress
      ? { policy: new CompressionPolicy(c), negotiator: new Negotiator(c.algorithms), cache }
      : null,
    spaFallback: site.spaFallback || null,
  };
}
