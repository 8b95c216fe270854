/**
 * `[sites.access]` (SPEC 10) against a running bws with real clients connecting from chosen
 * loopback addresses (127.0.0.0/8 is all local) and from ::1: exact addresses and CIDRs, IPv4
 * and IPv6, deny winning over allow; X-Forwarded-For deciding only when the peer is trusted; a
 * route's table replacing the site's; static files and WebSocket upgrades refused like proxied
 * requests, before any upstream; the access log and `bws_refused_total{site,rule}` naming the
 * rule.
 */

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { parseProm } from "./helpers/prom_parse.ts";
import { getRequest, rawExchange } from "./helpers/raw_client.ts";

const WS_UPGRADE = [
  "Upgrade: websocket",
  "Connection: Upgrade",
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
  "Sec-WebSocket-Version: 13",
];

function config(backend: string, staticDir: string): string {
  const routes = (path: string, extra = "") => `
[[sites.proxy.routes]]
path = "${path}"
upstream = "b"
${extra}`;
  return `
[server]
grace_period = 1
trusted_proxies = ["127.0.0.1"]

[management]
enabled = true
port = 0

[[sites]]
name = "v4"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${staticDir}"

[sites.access]
allow = ["127.0.0.0/29", "198.51.100.0/24", "2001:db8:1::/48"]
deny = ["127.0.0.3", "198.51.100.9", "2001:db8:1::bad"]

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend}"
${routes("/api/")}
${
    routes(
      "/admin/",
      `
[sites.proxy.routes.access]
allow = ["127.0.0.3", "127.0.0.4"]`,
    )
  }
${routes("/ws", "websocket = true")}

[[sites]]
name = "v6"
hostname = "localhost"
port = 0
bind = "::1"

[sites.access]
allow = ["::1"]

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend}"
${routes("/api/")}
${
    routes(
      "/v6-cidr-deny/",
      `
[sites.proxy.routes.access]
deny = ["::/64"]`,
    )
  }
`;
}

