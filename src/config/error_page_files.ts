/**
 * Reads the HTML files of `[sites.error_pages]` while a config is loaded, so a missing or
 * unreadable page fails `bws check`, a start and a reload alike (with key and line), and a
 * running server never touches the disk to answer an error.
 *
 * @module
 */

import { childPath } from "./key_path.ts";
import type { ErrorPage } from "./types.ts";
import type { RawIssue } from "./validate.ts";
import { errorText } from "../log/error_text.ts";

/** Largest error page bws holds in memory (per file; one copy per site that names it). */
export const MAX_ERROR_PAGE_BYTES = 1024 * 1024;

/**
 * Replaces each site's `errorPages` (key → absolute path, as the schema built it) by key →
 * `{ file, body }`, reading each file once. Returns one issue per file that cannot be read.
 * Sites whose `error_pages` table already has issues are skipped.
 */
export function readErrorPages(
  sites: readonly Record<string, unknown>[],
  broken: (path: string) => boolean,
): RawIssue[] {
  const issues: RawIssue[] = [];
  const read = new Map<string, Uint8Array | string>();
  sites.forEach((site, i) => {
    const path = `sites[${i}].error_pages`;
    const files = site.errorPages as Record<string, string>;
    const pages: Record<string, ErrorPage> = {};
    site.errorPages = pages;
    if (broken(path)) return;
    for (const [key, file] of Object.entries(files)) {
      let body = read.get(file);
      if (body === undefined) read.set(file, body = readPage(file));
      if (typeof body === "string") issues.push({ path: childPath(path, key), message: body });
      else pages[key] = { file, body };
    }
  });
  return issues;
}

/** The file's bytes, or a message saying why it cannot be used. */
function readPage(file: string): Uint8Array | string {
  const fail = (detail: string) => `Cannot read error page "${file}": ${detail}`;
  try {
    const info = Deno.statSync(file);
    if (info.isDirectory) return fail("is a directory");
    if (!info.isFile) return fail("not a regular file");
    if (info.size > MAX_ERROR_PAGE_BYTES) {
      return fail(`${info.size} bytes, more than the ${MAX_ERROR_PAGE_BYTES} bytes allowed`);
    }
    return Deno.readFileSync(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return fail("no such file");
    if (e instanceof Deno.errors.PermissionDenied) return fail("permission denied");
    return fail(errorText(e));
  }
}
