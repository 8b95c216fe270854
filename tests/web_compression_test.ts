/**
 * Compression end to end (SPEC 11): a running bws with a static_dir and a proxied upstream
 * (`compression.proxy = true`), driven by raw sockets (to see the coded bytes and headers as
 * sent), curl `--compressed` and fetch. Each algorithm is chosen by Accept-Encoding and its
 * q-values; identity when refused or below `min_size`; bodies decode to the exact bytes; the
 * exclusions go as they are; ETags of coded forms differ from the identity one and conditional
 * GETs still get 304; precompressed siblings win over compressing.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { createServer, type Server } from "node:http";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { sha256 } from "./helpers/bytes.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { decodedBody, rawExchange, type RawResponse } from "./helpers/raw_http.ts";

const encoder = new TextEncoder();

/** Compressible text that is not one repeated line: words picked by a small LCG. */
function text(bytes: number, seed: number): Uint8Array {
  const words = ["alpha", "beta", "gamma", "delta", "request", "proxy", "static", "zstd", "id"];
  let s = seed;
  let out = "";
  while (out.length < bytes) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out += words[s % words.length] + (s % 11 === 0 ? "\n" : " ");
  }
  return encoder.encode(out.slice(0, bytes));
}

const APP_JS = text(20_000, 1);
const STYLE = text(20_000, 2);
const STYLE_FROM_BR = text(20_000, 3);
const STYLE_FROM_GZ = text(20_000, 4);
const SMALL = text(500, 5);
const PNG = new Uint8Array(20_000).map((_, i) => (i * 31) % 251);
const BIG = text(2 * 1024 * 1024 + 5, 6);
const UP_TEXT = text(20_000, 7);
const UP_JSON = text(30_000, 8);
const UP_SMALL = text(300, 9);

let dir = "";
let bws: TestBws;
let upstream: Server;
/** If-None-Match values the upstream received, in order. */
const upstreamInm: (string | undefined)[] = [];

const sameBytes = (a: Uint8Array, b: Uint8Array) => expect(sha256(a)).toBe(sha256(b));

function get(path: string, headers: Record<string, string> = {}, method = "GET") {
  return rawExchange(bws.port, method, path, headers);
}

