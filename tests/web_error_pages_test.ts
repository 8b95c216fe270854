/**
 * `[sites.error_pages]` end to end (SPEC 11): a running bws gives its own answers (a static 404,
 * an access 403, a rate-limit 429, a 413, an unreachable upstream's 502, a slow one's 504) the
 * site's HTML page when the client accepts text/html, keeping the status and the other headers;
 * a status's own page wins over its class's; clients that do not ask for HTML keep the plain
 * text; an upstream's own 404 or 502, and a forward-auth service's 401, are never replaced.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import {
  type Backend,
  type RawServer,
  startEchoBackend,
  startRawServer,
} from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { rawExchange } from "./helpers/raw_http.ts";

const BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const PAGES: Record<string, string> = {
  "404": "<h1>custom not found</h1>",
  "4xx": "<h1>custom client error</h1>",
  "403": "<h1>custom forbidden</h1>",
  "5xx": "<h1>custom server error</h1>",
  "504": "<h1>custom gateway timeout</h1>",
};

let dir = "";
let bws: TestBws;
let backend: Backend;
let mute: RawServer;
let hangUp: RawServer;

before(async () => {
  dir = await Deno.makeTempDir({ prefix: "bws_web_error_pages_" });
  await Deno.mkdir(`${dir}/errors`);
  await Deno.mkdir(`${dir}/www`);
  await Deno.writeTextFile(`${dir}/www/index.html`, "<p>home</p>");
  for (const [key, html] of Object.entries(PAGES)) {
    await Deno.writeTextFile(`${dir}/errors/${key}.html`, html);
  }
  backend = startEchoBackend("up", (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/up/missing") return new Response("upstream's own 404\n", { status: 404 });
    if (path === "/up/broken") return new Response("upstream's own 502\n", { status: 502 });
    if (path === "/verify") return new Response("log in first\n", { status: 401 });
    return undefined;
  });
  // Closes every connection at once: the route through it gets bws's 502. (A closed port could
  // be taken by another test's listener meanwhile.)
  hangUp = startRawServer((conn) => conn.close());
  // Accepts and never answers: the route through it times out.
  mute = startRawServer(async (conn) => {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    conn.close();
  });
  bws = await startBws(
    `
[[sites]]
name = "e"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "www"
max_body_size = "1KiB"

[sites.headers]
"X-Site" = "e"

[sites.error_pages]
404 = "errors/404.html"
"4xx" = "errors/4xx.html"
403 = "errors/403.html"
"5xx" = "errors/5xx.html"
504 = "errors/504.html"

[sites.proxy]
enabled = true

[sites.proxy.timeout]
read = 0.5

[sites.proxy.passive_health]
enabled = false

[[sites.proxy.upstreams]]
name = "up"
url = "${backend.url}"

[[sites.proxy.upstreams]]
name = "dead"
url = "http://127.0.0.1:${hangUp.port}"

[[sites.proxy.upstreams]]
name = "mute"
url = "http://127.0.0.1:${mute.port}"

[[sites.proxy.routes]]
path = "/up/"
upstream = "up"

[[sites.proxy.routes]]
path = "/dead/"
upstream = "dead"

[[sites.proxy.routes]]
path = "/slow/"
upstream = "mute"

[[sites.proxy.routes]]
path = "/private/"
upstream = "up"

[sites.proxy.routes.access]
deny = ["127.0.0.1"]

[[sites.proxy.routes]]
path = "/limited/"
upstream = "up"

[sites.proxy.routes.rate_limit]
rate = 1
burst = 1

[[sites.proxy.routes]]
path = "/auth/"
upstream = "up"

[sites.proxy.routes.forward_auth]
url = "${backend.url}/verify"
`,
    dir,
  );
});

after(async () => {
  await bws?.close();
  await backend?.close();
  await mute?.close();
  await hangUp?.close();
  await Deno.remove(dir, { recursive: true });
});

function get(path: string, accept: string | null) {
  return rawExchange(bws.port, "GET", path, accept === null ? {} : { accept });
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("error pages", () => {
  it("replace bws's own answers for browsers, keeping status and headers", async () => {
    const cases: [string, number, string][] = [
      ["/missing.html", 404, PAGES["404"]], // its own page
      ["/private/x", 403, PAGES["403"]],
      ["/dead/x", 502, PAGES["5xx"]], // the class's page
      ["/slow/x", 504, PAGES["504"]], // its own page over the class's
    ];
    for (const [path, status, page] of cases) {
      const res = await get(path, BROWSER);
      expect([path, res.status, text(res.body)]).toEqual([path, status, page]);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("content-length")).toBe(String(page.length));
      expect(res.headers.get("x-site")).toBe("e");
    }
    // Proxy failures keep their request id and Cache-Control.
    const dead = await get("/dead/x", BROWSER);
    expect(dead.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(dead.headers.get("cache-control")).toBe("no-store");
  });

  it("use the class's page for a status without its own: 429, 413", async () => {
    await get("/limited/a", BROWSER); // takes the one token
    const limited = await get("/limited/a", BROWSER);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(text(limited.body)).toBe(PAGES["4xx"]);

    const tooBig = await rawExchange(bws.port, "POST", "/up/upload", {
      accept: BROWSER,
      "content-length": "5000",
    });
    expect(tooBig.status).toBe(413);
    expect(text(tooBig.body)).toBe(PAGES["4xx"]);
  });

  it("are only for clients that accept text/html", async () => {
    for (const accept of [null, "*/*", "application/json", "text/html;q=0", "image/*"]) {
      const res = await get("/missing.html", accept);
      expect(res.status).toBe(404);
      expect(text(res.body)).not.toContain("custom");
      const dead = await get("/dead/x", accept);
      expect(dead.status).toBe(502);
      expect(dead.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(text(dead.body)).toMatch(/^502 Bad Gateway\nrequest id: /);
    }
    expect(text((await get("/missing.html", "text/*")).body)).toBe(PAGES["404"]);
    // curl's and fetch's default Accept is */*: the plain answer.
    const curl = await new Deno.Command("curl", {
      args: ["-s", "--max-time", "5", bws.url("/dead/x")],
      stdout: "piped",
    }).output();
    expect(text(curl.stdout)).toMatch(/^502 Bad Gateway/);
    const fetched = await fetch(bws.url("/dead/x"));
    expect(await fetched.text()).toMatch(/^502 Bad Gateway/);
  });

  it("never replace an upstream's answer or a forward-auth service's", async () => {
    const missing = await get("/up/missing", BROWSER);
    expect([missing.status, text(missing.body)]).toEqual([404, "upstream's own 404\n"]);
    const broken = await get("/up/broken", BROWSER);
    expect([broken.status, text(broken.body)]).toEqual([502, "upstream's own 502\n"]);
    const auth = await get("/auth/x", BROWSER);
    expect([auth.status, text(auth.body)]).toEqual([401, "log in first\n"]);
  });

  it("leave successful answers alone", async () => {
    const res = await get("/", BROWSER);
    expect([res.status, text(res.body)]).toEqual([200, "<p>home</p>"]);
  });
});