describe("access lists end to end", () => {
  let backend: Backend;
  let bws: TestBws;
  let dir: string;
  let v4: number;
  let v6: number;

  /** Status of one request from `from` (a loopback address) to the v4 site. */
  const status = async (path: string, from: string, extra: string[] = []) => {
    const r = await rawExchange({
      port: v4,
      localAddress: from,
      data: getRequest(path, "localhost", extra),
    });
    return r.responses[0]?.status;
  };
  const backendSaw = (path: string) => backend.seen.some((s) => s.path === path);

  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws_access_" });
    await Deno.writeTextFile(`${dir}/index.html`, "<h1>static</h1>\n");
    backend = startEchoBackend("b", (req) => {
      if (req.headers.get("upgrade") !== "websocket") return undefined;
      const { response, socket } = Deno.upgradeWebSocket(req);
      socket.onerror = () => {};
      return response;
    });
    bws = await startBws(config(backend.url, dir));
    v4 = bws.handle.addresses.find((a) => a.hostname === "127.0.0.1")!.port;
    v6 = bws.handle.addresses.find((a) => a.hostname === "::1")!.port;
  });
  after(async () => {
    await bws.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  });

  it("admits IPv4 peers by CIDR, refuses an exact deny (deny wins) and everyone outside allow", async () => {
    expect(await status("/api/a", "127.0.0.1")).toBe(200);
    expect(await status("/api/b", "127.0.0.5")).toBe(200);
    expect(await status("/api/denied", "127.0.0.3")).toBe(403);
    expect(await status("/api/outside", "127.0.0.9")).toBe(403);
    expect(backendSaw("/api/denied")).toBe(false);
    expect(backendSaw("/api/outside")).toBe(false);
    const entry = bws.logger.entries.find((e) => e.path === "/api/outside")!;
    expect(entry).toMatchObject({ client: "127.0.0.9", status: 403, refused: "access" });
  });

  it("admits ::1 by exact address and refuses it by an IPv6 CIDR", async () => {
    const ok = await rawExchange({ host: "::1", port: v6, data: getRequest("/api/v6") });
    expect(ok.responses[0]?.status).toBe(200);
    const denied = await rawExchange({
      host: "::1",
      port: v6,
      data: getRequest("/v6-cidr-deny/x"),
    });
    expect(denied.responses[0]?.status).toBe(403);
    expect(bws.logger.entries.find((e) => e.path === "/v6-cidr-deny/x")?.client).toBe("::1");
  });

  it("judges X-Forwarded-For from a trusted peer, IPv4 and IPv6", async () => {
    const via = (addr: string) =>
      status(`/api/xff?${addr}`, "127.0.0.1", [`X-Forwarded-For: ${addr}`]);
    expect(await via("198.51.100.20")).toBe(200);
    expect(await via("198.51.100.9")).toBe(403);
    expect(await via("203.0.113.5")).toBe(403);
    expect(await via("2001:db8:1::5")).toBe(200);
    expect(await via("2001:db8:1::bad")).toBe(403);
    expect(await via("2001:db8:2::1")).toBe(403);
    // The rightmost untrusted hop decides: the client can prepend what it likes.
    expect(
      await status("/api/xff-chain", "127.0.0.1", ["X-Forwarded-For: 198.51.100.20, 203.0.113.5"]),
    )
      .toBe(403);
    expect(bws.logger.entries.find((e) => e.path === "/api/xff?198.51.100.9")?.client).toBe(
      "198.51.100.9",
    );
  });

  it("ignores X-Forwarded-For from an untrusted peer", async () => {
    // 127.0.0.2 is allowed: a header naming a denied address changes nothing.
    expect(await status("/api/spoof-1", "127.0.0.2", ["X-Forwarded-For: 127.0.0.3"])).toBe(200);
    // 127.0.0.9 is outside allow: a header naming an allowed address does not let it in.
    expect(await status("/api/spoof-2", "127.0.0.9", ["X-Forwarded-For: 198.51.100.20"])).toBe(
      403,
    );
    expect(bws.logger.entries.find((e) => e.path === "/api/spoof-2")?.client).toBe("127.0.0.9");
  });

  it("lets a route's table replace the site's", async () => {
    // Denied site-wide, allowed on /admin/; allowed site-wide, not on /admin/.
    expect(await status("/admin/x", "127.0.0.3")).toBe(200);
    expect(await status("/admin/x", "127.0.0.2")).toBe(403);
    expect(await status("/api/x", "127.0.0.3")).toBe(403);
  });

  it("protects static files and WebSocket upgrades too", async () => {
    const file = await rawExchange({
      port: v4,
      localAddress: "127.0.0.2",
      data: getRequest("/index.html"),
    });
    expect(file.responses[0]).toMatchObject({ status: 200, body: "<h1>static</h1>\n" });
    expect(await status("/index.html", "127.0.0.9")).toBe(403);

    const wsOk = await rawExchange({
      port: v4,
      localAddress: "127.0.0.2",
      data: getRequest("/ws", "localhost", WS_UPGRADE),
    });
    expect(wsOk.responses[0]?.status).toBe(101);
    const before = backend.seen.length;
    const wsDenied = await rawExchange({
      port: v4,
      localAddress: "127.0.0.9",
      data: getRequest("/ws", "localhost", WS_UPGRADE),
    });
    expect(wsDenied.responses[0]?.status).toBe(403);
    expect(backend.seen.length).toBe(before);
  });

  it("counts refusals in bws_refused_total{site,rule}", async () => {
    const refused = bws.logger.entries.filter((e) => e.site === "v4" && e.refused === "access");
    const addr = bws.handle.managementAddress!;
    const res = await fetch(`http://${addr.hostname}:${addr.port}/metrics`);
    const prom = parseProm(await res.text());
    expect(refused.length).toBeGreaterThan(5);
    expect(prom.value("bws_refused_total", { site: "v4", rule: "access" })).toBe(refused.length);
    expect(prom.value("bws_refused_total", { site: "v6", rule: "access" })).toBe(1);
  });
});
