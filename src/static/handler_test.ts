import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { createStaticHandler, notFoundResponse, type StaticRequestHandler } from "./handler.ts";

let base = "";
let root = "";
let serve: StaticRequestHandler;
const BIN = new Uint8Array(1000).map((_, i) => i % 251);

/** Calls the handler like the server does: raw pathname from the request line. */
async function get(
  path: string,
  init: RequestInit = {},
): Promise<{ res: Response; body: Uint8Array }> {
  const req = new Request(`http://site.test${path}`, init);
  const res = await serve(req, path.split("?")[0]);
  const body = new Uint8Array(await res.arrayBuffer());
  return { res, body };
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

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
    const { res, body } = await get("/style.css");
    expect(res.status).toBe(200);
    expect(text(body)).toBe("body{}");
    expect(res.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(res.headers.get("content-length")).toBe("6");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("etag")).toMatch(/^W\/"6-[0-9a-f]+"$/);
    const mtime = (await Deno.stat(`${root}/style.css`)).mtime!;
    expect(res.headers.get("last-modified")).toBe(mtime.toUTCString());
    expect(res.headers.has("server")).toBe(false);
    expect(res.headers.has("cache-control")).toBe(false);
  });

  it("serves binary files byte-exact with octet-stream for unknown types", async () => {
    const { res, body } = await get("/data.bin");
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(body).toEqual(BIN);
  });

  it("serves an empty file with Content-Length 0", async () => {
    const { res, body } = await get("/empty.txt");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe("0");
    expect(body.length).toBe(0);
  });

  it("percent-decodes the path", async () => {
    const { res, body } = await get("/a%20b.txt");
    expect(res.status).toBe(200);
    expect(text(body)).toBe("spaced");
  });

  it("serves the index file for / and for a directory with trailing slash", async () => {
    expect(text((await get("/")).body)).toBe("<h1>home</h1>");
    const { res, body } = await get("/sub/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(text(body)).toBe("<h1>sub</h1>");
  });

  it("uses the configured index file name", async () => {
    const other = createStaticHandler({ root, indexFile: "style.css" });
    const res = await other(new Request("http://site.test/"), "/");
    expect(await res.text()).toBe("body{}");
  });

  it("404s a directory without index, never listing it", async () => {
    const { res, body } = await get("/noindex/");
    expect(res.status).toBe(404);
    expect(text(body)).not.toContain("noindex");
  });

  it("301s a directory without trailing slash, keeping the query", async () => {
    const { res } = await get("/sub?x=1&y=%20");
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe("/sub/?x=1&y=%20");
    expect((await get("/sub/deeper")).res.headers.get("location")).toBe("/sub/deeper/");
  });

  it("never redirects to a protocol-relative URL", async () => {
    const { res } = await get("//evil.com");
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe("/evil.com/");
  });

  it("404s a file asked for with a trailing slash and missing files", async () => {
    expect((await get("/style.css/")).res.status).toBe(404);
    expect((await get("/nope.html")).res.status).toBe(404);
    expect((await get("/sub/nope/")).res.status).toBe(404);
  });

  it("serves the small HTML 404 page", async () => {
    const { res, body } = await get("/missing");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(text(body)).toContain("404 Not Found");
    const direct = notFoundResponse();
    expect(direct.status).toBe(404);
    expect(await direct.text()).toBe(text(body));
  });
});

describe("static handler: methods", () => {
  it("answers HEAD with the GET headers and no body", async () => {
    const g = await get("/data.bin");
    const h = await get("/data.bin", { method: "HEAD" });
    expect(h.res.status).toBe(200);
    expect(h.body.length).toBe(0);
    expect(Object.fromEntries(h.res.headers)).toEqual(Object.fromEntries(g.res.headers));
    expect(h.res.headers.get("content-length")).toBe("1000");
  });

  it("refuses other methods with 405 and Allow", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const { res } = await get("/style.css", { method, body: method === "POST" ? "x" : null });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
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
      const { res, body } = await get(p);
      expect(res.status).toBe(404);
      expect(text(body)).not.toContain("SECRET");
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
    // Request URLs normalise dots, so the raw pathname is passed separately here.
    const call = (raw: string) => serve(new Request("http://site.test/"), raw);
    const inside = await call("/sub/../style.css");
    expect(inside.status).toBe(200);
    expect(await inside.text()).toBe("body{}");
    for (
      const raw of [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/.%2E/outside.txt",
        "/sub/../../outside.txt",
      ]
    ) {
      const res = await call(raw);
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain("outside");
    }
  });

  it("404s symlinks that resolve outside the root, serves those inside", async () => {
    const esc = await get("/escape.txt");
    expect(esc.res.status).toBe(404);
    expect(text(esc.body)).not.toContain("outside");
    expect((await get("/escape_dir/")).res.status).toBe(404);
    expect((await get("/escape_dir/index.html")).res.status).toBe(404);
    const alias = await get("/alias.css");
    expect(alias.res.status).toBe(200);
    expect(text(alias.body)).toBe("body{}");
  });

  it("404s everything while the root does not exist, and serves it once created", async () => {
    const later = `${base}/later`;
    const h = createStaticHandler({ root: later, indexFile: "index.html" });
    const first = await h(new Request("http://site.test/a.txt"), "/a.txt");
    await first.body?.cancel();
    expect(first.status).toBe(404);
    await Deno.mkdir(later);
    await Deno.writeTextFile(`${later}/a.txt`, "now");
    const second = await h(new Request("http://site.test/a.txt"), "/a.txt");
    expect(second.status).toBe(200);
    expect(await second.text()).toBe("now");
  });
});

