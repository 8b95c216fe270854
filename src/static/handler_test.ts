import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { firstDifference } from "../../tests/helpers/bytes.ts";
import { testRequest } from "../../tests/helpers/test_request.ts";
import type { BodySource } from "../http1/types.ts";
import { fileBuffers } from "./file_stream.ts";
import { createStaticHandler, notFoundResponse, type StaticHandler } from "./handler.ts";
import { call, type ReadResponse } from "../../tests/helpers/test_response.ts";

let base = "";
let root = "";
let serve: StaticHandler;
const BIN = new Uint8Array(1000).map((_, i) => i % 251);
/** Several buffer fills (64 KiB each) long. */
const LARGE = new Uint8Array(300_000).map((_, i) => (i * 7) % 253);

/** Calls the handler with a request for `target` (raw, as on the request line). */
function get(
  target: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<ReadResponse> {
  return call(serve, { target, method: init.method, headers: Object.entries(init.headers ?? {}) });
}

/** The Content-Length the front end announces for this response (null: none). */
function announced(r: ReadResponse): number | null {
  const body = r.res.body;
  if (body instanceof Uint8Array) return body.length;
  if (body === null && r.res.length === undefined) return r.res.status === 304 ? null : 0;
  return r.res.length ?? null;
}

before(async () => {
  base = await Deno.makeTempDir({ prefix: "bws_static_" });
  root = `${base}/root`;
  await Deno.mkdir(`${root}/sub/deeper`, { recursive: true });
  await Deno.mkdir(`${root}/noindex`);
  await Deno.mkdir(`${root}/evil.com`);
  await Deno.mkdir(`${root}/.git`);
  await Deno.writeTextFile(`${root}/index.html`, "<h1>home</h1>");
  await Deno.writeTextFile(`${root}/style.css`, "body{}");
  await Deno.writeTextFile(`${root}/a b.txt`, "spaced");
  await Deno.writeTextFile(`${root}/sub/index.html`, "<h1>sub</h1>");
  await Deno.writeTextFile(`${root}/sub/deeper/x.json`, "{}");
  await Deno.writeTextFile(`${root}/.env`, "SECRET=1");
  await Deno.writeTextFile(`${root}/.git/config`, "[core]");
  await Deno.writeTextFile(`${root}/empty.txt`, "");
  await Deno.writeFile(`${root}/data.bin`, BIN);
  await Deno.writeFile(`${root}/large.bin`, LARGE);
  await Deno.writeTextFile(`${base}/outside.txt`, "outside secret");
  await Deno.mkdir(`${base}/outside_dir`);
  await Deno.writeTextFile(`${base}/outside_dir/index.html`, "outside index");
  await Deno.symlink(`${base}/outside.txt`, `${root}/escape.txt`);
  await Deno.symlink(`${base}/outside_dir`, `${root}/escape_dir`);
  await Deno.symlink(`${root}/style.css`, `${root}/alias.css`);
  serve = createStaticHandler({ root, indexFile: "index.html" });
});

after(async () => {
  await Deno.remove(base, { recursive: true });
});

describe("static handler: files and directories", () => {
  it("serves a file with type, length, validators and nosniff; no Server or Cache-Control", async () => {
    const r = await get("/style.css");
    expect(r.res.status).toBe(200);
    expect(r.text).toBe("body{}");
    expect(r.header("content-type")).toBe("text/css; charset=utf-8");
    expect(announced(r)).toBe(6);
    expect(r.header("x-content-type-options")).toBe("nosniff");
    expect(r.header("accept-ranges")).toBe("bytes");
    expect(r.header("etag")).toMatch(/^W\/"6-[0-9a-f]+"$/);
    const mtime = (await Deno.stat(`${root}/style.css`)).mtime!;
    expect(r.header("last-modified")).toBe(mtime.toUTCString());
    expect(r.header("server")).toBe(null);
    expect(r.header("cache-control")).toBe(null);
    // Without compression configured nothing varies.
    expect(r.header("vary")).toBe(null);
  });

  it("serves binary files byte-exact with octet-stream for unknown types", async () => {
    const r = await get("/data.bin");
    expect(r.header("content-type")).toBe("application/octet-stream");
    expect(firstDifference(r.body, BIN)).toBe(-1);
  });

  it("serves an empty file with Content-Length 0", async () => {
    const r = await get("/empty.txt");
    expect(r.res.status).toBe(200);
    expect(announced(r)).toBe(0);
    expect(r.body.length).toBe(0);
  });

  it("percent-decodes the path", async () => {
    const r = await get("/a%20b.txt");
    expect(r.res.status).toBe(200);
    expect(r.text).toBe("spaced");
  });

  it("serves the index file for / and for a directory with trailing slash", async () => {
    expect((await get("/")).text).toBe("<h1>home</h1>");
    const r = await get("/sub/");
    expect(r.res.status).toBe(200);
    expect(r.header("content-type")).toBe("text/html; charset=utf-8");
    expect(r.text).toBe("<h1>sub</h1>");
  });

  it("uses the configured index file name", async () => {
    const other = createStaticHandler({ root, indexFile: "style.css" });
    expect((await call(other, { target: "/" })).text).toBe("body{}");
  });

  it("404s a directory without index, never listing it", async () => {
    const r = await get("/noindex/");
    expect(r.res.status).toBe(404);
    expect(r.text).not.toContain("noindex");
  });

  it("301s a directory without trailing slash, keeping the query byte for byte", async () => {
    const r = await get("/sub?x=1&y=%20");
    expect(r.res.status).toBe(301);
    expect(r.header("location")).toBe("/sub/?x=1&y=%20");
    expect(announced(r)).toBe(0);
    expect((await get("/sub/deeper")).header("location")).toBe("/sub/deeper/");
  });

  it("never redirects to a protocol-relative URL", async () => {
    const r = await get("//evil.com");
    expect(r.res.status).toBe(301);
    expect(r.header("location")).toBe("/evil.com/");
  });

  it("404s a file asked for with a trailing slash and missing files", async () => {
    expect((await get("/style.css/")).res.status).toBe(404);
    expect((await get("/nope.html")).res.status).toBe(404);
    expect((await get("/sub/nope/")).res.status).toBe(404);
  });

  it("serves the small HTML 404 page; each call gets its own header list", async () => {
    const r = await get("/missing");
    expect(r.res.status).toBe(404);
    expect(r.header("content-type")).toBe("text/html; charset=utf-8");
    expect(r.text).toContain("404 Not Found");
    const direct = notFoundResponse();
    expect(direct.status).toBe(404);
    expect(new TextDecoder().decode(direct.body as Uint8Array)).toBe(r.text);
    (direct.headers as [string, string][]).push(["x-site", "added"]);
    expect(notFoundResponse().headers).toEqual(r.res.headers);
  });
});

describe("static handler: methods", () => {
  it("answers HEAD with the GET headers, the GET length and no body", async () => {
    const g = await get("/data.bin");
    const h = await get("/data.bin", { method: "HEAD" });
    expect(h.res.status).toBe(200);
    expect(h.res.body).toBe(null);
    expect(h.fields()).toEqual(g.fields());
    expect(h.res.length).toBe(1000);
  });

  it("refuses other methods with 405 and Allow", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const r = await get("/style.css", { method });
      expect(r.res.status).toBe(405);
      expect(r.header("allow")).toBe("GET, HEAD");
    }
  });
});

