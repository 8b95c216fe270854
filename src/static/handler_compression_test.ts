/**
 * The static handler with `[sites.compression]`: the form chosen per request
 * (identity, precompressed sibling, compressed from the cache, compressed as it streams), its
 * headers and ETag, conditional requests against that ETag, and bodies that decompress to the
 * file's exact bytes.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import * as zlib from "node:zlib";
import { configFromObject } from "../config/load.ts";
import type { CompressionAlgorithm } from "../config/types.ts";
import { firstDifference } from "../../tests/helpers/bytes.ts";
import { codedEtag } from "../compress/policy.ts";
import { CompressedFileCache } from "../compress/static_cache.ts";
import { testRequest } from "../../tests/helpers/test_request.ts";
import { createStaticHandler, type StaticHandler } from "./handler.ts";
import { staticOptionsFor } from "./site_options.ts";
import { call, type ReadResponse } from "../../tests/helpers/test_response.ts";
import { validatorsFor } from "./validators.ts";

const encoder = new TextEncoder();
const APP = encoder.encode("export function hello(name) { return `hello ${name}`; }\n".repeat(400));
const BIG = encoder.encode(
  Array.from({ length: 6000 }, (_, i) => `{"id":${i},"name":"user ${i}","ok":true}`).join("\n"),
);
const PRE = encoder.encode("const fromOriginal = 1;\n".repeat(200));
const FROM_SIBLING = encoder.encode("const fromSibling = 2;\n".repeat(200));
const TINY = encoder.encode("let x = 1;\n");
const PNG = new Uint8Array(5000).map((_, i) => i % 7);

let base = "";
let root = "";
let cache: CompressedFileCache;
let serve: StaticHandler;

/** A site config as `bws.toml` would give it, for `staticOptionsFor`. */
function site(compression: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return configFromObject({
    sites: [{ name: "s", port: 0, static_dir: root, compression, ...extra }],
  }).sites[0];
}

function get(
  target: string,
  headers: Record<string, string> = {},
  method = "GET",
  handler: StaticHandler = serve,
): Promise<ReadResponse> {
  return call(handler, { target, method, headers: Object.entries(headers) });
}

function decompress(body: Uint8Array, algorithm: string | null): Uint8Array {
  switch (algorithm) {
    case "gzip":
      return zlib.gunzipSync(body);
    case "br":
      return zlib.brotliDecompressSync(body);
    case "zstd":
      return zlib.zstdDecompressSync(body);
  }
  throw new Error(`Cannot decompress "${algorithm}": not a coding bws sends`);
}

const identityEtag = (name: string) => {
  const info = Deno.statSync(`${root}/${name}`);
  return validatorsFor(info.size, info.mtime).etag;
};

before(async () => {
  base = await Deno.makeTempDir({ prefix: "bws_static_compress_" });
  root = await Deno.realPath(base);
  const T = new Date("2024-05-01T00:00:00Z");
  const write = (name: string, bytes: Uint8Array) => {
    Deno.writeFileSync(`${root}/${name}`, bytes);
    Deno.utimeSync(`${root}/${name}`, T, T);
  };
  write("app.js", APP);
  write("big.json", BIG);
  write("pre.js", PRE);
  write("pre.js.br", zlib.brotliCompressSync(FROM_SIBLING));
  write("tiny.js", TINY);
  write("logo.png", PNG);
  // Files up to 64 KiB come from the cache; big.json (about 230 KB) streams.
  cache = new CompressedFileCache({ maxFileSize: 64 * 1024 });
  serve = createStaticHandler(staticOptionsFor(site(), cache));
});

after(async () => {
  await Deno.remove(base, { recursive: true });
});

