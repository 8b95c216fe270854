/**
 * `[[sites.redirects]]` end to end (SPEC 11): a running bws answers each status with its
 * Location and the site's headers, keeps the rest of the path and the query with `keep_path`,
 * picks the longest matching path, and answers before routes and static files (the upstream
 * never sees a redirected request; a file under a redirected path is not served). Raw sockets
 * and curl, which do not follow redirects unless asked.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { rawExchange } from "./helpers/raw_http.ts";

let dir = "";
let bws: TestBws;
let backend: Backend;

before(async () => {
  dir = await Deno.makeTempDir({ prefix: "bws_web_redirects_" });
  await Deno.mkdir(`${dir}/www/old`, { recursive: true });
  await Deno.writeTextFile(`${dir}/www/old/page.html`, "<p>old page</p>");
  await Deno.writeTextFile(`${dir}/www/kept.html`, "<p>kept</p>");
  backend = startEchoBackend("api");
  bws = await startBws(`
[[sites]]
name = "r"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${dir}/www"

[sites.headers]
"X-Site" = "r"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend.url}"

[[sites.proxy.routes]]
path = "/api/"
upstream = "b"

[[sites.redirects]]
path = "/old/"
to = "/new/"
status = 301

[[sites.redirects]]
path = "/old/deep/"
to = "https://deep.example/d?from=bws#top"
status = 302

[[sites.redirects]]
path = "/exact"
to = "https://example.com/landing?src=bws"
status = 307
keep_path = false

[[sites.redirects]]
path = "/see"
to = "/other"
status = 303

[[sites.redirects]]
path = "/perm/"
to = "https://perm.example/"

[[sites.redirects]]
path = "/api/v1/"
to = "/api/v2/"
`);
});

after(async () => {
  await bws?.close();
  await backend?.close();
  await Deno.remove(dir, { recursive: true });
});

async function redirect(target: string, method = "GET") {
  const res = await rawExchange(bws.port, method, target);
  return { status: res.status, location: res.headers.get("location"), res };
}

describe("redirects", () => {
  it("answer each configured status with its Location, an empty body and the site's headers", async () => {
    const cases: [string, number, string][] = [
      ["/old/x", 301, "/new/x"],
      ["/old/deep/x", 302, "https://deep.example/d/x?from=bws#top"],
      ["/see", 303, "/other"],
      ["/exact", 307, "https://example.com/landing?src=bws"],
      ["/perm/x", 308, "https://perm.example/x"], // status defaults to 308
    ];
    for (const [target, status, location] of cases) {
      const r = await redirect(target);
      expect([target, r.status, r.location]).toEqual([target, status, location]);
      expect(r.res.headers.get("x-site")).toBe("r");
      expect(r.res.headers.get("content-length")).toBe("0");
      expect(r.res.body.length).toBe(0);
    }
  });

  it("keep_path appends the rest of the path and the query, joined to the target's own", async () => {
    expect((await redirect("/old/a/b.html?x=1&y=%20")).location).toBe("/new/a/b.html?x=1&y=%20");
    expect((await redirect("/old/")).location).toBe("/new/");
    expect((await redirect("/old")).location).toBe("/new/");
    expect((await redirect("/old/?only=query")).location).toBe("/new/?only=query");
    expect((await redirect("/old/deep/z?q=1")).location).toBe(
      "https://deep.example/d/z?from=bws&q=1#top",
    );
    // Percent-encoding is kept as received.
    expect((await redirect("/perm/caf%C3%A9")).location).toBe("https://perm.example/caf%C3%A9");
  });

  it("without keep_path the target is sent as written", async () => {
    expect((await redirect("/exact?x=1")).location).toBe("https://example.com/landing?src=bws");
    expect((await redirect("/exact/more")).location).toBe("https://example.com/landing?src=bws");
  });

  it("the longest matching path wins, matched like a route path", async () => {
    expect((await redirect("/old/deep")).status).toBe(302);
    expect((await redirect("/old/deeper")).location).toBe("/new/deeper");
    // "/exact" does not match "/exactly" (not a segment boundary): the static 404.
    expect((await redirect("/exactly")).status).toBe(404);
  });

  it("come before routes and static files, for every method", async () => {
    const seen = backend.seen.length;
    const api = await redirect("/api/v1/users?id=7", "POST");
    expect([api.status, api.location]).toEqual([308, "/api/v2/users?id=7"]);
    expect(backend.seen.length).toBe(seen);
    // Beside the redirect, the route and the static files still answer.
    expect((await redirect("/api/v2/users")).status).toBe(200);
    expect(backend.seen.length).toBe(seen + 1);
    const file = await redirect("/old/page.html");
    expect([file.status, file.location]).toEqual([301, "/new/page.html"]);
    expect((await redirect("/kept.html")).status).toBe(200);
  });

  it("curl -L follows the redirect to the upstream's answer", async () => {
    const out = await new Deno.Command("curl", {
      args: [
        "-s",
        "-L",
        "--max-time",
        "5",
        "-w",
        "%{http_code} %{num_redirects}",
        bws.url(
          "/api/v1/users?id=7",
        ),
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    expect(text).toMatch(/"path":"\/api\/v2\/users\?id=7"/);
    expect(text.endsWith("200 1")).toBe(true);
  });
});