describe("static handler: path safety", () => {
  it("400s invalid percent-encodings and NUL bytes", async () => {
    for (const p of ["/%zz", "/style.css%", "/%c3%28", "/style.css%00.html"]) {
      expect((await get(p)).res.status).toBe(400);
    }
  });

  it("404s dotfiles and dot-directories, encoded or not", async () => {
    for (const p of ["/.env", "/%2eenv", "/.git/config", "/.git/", "/sub/../.env"]) {
      const r = await get(p);
      expect(r.res.status).toBe(404);
      expect(r.text).not.toContain("SECRET");
    }
  });

  it("404s encoded slashes and backslashes instead of splitting on them", async () => {
    for (
      const p of ["/sub%2Findex.html", "/sub%5Cindex.html", "/a/%2f..%2f", "/..%2f..%2fetc/passwd"]
    ) {
      expect((await get(p)).res.status).toBe(404);
    }
  });

  it("normalises dot segments inside the root and refuses escapes", async () => {
    const inside = await get("/sub/../style.css");
    expect(inside.res.status).toBe(200);
    expect(inside.text).toBe("body{}");
    for (
      const raw of [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/.%2E/outside.txt",
        "/sub/../../outside.txt",
      ]
    ) {
      const r = await get(raw);
      expect(r.res.status).toBe(404);
      expect(r.text).not.toContain("outside");
    }
  });

  it("404s symlinks that resolve outside the root, serves those inside", async () => {
    const esc = await get("/escape.txt");
    expect(esc.res.status).toBe(404);
    expect(esc.text).not.toContain("outside");
    expect((await get("/escape_dir/")).res.status).toBe(404);
    expect((await get("/escape_dir/index.html")).res.status).toBe(404);
    const alias = await get("/alias.css");
    expect(alias.res.status).toBe(200);
    expect(alias.text).toBe("body{}");
  });

  it("refuses a file swapped for a symlink out of the root at once, though its path was just resolved", async () => {
    const dir = await Deno.makeTempDir({ prefix: "bws_static_swap_" });
    try {
      await Deno.mkdir(`${dir}/root/sub`, { recursive: true });
      await Deno.writeTextFile(`${dir}/secret.txt`, "outside secret");
      await Deno.writeTextFile(`${dir}/root/page.txt`, "page");
      await Deno.writeTextFile(`${dir}/root/sub/doc.txt`, "doc");
      const h = createStaticHandler({ root: `${dir}/root`, indexFile: "index.html" });
      expect((await call(h, { target: "/page.txt" })).text).toBe("page");
      expect((await call(h, { target: "/sub/doc.txt" })).text).toBe("doc");
      // Within the second the resolved paths are remembered: a file and a directory on them
      // become symlinks out of the root.
      await Deno.remove(`${dir}/root/page.txt`);
      await Deno.symlink(`${dir}/secret.txt`, `${dir}/root/page.txt`);
      await Deno.mkdir(`${dir}/elsewhere`);
      await Deno.writeTextFile(`${dir}/elsewhere/doc.txt`, "outside doc");
      await Deno.remove(`${dir}/root/sub`, { recursive: true });
      await Deno.symlink(`${dir}/elsewhere`, `${dir}/root/sub`);
      for (const target of ["/page.txt", "/sub/doc.txt"]) {
        const r = await call(h, { target });
        expect(r.res.status).toBe(404);
        expect(r.text).not.toContain("outside");
      }
      // A file replaced by another file is served as it is now.
      await Deno.remove(`${dir}/root/page.txt`);
      await Deno.writeTextFile(`${dir}/root/page.txt`, "page two");
      expect((await call(h, { target: "/page.txt" })).text).toBe("page two");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("serves a symlinked root from its new target within a second of the switch", async () => {
    const dir = await Deno.makeTempDir({ prefix: "bws_static_release_" });
    try {
      for (const v of ["v1", "v2"]) {
        await Deno.mkdir(`${dir}/${v}`);
        await Deno.writeTextFile(`${dir}/${v}/app.js`, `release ${v}`);
      }
      await Deno.symlink(`${dir}/v1`, `${dir}/current`);
      const h = createStaticHandler({ root: `${dir}/current`, indexFile: "index.html" });
      expect((await call(h, { target: "/app.js" })).text).toBe("release v1");
      // An atomic deploy: the link is replaced by one to the new release.
      await Deno.symlink(`${dir}/v2`, `${dir}/next`);
      await Deno.rename(`${dir}/next`, `${dir}/current`);
      const switched = Date.now();
      let text = "";
      while (Date.now() - switched < 3000) {
        text = (await call(h, { target: "/app.js" })).text;
        if (text === "release v2") break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(text).toBe("release v2");
      expect(Date.now() - switched).toBeLessThan(1500);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("404s everything while the root does not exist, and serves it once created", async () => {
    const later = `${base}/later`;
    const h = createStaticHandler({ root: later, indexFile: "index.html" });
    expect((await call(h, { target: "/a.txt" })).res.status).toBe(404);
    await Deno.mkdir(later);
    await Deno.writeTextFile(`${later}/a.txt`, "now");
    const second = await call(h, { target: "/a.txt" });
    expect(second.res.status).toBe(200);
    expect(second.text).toBe("now");
  });
});

describe("static handler: conditional requests", () => {
  it("304s a matching If-None-Match (exact, list, star, weak compare) with validators", async () => {
    const first = await get("/style.css");
    const etag = first.header("etag")!;
    for (const inm of [etag, `"zzz", ${etag}`, "*", etag.slice(2)]) {
      const r = await get("/style.css", { headers: { "if-none-match": inm } });
      expect(r.res.status).toBe(304);
      expect(r.res.body).toBe(null);
      expect(r.header("etag")).toBe(etag);
      expect(r.header("last-modified")).toBe(first.header("last-modified"));
      expect(r.header("content-type")).toBe(null);
    }
    const miss = await get("/style.css", { headers: { "if-none-match": `W/"other"` } });
    expect(miss.res.status).toBe(200);
  });

  it("304s If-Modified-Since when not modified, unless If-None-Match disagrees", async () => {
    const lm = (await get("/style.css")).header("last-modified")!;
    expect((await get("/style.css", { headers: { "if-modified-since": lm } })).res.status).toBe(
      304,
    );
    const old = "Thu, 01 Jan 1970 00:00:01 GMT";
    expect((await get("/style.css", { headers: { "if-modified-since": old } })).res.status).toBe(
      200,
    );
    const both = await get("/style.css", {
      headers: { "if-modified-since": lm, "if-none-match": `"nope"` },
    });
    expect(both.res.status).toBe(200);
  });

  it("changes the ETag when the file changes", async () => {
    const before = (await get("/sub/deeper/x.json")).header("etag");
    await Deno.writeTextFile(`${root}/sub/deeper/x.json`, '{"a":1}');
    const after = (await get("/sub/deeper/x.json")).header("etag");
    expect(after).not.toBe(before);
  });
});

describe("static handler: ranges", () => {
  it("206s a-b, a- and -n with Content-Range and exact bytes", async () => {
    const cases: [string, number, number][] = [
      ["bytes=0-9", 0, 9],
      ["bytes=990-", 990, 999],
      ["bytes=-5", 995, 999],
      ["bytes=500-5000", 500, 999],
    ];
    for (const [range, start, end] of cases) {
      const r = await get("/data.bin", { headers: { range } });
      expect(r.res.status).toBe(206);
      expect(r.header("content-range")).toBe(`bytes ${start}-${end}/1000`);
      expect(announced(r)).toBe(end - start + 1);
      expect(firstDifference(r.body, BIN.slice(start, end + 1))).toBe(-1);
    }
  });

  it("416s an unsatisfiable range with bytes */size", async () => {
    const r = await get("/data.bin", { headers: { range: "bytes=1000-" } });
    expect(r.res.status).toBe(416);
    expect(r.header("content-range")).toBe("bytes */1000");
    expect(r.header("content-type")).toBe("text/plain; charset=utf-8");
  });

  it("serves the whole file for multiple or malformed ranges", async () => {
    for (const range of ["bytes=0-1,5-6", "bytes=9-2", "lines=1-2"]) {
      const r = await get("/data.bin", { headers: { range } });
      expect(r.res.status).toBe(200);
      expect(r.body.length).toBe(1000);
    }
  });

  it("honours If-Range only when the ETag or date matches", async () => {
    const head = await get("/data.bin", { method: "HEAD" });
    const range = "bytes=0-3";
    const byTag = await get("/data.bin", { headers: { range, "if-range": head.header("etag")! } });
    expect(byTag.res.status).toBe(206);
    const byDate = await get("/data.bin", {
      headers: { range, "if-range": head.header("last-modified")! },
    });
    expect(byDate.res.status).toBe(206);
    const stale = await get("/data.bin", { headers: { range, "if-range": `W/"old"` } });
    expect(stale.res.status).toBe(200);
    expect(stale.body.length).toBe(1000);
  });

  it("gives HEAD with Range the same 206 headers, the range's length and no body", async () => {
    const r = await get("/data.bin", { method: "HEAD", headers: { range: "bytes=-5" } });
    expect(r.res.status).toBe(206);
    expect(r.res.length).toBe(5);
    expect(r.res.body).toBe(null);
  });

  it("serves a range across several buffer fills byte-exact", async () => {
    const start = 70_000;
    const end = 250_000;
    const r = await get("/large.bin", { headers: { range: `bytes=${start}-${end}` } });
    expect(r.res.status).toBe(206);
    expect(r.res.length).toBe(end - start + 1);
    expect(firstDifference(r.body, LARGE.subarray(start, end + 1))).toBe(-1);
  });
});

/** Descriptors of this process open on `name` below the root (other tests share the process). */
function fixtureFds(name: string): number {
  const fixture = Deno.realPathSync(`${root}/${name}`);
  return [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
    try {
      return Deno.readLinkSync(`/proc/self/fd/${e.name}`) === fixture;
    } catch {
      return false;
    }
  }).length;
}

/** The response's body as a source (fails the test otherwise). */
function sourceOf(body: Uint8Array | BodySource | null): BodySource {
  if (body === null || body instanceof Uint8Array) throw new Error("expected a streamed body");
  return body;
}

describe("static handler: file bodies", () => {
  it("reads a small file into a pooled buffer that stays the response's own until it is done", async () => {
    // Files just written: not settled, so read from disk (not from memory) for two seconds.
    await Deno.writeFile(`${root}/fresh.bin`, BIN);
    await Deno.writeTextFile(`${root}/fresh.css`, "body{}");
    const bin = await serve(testRequest({ target: "/fresh.bin" }));
    const bytes = bin.body as Uint8Array;
    expect(firstDifference(bytes, BIN)).toBe(-1);
    // While the first response is not done, the next small file gets another buffer.
    const css = await serve(testRequest({ target: "/fresh.css" }));
    expect(new TextDecoder().decode(css.body as Uint8Array)).toBe("body{}");
    expect((css.body as Uint8Array).buffer).not.toBe(bytes.buffer);
    expect(firstDifference(bytes, BIN)).toBe(-1);
    css.done?.(6, null);
    // Once done, its buffer is the next one read into.
    const again = await serve(testRequest({ target: "/fresh.bin" }));
    expect((again.body as Uint8Array).buffer).toBe((css.body as Uint8Array).buffer);
    expect(firstDifference(again.body as Uint8Array, BIN)).toBe(-1);
    expect(firstDifference(bytes, BIN)).toBe(-1);
    bin.done?.(BIN.length, null);
    again.done?.(BIN.length, null);
  });

  it("serves a settled small file from memory, and a rewrite of it (same size) at once", async () => {
    await Deno.writeTextFile(`${root}/settled.txt`, "first version");
    await new Promise((r) => setTimeout(r, 2100));
    const first = await serve(testRequest({ target: "/settled.txt" }));
    expect(new TextDecoder().decode(first.body as Uint8Array)).toBe("first version");
    expect(first.done).toBeUndefined(); // from memory: no pooled buffer to give back
    const again = await serve(testRequest({ target: "/settled.txt" }));
    expect(again.body).toBe(first.body);
    // Rewritten in place with the same size: its times move on, the new bytes are served.
    await Deno.writeTextFile(`${root}/settled.txt`, "later version");
    const later = await serve(testRequest({ target: "/settled.txt" }));
    expect(new TextDecoder().decode(later.body as Uint8Array)).toBe("later version");
    later.done?.(13, null);
    // A range of it comes from the same memory.
    const part = await serve(
      testRequest({ target: "/settled.txt", headers: [["range", "bytes=6-12"]] }),
    );
    expect(part.status).toBe(206);
    expect(new TextDecoder().decode(part.body as Uint8Array)).toBe("version");
    part.done?.(7, null);
  });

  it("reads every chunk of a body into one buffer, handed back to the pool at the end", async () => {
    const res = await serve(testRequest({ target: "/large.bin" }));
    expect(res.length).toBe(LARGE.length);
    const src = sourceOf(res.body);
    const buffers = new Set<ArrayBufferLike>();
    let total = 0;
    for (let chunk = await src.read(); chunk !== null; chunk = await src.read()) {
      expect(firstDifference(chunk, LARGE.subarray(total, total + chunk.length))).toBe(-1);
      buffers.add(chunk.buffer);
      total += chunk.length;
    }
    expect(total).toBe(LARGE.length);
    expect(buffers.size).toBe(1);
    // The next body gets that same buffer from the pool.
    const next = sourceOf((await serve(testRequest({ target: "/large.bin" }))).body);
    const first = await next.read();
    expect(buffers.has(first!.buffer)).toBe(true);
    next.cancel();
    expect(fileBuffers.free).toBeGreaterThan(0);
  });

  it("survives 500 sequential requests, full and ranged, without leaking handles", async () => {
    for (let i = 0; i < 500; i++) {
      const init = i % 2 ? { headers: { range: "bytes=10-20" } } : {};
      const r = await get("/data.bin", init);
      expect(r.res.status).toBe(i % 2 ? 206 : 200);
      expect(r.body.length).toBe(i % 2 ? 11 : 1000);
    }
    // Each unclosed file would hold one descriptor on the fixture.
    expect(fixtureFds("data.bin")).toBe(0);
    expect(fileBuffers.free).toBeLessThanOrEqual(fileBuffers.maxFree);
  });

  it("closes the file when a body is cancelled, before or after its first read", async () => {
    const start = fixtureFds("large.bin");
    for (let i = 0; i < 50; i++) {
      const full = await serve(testRequest({ target: "/large.bin" }));
      sourceOf(full.body).cancel();
      const ranged = await serve(
        testRequest({ target: "/large.bin", headers: [["range", "bytes=1-200000"]] }),
      );
      const src = sourceOf(ranged.body);
      await src.read();
      src.cancel();
      await expect(src.read()).rejects.toThrow();
    }
    expect(fixtureFds("large.bin")).toBe(start);
  });

  it("gives the buffer back and closes the file at cancel (reads never stay pending)", async () => {
    const src = sourceOf((await serve(testRequest({ target: "/large.bin" }))).body);
    await src.read();
    const chunk = await src.read();
    expect(chunk!.length).toBe(64 * 1024);
    const free = fileBuffers.free;
    expect(fixtureFds("large.bin")).toBe(1);
    src.cancel();
    expect(fileBuffers.free).toBe(free + 1);
    expect(fixtureFds("large.bin")).toBe(0);
    await expect(src.read()).rejects.toThrow(/cancelled/);
    src.cancel();
    expect(fileBuffers.free).toBe(free + 1);
  });

  it("fails the body, not ends it, when the file shrinks while it is sent", async () => {
    const path = `${root}/shrinking.bin`;
    await Deno.writeFile(path, LARGE);
    const src = sourceOf((await serve(testRequest({ target: "/shrinking.bin" }))).body);
    expect((await src.read())!.length).toBe(64 * 1024);
    await Deno.truncate(path, 100_000);
    expect((await src.read())!.length).toBe(100_000 - 64 * 1024);
    await expect(src.read()).rejects.toThrow(/ended .* bytes early/);
    expect(fixtureFds("shrinking.bin")).toBe(0);
  });
});