/** The upstream: node:http, which never compresses by itself (Deno.serve would). */
function startUpstream(): Promise<Server> {
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    const send = (status: number, type: string | null, body: Uint8Array, extra = {}) => {
      res.writeHead(status, { ...(type ? { "content-type": type } : {}), ...extra });
      res.end(body);
    };
    switch (path) {
      case "/up/text":
        upstreamInm.push(req.headers["if-none-match"]);
        if (req.headers["if-none-match"] === '"t1"') {
          res.writeHead(304, { etag: '"t1"' });
          return res.end();
        }
        return send(200, "text/plain; charset=utf-8", UP_TEXT, { etag: '"t1"' });
      case "/up/json": {
        // Unknown length: written in three parts, chunked.
        res.writeHead(200, { "content-type": "application/json" });
        res.write(UP_JSON.subarray(0, 100));
        res.write(UP_JSON.subarray(100, 20_000));
        return res.end(UP_JSON.subarray(20_000));
      }
      case "/up/small":
        return send(200, "text/plain", UP_SMALL);
      case "/up/small-chunked":
        res.writeHead(200, { "content-type": "text/plain" });
        res.write(UP_SMALL.subarray(0, 10));
        return res.end(UP_SMALL.subarray(10));
      case "/up/encoded":
        return send(200, "text/plain", gzipSync(UP_TEXT), { "content-encoding": "gzip" });
      case "/up/no-transform":
        return send(200, "text/plain", UP_TEXT, { "cache-control": "public, no-transform" });
      case "/up/events":
        return send(200, "text/event-stream", UP_TEXT);
      case "/up/png":
        return send(200, "image/png", PNG);
      case "/up/untyped":
        return send(200, null, UP_TEXT);
      case "/up/range":
        return send(206, "text/plain", UP_TEXT.subarray(0, 5000), {
          "content-range": `bytes 0-4999/${UP_TEXT.length}`,
        });
      case "/up/broken":
        // A few bytes of an unknown-length body, then the connection drops.
        res.writeHead(200, { "content-type": "text/plain" });
        res.write(UP_TEXT.subarray(0, 10));
        setTimeout(() => req.socket.destroy(), 20);
        return;
      case "/up/empty":
        res.writeHead(204);
        return res.end();
    }
    send(404, "text/plain", encoder.encode("no such thing\n"));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

before(async () => {
  dir = await Deno.makeTempDir({ prefix: "bws_web_compression_" });
  await Deno.mkdir(`${dir}/www`);
  await Deno.writeFile(`${dir}/www/app.js`, APP_JS);
  await Deno.writeFile(`${dir}/www/style.css`, STYLE);
  await Deno.writeFile(`${dir}/www/style.css.br`, brotliCompressSync(STYLE_FROM_BR));
  await Deno.writeFile(`${dir}/www/style.css.gz`, gzipSync(STYLE_FROM_GZ));
  await Deno.writeFile(`${dir}/www/small.txt`, SMALL);
  await Deno.writeFile(`${dir}/www/logo.png`, PNG);
  await Deno.writeFile(`${dir}/www/big.txt`, BIG);
  upstream = await startUpstream();
  const upPort = (upstream.address() as { port: number }).port;
  bws = await startBws(`
[[sites]]
name = "web"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${dir}/www"

[sites.compression]
static = true
proxy = true
min_size = 1024

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "http://127.0.0.1:${upPort}"

[[sites.proxy.routes]]
path = "/up/"
upstream = "b"
`);
});

after(async () => {
  await bws?.close();
  await new Promise((resolve) => upstream?.close(resolve));
  upstream?.closeAllConnections();
  await Deno.remove(dir, { recursive: true });
});

/** Asserts a coded response: its coding, Vary, no Content-Length when streamed, exact bytes. */
function expectCoded(res: RawResponse, coding: string, original: Uint8Array): void {
  expect(res.status).toBe(200);
  expect(res.headers.get("content-encoding")).toBe(coding);
  expect(res.headers.get("vary")).toMatch(/accept-encoding/i);
  expect(res.body.length).toBeLessThan(original.length);
  sameBytes(decodedBody(res), original);
}

function expectIdentity(res: RawResponse, original: Uint8Array): void {
  expect(res.status).toBe(200);
  expect(res.headers.has("content-encoding")).toBe(false);
  sameBytes(res.body, original);
}

describe("negotiation from Accept-Encoding", () => {
  const cases: [string, string][] = [
    ["gzip", "gzip"],
    ["br", "br"],
    ["zstd", "zstd"],
    ["gzip, br, zstd", "zstd"], // equal weights: the server's order (zstd, br, gzip)
    ["gzip, br", "br"],
    ["gzip;q=1, br;q=0.5, zstd;q=0.2", "gzip"],
    ["zstd;q=0, br;q=0.9, gzip;q=0.8", "br"],
    ["*;q=0.5, gzip;q=0.9", "gzip"],
    ["*", "zstd"],
    ["x-gzip", "gzip"],
  ];
  for (const [header, coding] of cases) {
    it(`"${header}" gets ${coding} for a static file and a proxied body`, async () => {
      expectCoded(await get("/app.js", { "accept-encoding": header }), coding, APP_JS);
      expectCoded(await get("/up/text", { "accept-encoding": header }), coding, UP_TEXT);
      expectCoded(await get("/up/json", { "accept-encoding": header }), coding, UP_JSON);
    });
  }

  for (const header of [null, "", "identity", "gzip;q=0, br;q=0, zstd;q=0", "compress", "*;q=0"]) {
    it(`${JSON.stringify(header)} gets the body as it is, with Vary`, async () => {
      const h: Record<string, string> = header === null ? {} : { "accept-encoding": header };
      for (const [path, original] of [["/app.js", APP_JS], ["/up/text", UP_TEXT]] as const) {
        const res = await get(path, h);
        expectIdentity(res, original);
        expect(res.headers.get("vary")).toMatch(/accept-encoding/i);
      }
    });
  }

  it("sends bodies below min_size as they are, with their length", async () => {
    const ae = { "accept-encoding": "gzip, br, zstd" };
    for (const [path, original] of [["/small.txt", SMALL], ["/up/small", UP_SMALL]] as const) {
      const res = await get(path, ae);
      expectIdentity(res, original);
      expect(res.headers.get("content-length")).toBe(String(original.length));
    }
    // An upstream body of unknown length is read ahead and found small.
    const res = await get("/up/small-chunked", ae);
    expectIdentity(res, UP_SMALL);
    expect(res.headers.get("content-length")).toBe(String(UP_SMALL.length));
  });

  it("streams a large static file compressed, without Content-Length", async () => {
    const res = await get("/big.txt", { "accept-encoding": "gzip" });
    expectCoded(res, "gzip", BIG);
    expect(res.headers.has("content-length")).toBe(false);
    expect(res.headers.get("transfer-encoding")).toBe("chunked");
  });
});

describe("never compressed", () => {
  const ae = { "accept-encoding": "gzip, br, zstd" };

  it("a type outside `types`, a missing type, event streams, no-transform", async () => {
    expectIdentity(await get("/logo.png", ae), PNG);
    expectIdentity(await get("/up/png", ae), PNG);
    expectIdentity(await get("/up/untyped", ae), UP_TEXT);
    expectIdentity(await get("/up/events", ae), UP_TEXT);
    expectIdentity(await get("/up/no-transform", ae), UP_TEXT);
  });

  it("a body the upstream already coded passes byte for byte", async () => {
    const res = await get("/up/encoded", ae);
    expect(res.headers.get("content-encoding")).toBe("gzip");
    sameBytes(res.body, gzipSync(UP_TEXT));
    sameBytes(decodedBody(res), UP_TEXT);
  });

  it("HEAD, ranges (206) and 204", async () => {
    const head = await get("/app.js", ae, "HEAD");
    expect(head.headers.has("content-encoding")).toBe(false);
    expect(head.headers.get("content-length")).toBe(String(APP_JS.length));
    const upHead = await get("/up/text", ae, "HEAD");
    expect(upHead.headers.has("content-encoding")).toBe(false);

    const range = await get("/app.js", { ...ae, range: "bytes=0-99" });
    expect(range.status).toBe(206);
    expect(range.headers.has("content-encoding")).toBe(false);
    sameBytes(range.body, APP_JS.subarray(0, 100));
    const upRange = await get("/up/range", ae);
    expect(upRange.status).toBe(206);
    expect(upRange.headers.has("content-encoding")).toBe(false);
    sameBytes(upRange.body, UP_TEXT.subarray(0, 5000));

    const empty = await get("/up/empty", ae);
    expect(empty.status).toBe(204);
    expect(empty.headers.has("content-encoding")).toBe(false);
  });
});

describe("upstream failures", () => {
  it("a body that breaks while its first bytes are read ahead gets bws's own 502", async () => {
    const res = await get("/up/broken", { "accept-encoding": "gzip" });
    expect(res.status).toBe(502);
    expect(new TextDecoder().decode(res.body)).toMatch(/^502 Bad Gateway\nrequest id: /);
    const log = bws.logger.entries.at(-1)!;
    expect(log.status).toBe(502);
    expect(log.upstream).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect(log.error).toBeTruthy();
  });
});

describe("ETags and conditional requests", () => {
  it("a static file's coded ETag differs per coding and from the identity one; each gives 304", async () => {
    const identity = (await get("/app.js")).headers.get("etag")!;
    const tags = new Set([identity]);
    for (const coding of ["gzip", "br", "zstd"]) {
      const res = await get("/app.js", { "accept-encoding": coding });
      const tag = res.headers.get("etag")!;
      expect(tags.has(tag)).toBe(false);
      tags.add(tag);
      const again = await get("/app.js", { "accept-encoding": coding, "if-none-match": tag });
      expect(again.status).toBe(304);
      expect(again.headers.get("etag")).toBe(tag);
      expect(again.headers.get("vary")).toMatch(/accept-encoding/i);
      expect(again.body.length).toBe(0);
    }
    // The identity tag names another form: a client that now takes gzip gets the gzip body.
    const other = await get("/app.js", { "accept-encoding": "gzip", "if-none-match": identity });
    expect(other.status).toBe(200);
    expect((await get("/app.js", { "if-none-match": identity })).status).toBe(304);
  });

  it("a proxied coded ETag is suffixed; its conditional GET reaches the upstream untagged and gets 304", async () => {
    const res = await get("/up/text", { "accept-encoding": "br" });
    expect(res.headers.get("etag")).toBe('"t1-br"');
    upstreamInm.length = 0;
    const again = await get("/up/text", { "accept-encoding": "br", "if-none-match": '"t1-br"' });
    expect(upstreamInm).toEqual(['"t1"']);
    expect(again.status).toBe(304);
    expect(again.headers.get("etag")).toBe('"t1-br"');
    expect(again.headers.get("vary")).toMatch(/accept-encoding/i);
    // The identity form keeps the upstream's own tag and conditional requests as they are.
    const plain = await get("/up/text");
    expect(plain.headers.get("etag")).toBe('"t1"');
    expect((await get("/up/text", { "if-none-match": '"t1"' })).status).toBe(304);
    // A tag of another coding is passed on as it is: the upstream does not know it.
    upstreamInm.length = 0;
    const gz = await get("/up/text", { "accept-encoding": "gzip", "if-none-match": '"t1-br"' });
    expect(upstreamInm).toEqual(['"t1-br"']);
    expectCoded(gz, "gzip", UP_TEXT);
    expect(gz.headers.get("etag")).toBe('"t1-gzip"');
  });
});

describe("precompressed siblings", () => {
  it("win over compressing for the codings they exist for", async () => {
    const br = await get("/style.css", { "accept-encoding": "br" });
    expect(br.headers.get("content-encoding")).toBe("br");
    expect(br.headers.get("content-type")).toMatch(/^text\/css/);
    sameBytes(decodedBody(br), STYLE_FROM_BR);
    const gz = await get("/style.css", { "accept-encoding": "gzip" });
    sameBytes(decodedBody(gz), STYLE_FROM_GZ);
    expect(gz.headers.get("content-length")).toBe(String(gz.body.length));
    // zstd ranks first, but only br and gz siblings exist: the best sibling wins.
    const any = await get("/style.css", { "accept-encoding": "zstd, br, gzip" });
    expect(any.headers.get("content-encoding")).toBe("br");
    // Only zstd accepted: no sibling, so bws compresses the file itself.
    const zstd = await get("/style.css", { "accept-encoding": "zstd" });
    expectCoded(zstd, "zstd", STYLE);
    expectIdentity(await get("/style.css"), STYLE);
  });
});

describe("real clients", () => {
  async function curl(path: string, args: string[] = []) {
    const out = await new Deno.Command("curl", {
      args: ["-s", "--max-time", "10", "-D", "/dev/stderr", ...args, bws.url(path)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { head: new TextDecoder().decode(out.stderr).toLowerCase(), body: out.stdout };
  }

  it("curl --compressed gets zstd (all offered, server order) and the exact bytes", async () => {
    for (const [path, original] of [["/app.js", APP_JS], ["/up/json", UP_JSON]] as const) {
      const r = await curl(path, ["--compressed"]);
      expect(r.head).toContain("content-encoding: zstd");
      sameBytes(r.body, original);
    }
    const big = await curl("/big.txt", ["--compressed"]);
    sameBytes(big.body, BIG);
  });

  it("curl with one coding gets that coding", async () => {
    for (const coding of ["gzip", "br"]) {
      const r = await curl("/up/text", ["--compressed", "-H", `accept-encoding: ${coding}`]);
      expect(r.head).toContain(`content-encoding: ${coding}`);
      sameBytes(r.body, UP_TEXT);
    }
  });

  it("fetch decodes what bws sends to the exact bytes", async () => {
    for (const [path, original] of [["/app.js", APP_JS], ["/up/text", UP_TEXT]] as const) {
      const res = await fetch(bws.url(path), { headers: { "accept-encoding": "gzip, br" } });
      sameBytes(new Uint8Array(await res.arrayBuffer()), original);
    }
  });
});
