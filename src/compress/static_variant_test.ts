/**
 * The static side of compression on real files: precompressed siblings, the choice of form, and
 * the in-memory cache of compressed small files.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import * as zlib from "node:zlib";
import { join } from "node:path";
import type { CompressionConfig } from "../config/types.ts";
import { validatorsFor } from "../static/validators.ts";
import { Negotiator } from "./negotiate.ts";
import { codedEtag, CompressionPolicy } from "./policy.ts";
import { findPrecompressed } from "./precompressed.ts";
import { CompressedFileCache } from "./static_cache.ts";
import { chooseStaticVariant, type StaticFileRequest } from "./static_variant.ts";

const root = Deno.realPathSync(Deno.makeTempDirSync({ prefix: "bws_static_variant_" }));
const outside = Deno.realPathSync(Deno.makeTempDirSync({ prefix: "bws_static_outside_" }));
after(() => {
  Deno.removeSync(root, { recursive: true });
  Deno.removeSync(outside, { recursive: true });
});

const text = "console.log('bws');\n".repeat(500);
const file = (name: string, content: string | Uint8Array, mtime?: Date) => {
  const path = join(root, name);
  if (typeof content === "string") Deno.writeTextFileSync(path, content);
  else Deno.writeFileSync(path, content);
  if (mtime) Deno.utimeSync(path, mtime, mtime);
  return path;
};
const T0 = new Date("2024-01-01T00:00:00Z");
const T1 = new Date("2024-06-01T00:00:00Z");
const app = file("app.js", text, T1);
file("app.js.br", zlib.brotliCompressSync(text), T1);
file("app.js.gz", zlib.gzipSync(text), T1);
const stale = file("stale.js", text, T1);
file("stale.js.br", zlib.brotliCompressSync("old"), T0);
const linked = file("linked.js", text, T0);
Deno.writeFileSync(join(outside, "secret.gz"), zlib.gzipSync("secret"));
Deno.symlinkSync(join(outside, "secret.gz"), join(root, "linked.js.gz"));
const tiny = file("tiny.js", "let x;", T0);
const png = file("logo.png", new Uint8Array(5000), T0);
file("logo.png.gz", zlib.gzipSync(new Uint8Array(5000)), T1);

const CONFIG: CompressionConfig = {
  static: true,
  proxy: false,
  algorithms: ["zstd", "br", "gzip"],
  minSize: 1024,
  types: ["text/*", "application/json"],
};
const site = (over: Partial<CompressionConfig> = {}) => {
  const c = { ...CONFIG, ...over };
  return {
    policy: new CompressionPolicy(c),
    negotiator: new Negotiator(c.algorithms),
    cache: new CompressedFileCache({ maxFileSize: 64 * 1024 }),
  };
};
const request = (path: string, over: Partial<StaticFileRequest> = {}): StaticFileRequest => {
  const info = Deno.statSync(path);
  return {
    method: "GET",
    acceptEncoding: "gzip, deflate, br, zstd",
    range: false,
    root,
    path,
    info,
    contentType: "text/javascript; charset=utf-8",
    etag: validatorsFor(info.size, info.mtime).etag,
    ...over,
  };
};

describe("findPrecompressed", () => {
  it("takes the first negotiated coding that has a sibling", async () => {
    const info = Deno.statSync(app);
    expect((await findPrecompressed(root, app, info, ["zstd", "br", "gzip"]))?.algorithm).toBe(
      "br",
    );
    expect((await findPrecompressed(root, app, info, ["gzip", "br"]))?.path).toBe(app + ".gz");
    expect(await findPrecompressed(root, app, info, ["zstd"])).toBe(null);
    expect(await findPrecompressed(root, app, info, [])).toBe(null);
  });

  it("ignores a sibling older than the file and one that links out of the root", async () => {
    expect(await findPrecompressed(root, stale, Deno.statSync(stale), ["br"])).toBe(null);
    expect(await findPrecompressed(root, linked, Deno.statSync(linked), ["gzip"])).toBe(null);
  });
  it("serves a sibling a deploy adds within a second of it, though it was found missing before", async () => {
    const later = file("later.js", text, T0);
    const info = Deno.statSync(later);
    expect(findPrecompressed(root, later, info, ["br"])).toBe(null);
    file("later.js.br", zlib.brotliCompressSync(text), T1);
    const added = Date.now();
    let found = findPrecompressed(root, later, info, ["br"]);
    while (found === null && Date.now() - added < 3000) {
      await new Promise((r) => setTimeout(r, 50));
      found = findPrecompressed(root, later, info, ["br"]);
    }
    expect(found?.path).toBe(later + ".br");
    expect(Date.now() - added).toBeLessThan(1600);
  });
});

describe("chooseStaticVariant", () => {
  it("serves a sibling with its own coded ETag", async () => {
    const v = await chooseStaticVariant(request(app), site());
    const sib = Deno.statSync(app + ".br");
    expect(v).toEqual({
      kind: "precompressed",
      algorithm: "br",
      path: app + ".br",
      info: expect.anything(),
      etag: codedEtag(validatorsFor(sib.size, sib.mtime).etag, "br"),
    });
  });

  it("compresses when no sibling fits, cached when small, with the file's ETag coded", async () => {
    const req = request(stale);
    expect(await chooseStaticVariant(req, site())).toEqual({
      kind: "compress",
      algorithm: "zstd",
      etag: codedEtag(req.etag, "zstd"),
      cached: true,
    });
    const big = site();
    const bigCache = new CompressedFileCache({ maxFileSize: 1000 });
    expect(await chooseStaticVariant(req, { ...big, cache: bigCache })).toMatchObject({
      kind: "compress",
      cached: false,
    });
    expect(await chooseStaticVariant(request(app), site({ algorithms: ["zstd"] }))).toMatchObject({
      kind: "compress",
      algorithm: "zstd",
    });
  });

  it("sends the file as it is, with Vary, for HEAD, Range, identity clients and small files", async () => {
    const asIs = { kind: "identity", vary: true };
    expect(await chooseStaticVariant(request(app, { method: "HEAD" }), site())).toEqual(asIs);
    expect(await chooseStaticVariant(request(app, { range: true }), site())).toEqual(asIs);
    expect(await chooseStaticVariant(request(app, { acceptEncoding: null }), site())).toEqual(asIs);
    expect(await chooseStaticVariant(request(app, { acceptEncoding: "br;q=0" }), site()))
      .toEqual(asIs);
    expect(await chooseStaticVariant(request(tiny), site())).toEqual(asIs);
  });

  it("leaves types outside `types` alone, siblings included, and all of it when off", async () => {
    const asIs = { kind: "identity", vary: false };
    expect(await chooseStaticVariant(request(png, { contentType: "image/png" }), site()))
      .toEqual(asIs);
    expect(await chooseStaticVariant(request(app), site({ static: false }))).toEqual(asIs);
    expect(await chooseStaticVariant(request(app), site({ algorithms: [] }))).toEqual(asIs);
    // adding the type turns its siblings on
    expect(
      await chooseStaticVariant(
        request(png, { contentType: "image/png" }),
        site({ types: ["image/png"] }),
      ),
    ).toMatchObject({ kind: "precompressed", algorithm: "gzip" });
  });
});

describe("CompressedFileCache", () => {
  const version = (path: string) => {
    const info = Deno.statSync(path);
    return { path, size: info.size, mtime: info.mtime, ctime: info.ctime, ino: info.ino };
  };

  it("compresses once per (file version, algorithm) and serves repeats from memory", async () => {
    const cache = new CompressedFileCache({ settledMs: 0 });
    let reads = 0;
    const read = () => {
      reads++;
      return Deno.readFile(app);
    };
    const [a, b] = await Promise.all([
      cache.get(version(app), "gzip", read),
      cache.get(version(app), "gzip", read),
    ]);
    expect(b).toBe(a);
    expect(new TextDecoder().decode(zlib.gunzipSync(a))).toBe(text);
    expect(await cache.get(version(app), "gzip", read)).toBe(a);
    expect(reads).toBe(1);
    const br = await cache.get(version(app), "br", read);
    expect(new TextDecoder().decode(zlib.brotliDecompressSync(br))).toBe(text);
    expect(cache.stats()).toMatchObject({ entries: 2, hits: 1, misses: 2 });
    // a new version of the file is a new entry
    await cache.get({ ...version(app), mtime: new Date() }, "gzip", read);
    expect(reads).toBe(3);
  });

  it("tells apart versions with the same size and mtime by ctime and inode", async () => {
    // Reproducible builds give every file one fixed mtime: a changed file of the same size is
    // told apart by the change time (or inode) its writing or extraction gave it.
    const cache = new CompressedFileCache();
    const v = { path: "/same", size: 4, mtime: T0, ctime: T0, ino: 7 };
    const gz = (text: string) => () => Promise.resolve(new TextEncoder().encode(text));
    const first = await cache.get(v, "gzip", gz("aaaa"));
    expect(new TextDecoder().decode(zlib.gunzipSync(first))).toBe("aaaa");
    const later = new Date(T0.getTime() + 5000);
    const rewritten = await cache.get({ ...v, ctime: later }, "gzip", gz("bbbb"));
    expect(new TextDecoder().decode(zlib.gunzipSync(rewritten))).toBe("bbbb");
    const replaced = await cache.get({ ...v, ino: 8 }, "gzip", gz("cccc"));
    expect(new TextDecoder().decode(zlib.gunzipSync(replaced))).toBe("cccc");
    // The first version, still the same file, comes from memory at once.
    expect(cache.get(v, "gzip", gz("zzzz"))).toBe(first);
  });

  it("compresses a file that just changed but does not keep it", async () => {
    const cache = new CompressedFileCache();
    const now = new Date();
    let reads = 0;
    const read = () => {
      reads++;
      return Promise.resolve(new Uint8Array(100));
    };
    const v = { path: "/fresh", size: 100, mtime: now, ctime: now, ino: 3 };
    await cache.get(v, "gzip", read);
    await cache.get(v, "gzip", read);
    expect(reads).toBe(2);
    expect(cache.stats().entries).toBe(0);
  });

  it("stays within its byte budget, dropping the least recently used", async () => {
    const cache = new CompressedFileCache({ maxBytes: 2500 });
    // incompressible: each entry holds about 1000 bytes
    const noise = (_n: number) => () =>
      Promise.resolve(crypto.getRandomValues(new Uint8Array(1000)));
    const v = (n: number) => ({ path: `/f${n}`, size: 1000, mtime: T0, ctime: T0, ino: n });
    await cache.get(v(1), "gzip", noise(1));
    await cache.get(v(2), "gzip", noise(2));
    await cache.get(v(1), "gzip", noise(1)); // 1 is now the most recent
    await cache.get(v(3), "gzip", noise(3));
    const s = cache.stats();
    expect(s.bytes).toBeLessThanOrEqual(2500);
    expect(s.entries).toBe(2);
    let missed = false;
    await cache.get(v(1), "gzip", () => {
      missed = true;
      return noise(1)();
    });
    expect(missed).toBe(false);
    await cache.get(v(2), "gzip", () => {
      missed = true;
      return noise(2)();
    });
    expect(missed).toBe(true);
  });

  it("does not remember a failed read or a file that changed size while read", async () => {
    const cache = new CompressedFileCache();
    const v = { path: "/x", size: 10, mtime: T0, ctime: T0, ino: 1 };
    await expect(cache.get(v, "br", () => Promise.reject(new Error("gone")))).rejects.toThrow(
      "gone",
    );
    await cache.get(v, "br", () => Promise.resolve(new Uint8Array(12)));
    expect(cache.stats().entries).toBe(0);
    expect(cache.accepts(1024 * 1024)).toBe(true);
    expect(cache.accepts(1024 * 1024 + 1)).toBe(false);
  });
});