describe("static compression: which form", () => {
  it("sends the file as it is, with Vary, to a client that accepts no coding", async () => {
    for (const ae of [null, "identity", "br;q=0, gzip;q=0, zstd;q=0", "deflate"]) {
      const r = await get("/app.js", ae === null ? {} : { "accept-encoding": ae });
      expect(r.res.status).toBe(200);
      expect(r.header("content-encoding")).toBe(null);
      expect(r.header("vary")).toBe("Accept-Encoding");
      expect(r.header("accept-ranges")).toBe("bytes");
      expect(r.header("etag")).toBe(identityEtag("app.js"));
      expect(r.res.length).toBe(APP.length);
      expect(firstDifference(r.body, APP)).toBe(-1);
    }
  });

  it("picks the coding by the client's q-values, the site's order breaking ties", async () => {
    const cases: [string, CompressionAlgorithm][] = [
      ["gzip", "gzip"],
      ["br", "br"],
      ["zstd", "zstd"],
      ["gzip, deflate, br, zstd", "zstd"],
      ["gzip;q=1, br;q=0.5, zstd;q=0.2", "gzip"],
      ["gzip;q=0.5, br;q=0.9, zstd;q=0.1", "br"],
      ["br;q=0, gzip;q=0.1", "gzip"],
      ["*", "zstd"],
    ];
    for (const [ae, algorithm] of cases) {
      const r = await get("/app.js", { "accept-encoding": ae });
      expect([ae, r.res.status, r.header("content-encoding")]).toEqual([ae, 200, algorithm]);
      expect(r.header("content-type")).toBe("text/javascript; charset=utf-8");
      expect(r.header("vary")).toBe("Accept-Encoding");
      expect(r.header("accept-ranges")).toBe(null);
      expect(r.header("etag")).toBe(codedEtag(identityEtag("app.js"), algorithm));
      expect(r.body.length).toBeLessThan(APP.length / 4);
      expect(firstDifference(decompress(r.body, algorithm), APP)).toBe(-1);
    }
  });

  it("compresses a small file once per coding and serves repeats from memory", async () => {
    // Files just written are kept too here (settling has a test of its own).
    const own = new CompressedFileCache({ settledMs: 0 });
    const handler = createStaticHandler(staticOptionsFor(site(), own));
    const first = await get("/app.js", { "accept-encoding": "br" }, "GET", handler);
    const again = await get("/app.js", { "accept-encoding": "br" }, "GET", handler);
    expect(first.res.body).toBeInstanceOf(Uint8Array);
    expect(again.res.body).toBe(first.res.body);
    expect(own.stats()).toMatchObject({ entries: 1, hits: 1, misses: 1 });
  });

  it("streams a file too large for the cache through the compressor, length unknown", async () => {
    for (const algorithm of ["zstd", "br", "gzip"] as const) {
      const r = await get("/big.json", { "accept-encoding": algorithm });
      expect(r.header("content-encoding")).toBe(algorithm);
      expect(r.res.body).not.toBeInstanceOf(Uint8Array);
      expect(r.res.length).toBe(null);
      expect(r.header("etag")).toBe(codedEtag(identityEtag("big.json"), algorithm));
      expect(firstDifference(decompress(r.body, algorithm), BIG)).toBe(-1);
    }
  });

  it("sends a file below min_size as it is", async () => {
    const r = await get("/tiny.js", { "accept-encoding": "gzip, br, zstd" });
    expect(r.header("content-encoding")).toBe(null);
    expect(r.header("vary")).toBe("Accept-Encoding");
    expect(firstDifference(r.body, TINY)).toBe(-1);
    const lower = createStaticHandler(staticOptionsFor(site({ min_size: 4 }), cache));
    const small = await get("/tiny.js", { "accept-encoding": "gzip" }, "GET", lower);
    expect(small.header("content-encoding")).toBe("gzip");
    expect(firstDifference(decompress(small.body, "gzip"), TINY)).toBe(-1);
  });

  it("serves a precompressed sibling over compressing, with the original's type", async () => {
    const r = await get("/pre.js", { "accept-encoding": "br, gzip" });
    expect(r.header("content-encoding")).toBe("br");
    expect(r.header("content-type")).toBe("text/javascript; charset=utf-8");
    expect(r.header("vary")).toBe("Accept-Encoding");
    const sibling = Deno.readFileSync(`${root}/pre.js.br`);
    expect(r.res.length).toBe(sibling.length);
    expect(firstDifference(r.body, sibling)).toBe(-1);
    expect(firstDifference(decompress(r.body, "br"), FROM_SIBLING)).toBe(-1);
    expect(r.header("etag")).toBe(codedEtag(identityEtag("pre.js.br"), "br"));
    // No sibling for gzip: compressed by bws from the original.
    const gz = await get("/pre.js", { "accept-encoding": "gzip" });
    expect(gz.header("content-encoding")).toBe("gzip");
    expect(firstDifference(decompress(gz.body, "gzip"), PRE)).toBe(-1);
  });

  it("never compresses a type outside `types`, nor varies it", async () => {
    const r = await get("/logo.png", { "accept-encoding": "gzip, br, zstd" });
    expect(r.header("content-encoding")).toBe(null);
    expect(r.header("vary")).toBe(null);
    expect(firstDifference(r.body, PNG)).toBe(-1);
  });

  it("sends files as they are when `static = false` or `algorithms = []`", async () => {
    for (const off of [{ static: false }, { algorithms: [] }]) {
      const handler = createStaticHandler(staticOptionsFor(site(off), cache));
      const r = await get("/pre.js", { "accept-encoding": "br, gzip" }, "GET", handler);
      expect(r.header("content-encoding")).toBe(null);
      expect(r.header("vary")).toBe(null);
      expect(firstDifference(r.body, PRE)).toBe(-1);
    }
  });
});

