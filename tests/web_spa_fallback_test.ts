/**
 * `spa_fallback` end to end (SPEC 11): a running bws serves the app's index for a path that is
 * not a file and does not look like one (`/app/settings`), with 200, validators and compression
 * like any static file; a missing path that looks like a file (`/app/missing.js`) gets 404 (the
 * site's error page for a browser); real files and routes are served as they are.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { decodedBody, rawExchange } from "./helpers/raw_http.ts";

const INDEX = `<!doctype html><title>app</title><script src="/assets/app.js"></script>\n` +
  "<div id=root></div>\n".repeat(100);
const APP_JS = "console.log('app');\n";
const NOT_FOUND_PAGE = "<h1>no such page</h1>";

let dir = "";
let bws: TestBws;
let backend: Backend;
const text = (b: Uint8Array) => new TextDecoder().decode(b);

before(async () => {
  dir = await Deno.makeTempDir({ prefix: "bws_web_spa_" });
  await Deno.mkdir(`${dir}/dist/assets`, { recursive: true });
  await Deno.writeTextFile(`${dir}/dist/index.html`, INDEX);
  await Deno.writeTextFile(`${dir}/dist/assets/app.js`, APP_JS);
  await Deno.writeTextFile(`${dir}/404.html`, NOT_FOUND_PAGE);
  backend = startEchoBackend("api");
  bws = await startBws(
    `
[[sites]]
name = "app"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "dist"
spa_fallback = "index.html"

[sites.error_pages]
404 = "404.html"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend.url}"

[[sites.proxy.routes]]
path = "/api/"
upstream = "b"
`,
    dir,
  );
});

after(async () => {
  await bws?.close();
  await backend?.close();
  await Deno.remove(dir, { recursive: true });
});

const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
  rawExchange(bws.port, method, path, headers);

describe("SPA fallback", () => {
  it("serves the index with 200 for /app/settings and other extensionless paths", async () => {
    for (const path of ["/app/settings", "/users/42/edit", "/app/settings?tab=profile"]) {
      const res = await get(path);
      expect([path, res.status]).toEqual([path, 200]);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(text(res.body)).toBe(INDEX);
    }
    const head = await get("/app/settings", {}, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(INDEX.length));
  });

  it("gives 404 to a missing path that looks like a file, and to other methods", async () => {
    for (const path of ["/app/missing.js", "/assets/gone.css", "/users/jane.doe"]) {
      const res = await get(path);
      expect([path, res.status]).toEqual([path, 404]);
      expect(text(res.body)).not.toBe(INDEX);
    }
    // A browser gets the site's error page for it.
    const page = await get("/app/missing.js", { accept: "text/html" });
    expect([page.status, text(page.body)]).toEqual([404, NOT_FOUND_PAGE]);
    expect((await get("/app/settings", {}, "DELETE")).status).toBe(405);
  });

  it("leaves files and routes alone", async () => {
    const js = await get("/assets/app.js");
    expect([js.status, text(js.body)]).toEqual([200, APP_JS]);
    const api = await get("/api/users");
    expect(api.status).toBe(200);
    expect(text(api.body)).toContain('"path":"/api/users"');
  });

  it("answers conditional requests and compresses the fallback like any static file", async () => {
    const first = await get("/app/settings");
    const etag = first.headers.get("etag")!;
    expect((await get("/other/route", { "if-none-match": etag })).status).toBe(304);
    const gz = await get("/app/settings", { "accept-encoding": "gzip" });
    expect(gz.headers.get("content-encoding")).toBe("gzip");
    expect(text(decodedBody(gz))).toBe(INDEX);
  });
});
