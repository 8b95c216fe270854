import { describe, it } from "node:test";
import { expect } from "expect";
import * as zlib from "node:zlib";
import type { BodySource, HttpResponse } from "../http1/types.ts";
import { compressResponse, type CompressResponseOptions } from "./compress_response.ts";
import { CompressionPolicy } from "./policy.ts";
import { firstDifference } from "../../tests/helpers/bytes.ts";

const policy = new CompressionPolicy({
  static: true,
  proxy: true,
  algorithms: ["zstd", "br", "gzip"],
  minSize: 1024,
  types: ["text/*", "application/json"],
});
const opts = (over: Partial<CompressResponseOptions> = {}): CompressResponseOptions => ({
  policy,
  method: "GET",
  accepted: ["gzip"],
  ...over,
});
const json = new TextEncoder().encode(
  JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ id: i, name: `item ${i}` }))),
);

/** Chunks through one reused buffer; records cancellation. */
function source(data: Uint8Array, chunk = 300, failAfter = Infinity) {
  const buf = new Uint8Array(chunk);
  let at = 0;
  let reads = 0;
  const s = {
    cancelled: false,
    read(): Promise<Uint8Array | null> {
      if (++reads > failAfter) return Promise.reject(new Error("upstream reset"));
      buf.fill(0);
      if (at >= data.length) return Promise.resolve(null);
      const n = Math.min(chunk, data.length - at);
      buf.set(data.subarray(at, at + n));
      at += n;
      return Promise.resolve(buf.subarray(0, n));
    },
    cancel() {
      s.cancelled = true;
    },
  };
  return s;
}

async function bodyBytes(res: HttpResponse): Promise<Uint8Array> {
  const b = res.body;
  if (b === null) return new Uint8Array(0);
  if (b instanceof Uint8Array) return b;
  const parts: number[] = [];
  for (let c = await b.read(); c !== null; c = await b.read()) parts.push(...c);
  return new Uint8Array(parts);
}

const response = (body: Uint8Array | BodySource | null, extra: Partial<HttpResponse> = {}) => ({
  status: 200,
  headers: [["content-type", "application/json"], ["etag", '"j1"']] as const,
  body,
  ...extra,
});

describe("compressResponse", () => {
  it("compresses a streamed body of known length with the accepted coding", async () => {
    const res = await compressResponse(
      response(source(json), { length: json.length }),
      opts({ accepted: ["br", "gzip"] }),
    );
    expect(res.headers).toEqual([
      ["content-type", "application/json"],
      ["etag", '"j1-br"'],
      ["content-encoding", "br"],
      ["vary", "Accept-Encoding"],
    ]);
    expect(res.length).toBe(null);
    const bytes = await bodyBytes(res);
    expect(bytes.length).toBeLessThan(json.length / 3);
    expect(firstDifference(zlib.brotliDecompressSync(bytes), json)).toBe(-1);
  });

  it("compresses a streamed body of unknown length once min_size bytes arrived", async () => {
    const src = source(json, 100);
    const res = await compressResponse(response(src), opts({ accepted: ["zstd"] }));
    expect(res.headers).toContainEqual(["content-encoding", "zstd"]);
    expect(firstDifference(zlib.zstdDecompressSync(await bodyBytes(res)), json)).toBe(-1);
  });

  it("sends an unknown-length body that ends below min_size as it is, with Vary", async () => {
    const small = json.subarray(0, 1000);
    const res = await compressResponse(response(source(small, 64)), opts());
    expect(res.headers).toEqual([
      ["content-type", "application/json"],
      ["etag", '"j1"'],
      ["vary", "Accept-Encoding"],
    ]);
    // whole, as bytes: the front end sends its length
    expect(res.body).toBeInstanceOf(Uint8Array);
    expect(firstDifference(res.body as Uint8Array, small)).toBe(-1);
  });

  it("leaves ineligible responses untouched (the same object)", async () => {
    const cases: HttpResponse[] = [
      response(source(json), { length: 1023 }),
      response(source(json), { status: 206 }),
      response(null, { status: 304 }),
      { ...response(source(json)), headers: [["content-type", "image/png"]] },
      {
        ...response(source(json)),
        headers: [["content-type", "text/plain"], ["content-encoding", "gzip"]],
      },
    ];
    for (const res of cases) expect(await compressResponse(res, opts())).toBe(res);
    const head = response(null, { length: 5000 });
    expect(await compressResponse(head, opts({ method: "HEAD" }))).toBe(head);
  });

  it("adds only Vary when the client accepts no coding", async () => {
    const src = source(json);
    const res = await compressResponse(
      response(src, { length: json.length }),
      opts({ accepted: [] }),
    );
    expect(res.headers).toContainEqual(["vary", "Accept-Encoding"]);
    expect(res.headers.some(([n]) => n === "content-encoding")).toBe(false);
    expect(res.body).toBe(src);
    expect(res.length).toBe(json.length);
  });

  it("compresses a bytes body whole, and keeps it when compressing does not pay", async () => {
    const res = await compressResponse(response(json), opts());
    expect(firstDifference(zlib.gunzipSync(res.body as Uint8Array), json)).toBe(-1);
    const noise = crypto.getRandomValues(new Uint8Array(4096));
    const kept = await compressResponse(response(noise), opts());
    expect(kept.body).toBe(noise);
    expect(kept.headers).toContainEqual(["vary", "Accept-Encoding"]);
    expect(kept.headers).toContainEqual(["etag", '"j1"']);
  });

  it("keeps the response's other fields (done, close)", async () => {
    const done = () => {};
    const res = await compressResponse(response(json, { done, close: true }), opts());
    expect(res.done).toBe(done);
    expect(res.close).toBe(true);
  });

  it("rejects and cancels the body when it fails while read ahead", async () => {
    const src = source(json, 100, 3);
    await expect(compressResponse(response(src), opts())).rejects.toThrow("upstream reset");
    expect(src.cancelled).toBe(true);
    // after the head is decided, a failure reaches the reader of the body instead
    const later = source(json, 100, 20);
    const res = await compressResponse(response(later), opts());
    await expect(bodyBytes(res)).rejects.toThrow("upstream reset");
  });
});
