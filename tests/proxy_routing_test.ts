import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, rawRequest, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { fetchHost, startBws, type TestBws } from "./helpers/bws.ts";

describe("routing (SPEC 3)", () => {
  let api: Backend, admin: Backend, ws: Backend, root: Backend;
  let bws: TestBws;
  let staticDir: string;

  before(async () => {
    api = startEchoBackend("api");
    admin = startEchoBackend("admin");
    ws = startEchoBackend("ws");
    root = startEchoBackend("root");
    staticDir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${staticDir}/index.html`, "<h1>static</h1>");
    await Deno.writeTextFile(`${staticDir}/page.txt`, "from static");
    bws = await startBws(`
[[sites]]
name = "main"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${staticDir}"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "api"
url = "${api.url}"
[[sites.proxy.upstreams]]
name = "admin"
url = "${admin.url}/base"
[[sites.proxy.upstreams]]
name = "ws"
url = "${ws.url}"

[[sites.proxy.routes]]
path = "/api/"
upstream = "api"

[[sites.proxy.routes]]
path = "/api/v2/"
upstream = "admin"

[[sites.proxy.routes]]
path = "/admin/"
upstream = "admin"
strip_prefix = true

[[sites.proxy.routes]]
path = "/ws"
upstream = "ws"
strip_prefix = true

[[sites]]
name = "other"
hostname = "other.test"
port = 0
bind = "127.0.0.1"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "root"
url = "${root.url}"

[[sites.proxy.routes]]
path = "/"
upstream = "root"
`);
  });

  after(async () => {
    await bws.close();
    await Promise.all([api.close(), admin.close(), ws.close(), root.close()]);
    await Deno.remove(staticDir, { recursive: true });
  });

  async function get(
    path: string,
    host = "localhost",
  ): Promise<{ status: number; seen: Seen | null; text: string }> {
    const res = await fetchHost(bws.url(path), host);
    const text = await res.text();
    const seen = res.headers.get("x-backend") ? JSON.parse(text) as Seen : null;
    return { status: res.status, seen, text };
  }

  it("matches a prefix route on segment boundaries", async () => {
    expect((await get("/api/users")).seen?.id).toBe("api");
    expect((await get("/api")).seen?.id).toBe("api");
    const apix = await get("/apix");
    expect(apix.seen).toBe(null);
    expect(apix.status).toBe(404);
  });

  it("prefers the longest matching route", async () => {
    const r = await get("/api/v2/things");
    expect(r.seen?.id).toBe("admin");
    expect(r.seen?.path).toBe("/base/api/v2/things");
  });

  it("strips the prefix, prepends the upstream base path and keeps the query byte-for-byte", async () => {
    const raw = await rawRequest(
      bws.port,
      "GET /admin/users?x=1&y=%20z&a=b%2Fc HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    const body = JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)) as Seen;
    expect(body.id).toBe("admin");
    expect(body.path).toBe("/base/users?x=1&y=%20z&a=b%2Fc");
  });

  it("turns an empty stripped path into /", async () => {
    expect((await get("/ws")).seen?.path).toBe("/");
    expect((await get("/ws?q=1")).seen?.path).toBe("/?q=1");
    expect((await get("/ws/room")).seen?.path).toBe("/room");
    expect((await get("/wsx")).status).toBe(404);
  });

  it("falls through to static files when no route matches", async () => {
    const r = await get("/page.txt");
    expect(r.status).toBe(200);
    expect(r.text).toBe("from static");
    expect((await get("/")).text).toContain("static");
  });

  it("chooses the site by Host, case-insensitive and without port", async () => {
    expect((await get("/anything", "OTHER.test:1234")).seen?.id).toBe("root");
    expect((await get("/api/x", "unknown.example")).seen?.id).toBe("api");
  });

  it("answers 400 to an HTTP/1.1 request without Host; HTTP/1.0 goes to the default site", async () => {
    const raw = await rawRequest(bws.port, "GET /api/x HTTP/1.1\r\n\r\n");
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    const old = await rawRequest(bws.port, "GET /page.txt HTTP/1.0\r\n\r\n");
    expect(old).toMatch(/^HTTP\/1\.1 200 /);
    expect(old).toContain("from static");
  });
});
