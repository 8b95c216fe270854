/**
 * The static handler with `spa_fallback`: app routes get the fallback file with 200,
 * missing assets still get 404, and the fallback is served like any static file.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import * as zlib from "node:zlib";
import { configFromObject } from "../config/load.ts";
import { CompressedFileCache } from "../compress/static_cache.ts";
import { createStaticHandler, type StaticHandler } from "./handler.ts";
import { staticOptionsFor } from "./site_options.ts";
import { call, type ReadResponse } from "../../tests/helpers/test_response.ts";

const APP_PAGE = "<!DOCTYPE html><title>app</title>" + "<div></div>".repeat(200);
let root = "";
let serve: StaticHandler;

function get(
  target: string,
  init: { method?: string; headers?: Record<string, string>; handler?: StaticHandler } = {},
): Promise<ReadResponse> {
  return call(init.handler ?? serve, {
    target,
    method: init.method,
    headers: Object.entries(init.headers ?? {}),
  });
}

function handlerWith(spaFallback: string, compression: Record<string, unknown> = {}) {
  const site = configFromObject({
    sites: [{ name: "s", port: 0, static_dir: root, spa_fallback: spaFallback, compression }],
  }).sites[0];
  return createStaticHandler(staticOptionsFor(site, new CompressedFileCache()));
}

before(async () => {
  root = await Deno.realPath(await Deno.makeTempDir({ prefix: "bws_static_spa_" }));
  await Deno.mkdir(`${root}/app/assets`, { recursive: true });
  await Deno.mkdir(`${root}/docs`);
  await Deno.writeTextFile(`${root}/index.html`, APP_PAGE);
  await Deno.writeTextFile(`${root}/app/index.html`, "<h1>nested app</h1>");
  await Deno.writeTextFile(`${root}/app/assets/main.js`, "main();");
  await Deno.writeTextFile(`${root}/docs/index.html`, "<h1>docs</h1>");
  await Deno.writeTextFile(`${root}/.env`, "SECRET=1");
  serve = handlerWith("index.html", { static: false });
});

after(async () => {
  await Deno.remove(root, { recursive: true });
});

describe("static handler: SPA fallback", () => {
  it("serves the fallback with 200 for app routes, 404 for missing files", async () => {
    for (const path of ["/app/settings", "/app/settings/", "/deep/a/b/c", "/app/settings?tab=2"]) {
      const r = await get(path);
      expect([path, r.res.status]).toEqual([path, 200]);
      expect(r.text).toBe(APP_PAGE);
      expect(r.header("content-type")).toBe("text/html; charset=utf-8");
    }
    for (const path of ["/app/missing.js", "/users/jane.doe", "/app/assets/gone.css"]) {
      const r = await get(path);
      expect([path, r.res.status]).toEqual([path, 404]);
      expect(r.text).toContain("404 Not Found");
    }
  });

  it("leaves files, index files and directory redirects as they are", async () => {
    expect((await get("/app/assets/main.js")).text).toBe("main();");
    expect((await get("/docs/")).text).toBe("<h1>docs</h1>");
    const dir = await get("/docs?x=1");
    expect(dir.res.status).toBe(301);
    expect(dir.header("location")).toBe("/docs/?x=1");
  });

  it("never turns a refused path into its target: dotfiles get the app, bad encodings 400", async () => {
    const dot = await get("/.env");
    expect(dot.res.status).toBe(200);
    expect(dot.text).not.toContain("SECRET");
    expect((await get("/a%zz")).res.status).toBe(400);
  });

  it("answers HEAD with the fallback's headers and length, and other methods 405", async () => {
    const h = await get("/app/settings", { method: "HEAD" });
    expect(h.res.status).toBe(200);
    expect(h.res.body).toBe(null);
    expect(h.res.length).toBe(APP_PAGE.length);
    expect((await get("/app/settings", { method: "POST" })).res.status).toBe(405);
  });

  it("serves the fallback like any file: validators, conditional requests, compression", async () => {
    const first = await get("/somewhere");
    const etag = first.header("etag")!;
    expect(etag).toMatch(/^W\/"/);
    const again = await get("/elsewhere", { headers: { "if-none-match": etag } });
    expect(again.res.status).toBe(304);

    const compressing = handlerWith("index.html");
    const gz = await get("/app/settings", {
      headers: { "accept-encoding": "gzip" },
      handler: compressing,
    });
    expect(gz.header("content-encoding")).toBe("gzip");
    expect(new TextDecoder().decode(zlib.gunzipSync(gz.body))).toBe(APP_PAGE);
  });

  it("takes a nested fallback file, and 404s when the fallback is missing or off", async () => {
    const nested = handlerWith("/app/index.html");
    expect((await get("/app/settings", { handler: nested })).text).toBe("<h1>nested app</h1>");
    const missing = handlerWith("nope.html");
    expect((await get("/app/settings", { handler: missing })).res.status).toBe(404);
    const dirAsFallback = handlerWith("docs");
    expect((await get("/app/settings", { handler: dirAsFallback })).res.status).toBe(404);
    const off = createStaticHandler({ root, indexFile: "index.html" });
    expect((await get("/app/settings", { handler: off })).res.status).toBe(404);
  });
});