describe("static compression: ranges, HEAD and conditional requests", () => {
  it("answers a Range request with the identity bytes, with Vary", async () => {
    const r = await get("/app.js", { "accept-encoding": "gzip, br", range: "bytes=10-19" });
    expect(r.res.status).toBe(206);
    expect(r.header("content-encoding")).toBe(null);
    expect(r.header("content-range")).toBe(`bytes 10-19/${APP.length}`);
    expect(r.header("vary")).toBe("Accept-Encoding");
    expect(firstDifference(r.body, APP.subarray(10, 20))).toBe(-1);
  });

  it("answers HEAD with the identity headers and length, with Vary", async () => {
    const r = await get("/app.js", { "accept-encoding": "gzip, br" }, "HEAD");
    expect(r.res.status).toBe(200);
    expect(r.res.body).toBe(null);
    expect(r.res.length).toBe(APP.length);
    expect(r.header("content-encoding")).toBe(null);
    expect(r.header("vary")).toBe("Accept-Encoding");
    expect(r.header("etag")).toBe(identityEtag("app.js"));
  });

  it("gives a compressed form its own ETag, and a conditional GET with it a 304", async () => {
    const identity = identityEtag("app.js");
    for (const algorithm of ["zstd", "br", "gzip"] as const) {
      const r = await get("/app.js", { "accept-encoding": algorithm });
      const etag = r.header("etag")!;
      expect(etag).not.toBe(identity);
      const again = await get("/app.js", { "accept-encoding": algorithm, "if-none-match": etag });
      expect(again.res.status).toBe(304);
      expect(again.res.body).toBe(null);
      expect(again.header("etag")).toBe(etag);
      expect(again.header("vary")).toBe("Accept-Encoding");
      // The tag of another form names what this client will not get.
      const other = await get("/app.js", {
        "accept-encoding": algorithm,
        "if-none-match": identity,
      });
      expect(other.res.status).toBe(200);
      expect(other.header("content-encoding")).toBe(algorithm);
    }
    const plain = await get("/app.js", { "if-none-match": identity });
    expect(plain.res.status).toBe(304);
    expect(plain.header("vary")).toBe("Accept-Encoding");
  });

  it("304s a precompressed sibling's ETag and a streamed form's ETag", async () => {
    const pre = await get("/pre.js", { "accept-encoding": "br" });
    const preAgain = await get("/pre.js", {
      "accept-encoding": "br",
      "if-none-match": pre.header("etag")!,
    });
    expect(preAgain.res.status).toBe(304);
    expect(preAgain.header("etag")).toBe(pre.header("etag"));
    const big = await call(serve, {
      target: "/big.json",
      headers: [["accept-encoding", "gzip"], [
        "if-none-match",
        codedEtag(identityEtag("big.json"), "gzip")!,
      ]],
    });
    expect(big.res.status).toBe(304);
  });
});

describe("static compression: resources", () => {
  it("closes the file when a streamed compressed body is cancelled", async () => {
    const fixture = `${root}/big.json`;
    const fds = () =>
      [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
        try {
          return Deno.readLinkSync(`/proc/self/fd/${e.name}`) === fixture;
        } catch {
          return false;
        }
      }).length;
    const start = fds();
    for (let i = 0; i < 20; i++) {
      const res = await serve(
        testRequest({ target: "/big.json", headers: [["accept-encoding", "gzip"]] }),
      );
      const body = res.body;
      if (body === null || body instanceof Uint8Array) throw new Error("expected a stream");
      if (i % 2) expect(await body.read()).not.toBe(null);
      body.cancel();
    }
    expect(fds()).toBe(start);
  });
});