describe("static handler: conditional requests", () => {
  it("304s a matching If-None-Match (exact, list, star, weak compare) with validators", async () => {
    const { res } = await get("/style.css");
    const etag = res.headers.get("etag")!;
    for (const inm of [etag, `"zzz", ${etag}`, "*", etag.slice(2)]) {
      const r = await get("/style.css", { headers: { "if-none-match": inm } });
      expect(r.res.status).toBe(304);
      expect(r.body.length).toBe(0);
      expect(r.res.headers.get("etag")).toBe(etag);
      expect(r.res.headers.get("last-modified")).toBe(res.headers.get("last-modified"));
    }
    const miss = await get("/style.css", { headers: { "if-none-match": `W/"other"` } });
    expect(miss.res.status).toBe(200);
  });

  it("304s If-Modified-Since when not modified, unless If-None-Match disagrees", async () => {
    const lm = (await get("/style.css")).res.headers.get("last-modified")!;
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
    const before = (await get("/sub/deeper/x.json")).res.headers.get("etag");
    await Deno.writeTextFile(`${root}/sub/deeper/x.json`, '{"a":1}');
    const after = (await get("/sub/deeper/x.json")).res.headers.get("etag");
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
      const { res, body } = await get("/data.bin", { headers: { range } });
      expect(res.status).toBe(206);
      expect(res.headers.get("content-range")).toBe(`bytes ${start}-${end}/1000`);
      expect(res.headers.get("content-length")).toBe(String(end - start + 1));
      expect(body).toEqual(BIN.slice(start, end + 1));
    }
  });

  it("416s an unsatisfiable range with bytes */size", async () => {
    const { res } = await get("/data.bin", { headers: { range: "bytes=1000-" } });
    expect(res.status).toBe(416);
    expect(res.headers.get("content-range")).toBe("bytes */1000");
  });

  it("serves the whole file for multiple or malformed ranges", async () => {
    for (const range of ["bytes=0-1,5-6", "bytes=9-2", "lines=1-2"]) {
      const { res, body } = await get("/data.bin", { headers: { range } });
      expect(res.status).toBe(200);
      expect(body.length).toBe(1000);
    }
  });

  it("honours If-Range only when the ETag or date matches", async () => {
    const head = (await get("/data.bin", { method: "HEAD" })).res.headers;
    const range = "bytes=0-3";
    const byTag = await get("/data.bin", { headers: { range, "if-range": head.get("etag")! } });
    expect(byTag.res.status).toBe(206);
    const byDate = await get("/data.bin", {
      headers: { range, "if-range": head.get("last-modified")! },
    });
    expect(byDate.res.status).toBe(206);
    const stale = await get("/data.bin", { headers: { range, "if-range": `W/"old"` } });
    expect(stale.res.status).toBe(200);
    expect(stale.body.length).toBe(1000);
  });

  it("gives HEAD with Range the same 206 headers and no body", async () => {
    const { res, body } = await get("/data.bin", {
      method: "HEAD",
      headers: { range: "bytes=-5" },
    });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-length")).toBe("5");
    expect(body.length).toBe(0);
  });
});

/** Descriptors of this process open on data.bin (other tests share the process). */
function fixtureFds(): number {
  const fixture = Deno.realPathSync(`${root}/data.bin`);
  return [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
    try {
      return Deno.readLinkSync(`/proc/self/fd/${e.name}`) === fixture;
    } catch {
      return false;
    }
  }).length;
}

describe("static handler: resources", () => {
  it("survives 500 sequential requests, full and ranged, without leaking handles", async () => {
    for (let i = 0; i < 500; i++) {
      const init = i % 2 ? { headers: { range: "bytes=10-20" } } : {};
      const { res, body } = await get("/data.bin", init);
      expect(res.status).toBe(i % 2 ? 206 : 200);
      expect(body.length).toBe(i % 2 ? 11 : 1000);
    }
    // Each unclosed file would hold one descriptor on the fixture.
    expect(fixtureFds()).toBe(0);
  });

  it("closes the file when a body is cancelled mid-way", async () => {
    const start = fixtureFds();
    for (let i = 0; i < 50; i++) {
      const full = await serve(new Request("http://site.test/data.bin"), "/data.bin");
      await full.body!.cancel();
      const ranged = await serve(
        new Request("http://site.test/data.bin", { headers: { range: "bytes=1-900" } }),
        "/data.bin",
      );
      const reader = ranged.body!.getReader();
      await reader.read();
      await reader.cancel();
    }
    expect(fixtureFds()).toBe(start);
  });
});
