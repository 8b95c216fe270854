/**
 * `[sites.forward_auth]` (SPEC 10) against a running bws, with a small auth service in the test:
 * it answers 200 with Remote-User (the request goes on, with copy_headers copied and the
 * client's own copies removed), a 302 to its login page or a 401 (passed back as they are, no
 * upstream contacted); an unreachable service gives 503. Static files and WebSocket upgrades
 * ask it too.
 */

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, deadAddress, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { parseProm } from "./helpers/prom_parse.ts";

interface AuthSeen {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: number;
}

/** The auth service: decides by the client's Cookie. */
function startAuthService() {
  const seen: AuthSeen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = req.body ? (await req.arrayBuffer()).byteLength : 0;
    const url = new URL(req.url);
    seen.push({
      method: req.method,
      path: url.pathname + url.search,
      headers: Object.fromEntries(req.headers),
      body,
    });
    const cookie = req.headers.get("cookie") ?? "";
    if (cookie.includes("session=alice")) {
      return new Response(null, {
        status: 200,
        headers: { "remote-user": "alice", "remote-groups": "admins,dev", "x-secret": "no" },
      });
    }
    if (cookie.includes("session=anonymous")) return new Response(null, { status: 204 });
    if (cookie.includes("session=expired")) {
      return new Response("session expired\n", {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="sso"', "x-auth-reason": "expired" },
      });
    }
    const back = encodeURIComponent(
      `${req.headers.get("x-forwarded-proto")}://${req.headers.get("x-forwarded-host")}` +
        `${req.headers.get("x-forwarded-uri")}`,
    );
    return new Response("see login\n", {
      status: 302,
      headers: { location: `https://sso.example/login?rd=${back}` },
    });
  });
  const port = (server.addr as Deno.NetAddr).port;
  return { seen, url: `http://127.0.0.1:${port}`, close: () => server.shutdown() };
}

function config(backend: string, auth: string, dead: string, staticDir: string): string {
  return `
[server]
grace_period = 1

[management]
enabled = true
port = 0

[[sites]]
name = "fa"
hostname = "app.test"
port = 0
bind = "127.0.0.1"
static_dir = "${staticDir}"

[sites.forward_auth]
url = "${auth}/verify?app=1"
copy_headers = ["Remote-User", "Remote-Groups"]

[sites.proxy]
enabled = true

[sites.proxy.timeout]
connect = 1
read = 1

[[sites.proxy.upstreams]]
name = "b"
url = "${backend}"

[[sites.proxy.routes]]
path = "/api/"
upstream = "b"

[[sites.proxy.routes]]
path = "/ws"
upstream = "b"
websocket = true

[[sites.proxy.routes]]
path = "/down/"
upstream = "b"

[sites.proxy.routes.forward_auth]
url = "${dead}/verify"
`;
}

describe("forward auth end to end", () => {
  let backend: Backend;
  let auth: ReturnType<typeof startAuthService>;
  let bws: TestBws;
  let dir: string;

  const client = Deno.createHttpClient({ allowHost: true });
  const get = (path: string, headers: Record<string, string> = {}, init: RequestInit = {}) =>
    fetch(bws.url(path), {
      ...init,
      headers: { host: "app.test", ...headers },
      redirect: "manual",
      client,
    } as RequestInit);
  const header = (s: Seen, name: string) => s.headers.filter(([n]) => n === name).map(([, v]) => v);

  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws_fauth_" });
    await Deno.writeTextFile(`${dir}/index.html`, "<h1>static</h1>\n");
    backend = startEchoBackend("b", (req) => {
      if (req.headers.get("upgrade") !== "websocket") return undefined;
      const { response, socket } = Deno.upgradeWebSocket(req);
      socket.onerror = () => {};
      return response;
    });
    auth = startAuthService();
    bws = await startBws(config(backend.url, auth.url, deadAddress(), dir));
  });
  after(async () => {
    client.close();
    await bws.close();
    await backend.close();
    await auth.close();
    await Deno.remove(dir, { recursive: true });
  });

  it("asks the service with a GET carrying the client's headers and X-Forwarded-*", async () => {
    const res = await get("/api/items?page=2", { cookie: "session=alice", "x-client": "yes" }, {
      method: "POST",
      body: "payload",
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const asked = auth.seen.at(-1)!;
    expect(asked).toMatchObject({ method: "GET", path: "/verify?app=1", body: 0 });
    expect(asked.headers).toMatchObject({
      "x-forwarded-method": "POST",
      "x-forwarded-proto": "http",
      "x-forwarded-host": "app.test",
      "x-forwarded-uri": "/api/items?page=2",
      "x-forwarded-for": "127.0.0.1",
      "x-client": "yes",
      cookie: "session=alice",
    });
  });

  it("on 200 passes the request on with copy_headers, replacing what the client sent", async () => {
    const res = await get("/api/me", {
      cookie: "session=alice",
      "remote-user": "root",
      "remote-groups": "wheel",
    });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as Seen;
    expect(header(seen, "remote-user")).toEqual(["alice"]);
    expect(header(seen, "remote-groups")).toEqual(["admins,dev"]);
    expect(header(seen, "x-secret")).toEqual([]);
    // A 2xx without the headers still removes the client's copies.
    const anon = await get("/api/anon", { cookie: "session=anonymous", "remote-user": "root" });
    expect(anon.status).toBe(200);
    expect(header((await anon.json()) as Seen, "remote-user")).toEqual([]);
  });

  it("passes a 302 to the login page and a 401 back as they are, without the upstream", async () => {
    const before = backend.seen.length;
    const login = await get("/api/private?x=1");
    expect(login.status).toBe(302);
    expect(login.headers.get("location")).toBe(
      `https://sso.example/login?rd=${encodeURIComponent("http://app.test/api/private?x=1")}`,
    );
    expect(await login.text()).toBe("see login\n");
    const expired = await get("/api/private", { cookie: "session=expired" });
    expect(expired.status).toBe(401);
    expect(expired.headers.get("www-authenticate")).toBe('Bearer realm="sso"');
    expect(expired.headers.get("x-auth-reason")).toBe("expired");
    expect(await expired.text()).toBe("session expired\n");
    expect(backend.seen.length).toBe(before);
    const entry = bws.logger.entries.find((e) => e.path === "/api/private?x=1")!;
    expect(entry).toMatchObject({ status: 302, refused: "forward_auth" });
  });

  it("answers 503 when the service cannot be reached", async () => {
    const res = await get("/down/x", { cookie: "session=alice" });
    expect(res.status).toBe(503);
    await res.body?.cancel();
    expect(bws.logger.lines.some((l) => l.includes("forward auth service unavailable"))).toBe(
      true,
    );
  });

  it("protects static files and WebSocket upgrades too", async () => {
    const anon = await get("/index.html");
    expect(anon.status).toBe(302);
    await anon.body?.cancel();
    const file = await get("/index.html", { cookie: "session=alice" });
    expect(await file.text()).toBe("<h1>static</h1>\n");

    const open = (cookie: string | null) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(bws.url("/ws").replace("http:", "ws:"), {
          headers: { host: "app.test", ...(cookie ? { cookie } : {}) },
          client,
        } as unknown as string[]);
        ws.onopen = () => {
          resolve("open");
          ws.close();
        };
        ws.onerror = () => resolve("error");
      });
    expect(await open(null)).toBe("error");
    expect(bws.logger.entries.find((e) => e.path === "/ws")?.status).toBe(302);
    expect(await open("session=alice")).toBe("open");
  });

  it("counts refusals in bws_refused_total{site,rule}", async () => {
    const addr = bws.handle.managementAddress!;
    const prom = parseProm(
      await (await fetch(`http://${addr.hostname}:${addr.port}/metrics`)).text(),
    );
    const refused = bws.logger.entries.filter((e) => e.refused === "forward_auth").length;
    expect(refused).toBeGreaterThanOrEqual(4);
    expect(prom.value("bws_refused_total", { site: "fa", rule: "forward_auth" })).toBe(refused);
  });
});
