import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, rawRequest, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { fetchHost, proxySite, startBws, type TestBws } from "./helpers/bws.ts";

function header(seen: Seen, name: string): string | undefined {
  return seen.headers.find(([n]) => n === name)?.[1];
}

describe("proxy headers (SPEC 4)", () => {
  let backend: Backend;
  let bws: TestBws;
  let trustedBws: TestBws;
  let plainBws: TestBws;

  before(async () => {
    backend = startEchoBackend("b", (req) => {
      const u = new URL(req.url);
      if (u.pathname === "/cookies") {
        const h = new Headers({ "x-backend": "b", "server": "secret/1.0", "x-powered-by": "php" });
        h.append("set-cookie", "a=1; Path=/");
        h.append("set-cookie", "b=2; Path=/; HttpOnly");
        h.set("connection", "x-internal");
        h.set("x-internal", "leak");
        h.set("keep-alive", "timeout=5");
        return new Response("ok", { headers: h });
      }
    });
    bws = await startBws(proxySite(
      [backend.url],
      `
[sites.headers]
"X-Frame-Options" = "DENY"

[sites.proxy.headers]
add_x_forwarded = true
add_forwarded = true
preserve_host = true

[sites.proxy.headers.add]
"X-Gateway" = "BWS"
"X-Request-ID" = "auto"

[sites.proxy.headers.remove]
"Server" = true
"X-Powered-By" = true
"X-Secret" = true

[sites.proxy.headers.request.add]
"X-To-Upstream" = "yes"

[sites.proxy.headers.response.add]
"X-To-Client" = "yes"

[sites.proxy.headers.response.remove]
"X-Backend-Only" = true
`,
    ));
    trustedBws = await startBws(
      proxySite([backend.url], "", undefined, `trusted_proxies = ["127.0.0.0/8"]`),
    );
    plainBws = await startBws(proxySite(
      [backend.url],
      `
[sites.proxy.headers]
preserve_host = false
add_forwarded = false

[sites.proxy.headers.add]
"X-Twice" = "both"

[sites.proxy.headers.request.add]
"X-Forwarded-Proto" = "https"
"X-Twice" = "request"
`,
    ));
  });

  after(async () => {
    await Promise.all([bws.close(), trustedBws.close(), plainBws.close()]);
    await backend.close();
  });

  async function seenVia(
    b: TestBws,
    headers: Record<string, string>,
    path = "/x",
  ): Promise<[Response, Seen]> {
    const { host = "localhost", ...rest } = headers;
    const res = await fetchHost(b.url(path), host, { headers: rest });
    return [res, await res.json() as Seen];
  }

  it("replaces X-Forwarded-* and Forwarded from an untrusted peer", async () => {
    const [, seen] = await seenVia(bws, {
      host: "example.com:8080",
      "x-forwarded-for": "6.6.6.6",
      "x-forwarded-host": "evil",
      forwarded: "for=6.6.6.6",
    });
    expect(header(seen, "x-forwarded-for")).toBe("127.0.0.1");
    expect(header(seen, "x-forwarded-proto")).toBe("http");
    expect(header(seen, "x-forwarded-host")).toBe("example.com:8080");
    expect(header(seen, "forwarded")).toBe('for=127.0.0.1;proto=http;host="example.com:8080"');
    expect(header(seen, "host")).toBe("example.com:8080");
  });

  it("extends X-Forwarded-For and Forwarded from a trusted peer", async () => {
    const [, seen] = await seenVia(trustedBws, {
      host: "example.com",
      "x-forwarded-for": "203.0.113.9",
      forwarded: "for=203.0.113.9",
      "x-forwarded-proto": "https",
    });
    expect(header(seen, "x-forwarded-for")).toBe("203.0.113.9, 127.0.0.1");
    expect(header(seen, "forwarded")).toBe(
      "for=203.0.113.9, for=127.0.0.1;proto=http;host=example.com",
    );
    expect(header(seen, "x-forwarded-proto")).toBe("https");
  });

  /** The echo backend's view of each of `requests` sent on one connection (pipelined). */
  async function seenOnOneConnection(b: TestBws, requests: string[]): Promise<Seen[]> {
    const raw = await rawRequest(b.port, requests.join(""));
    const seen: Seen[] = [];
    let at = 0;
    while (at < raw.length) {
      const end = raw.indexOf("\r\n\r\n", at);
      const length = Number(/content-length: (\d+)/i.exec(raw.slice(at, end))![1]);
      seen.push(JSON.parse(raw.slice(end + 4, end + 4 + length)));
      at = end + 4 + length;
    }
    return seen;
  }

  it("sends each request on a kept-alive connection its own Host and forwarding headers", async () => {
    const get = (host: string, extra = "", last = false) =>
      `GET /x HTTP/1.1\r\nHost: ${host}\r\n${extra}${last ? "Connection: close\r\n" : ""}\r\n`;
    const seen = await seenOnOneConnection(bws, [
      get("a.example"),
      get("b.example:8080"),
      get("a.example", "", true),
    ]);
    expect(seen.map((s) => header(s, "host"))).toEqual([
      "a.example",
      "b.example:8080",
      "a.example",
    ]);
    expect(seen.map((s) => header(s, "x-forwarded-host"))).toEqual([
      "a.example",
      "b.example:8080",
      "a.example",
    ]);
    expect(seen.map((s) => header(s, "forwarded"))).toEqual([
      "for=127.0.0.1;proto=http;host=a.example",
      'for=127.0.0.1;proto=http;host="b.example:8080"',
      "for=127.0.0.1;proto=http;host=a.example",
    ]);
    // Behind a trusted proxy, one request's incoming chain never shows in the next one's.
    const chained = await seenOnOneConnection(trustedBws, [
      get("a.example"),
      get("a.example", "X-Forwarded-For: 203.0.113.9\r\nForwarded: for=203.0.113.9\r\n"),
      get("a.example", "", true),
    ]);
    expect(chained.map((s) => header(s, "x-forwarded-for"))).toEqual([
      "127.0.0.1",
      "203.0.113.9, 127.0.0.1",
      "127.0.0.1",
    ]);
    expect(chained.map((s) => header(s, "forwarded"))).toEqual([
      "for=127.0.0.1;proto=http;host=a.example",
      "for=203.0.113.9, for=127.0.0.1;proto=http;host=a.example",
      "for=127.0.0.1;proto=http;host=a.example",
    ]);
  });

  it("lets a configured request header replace the proxy's own and the client's", async () => {
    const [, seen] = await seenVia(plainBws, {
      host: "example.com",
      "x-forwarded-proto": "ftp",
      "x-twice": "client",
    });
    const named = (name: string) => seen.headers.filter(([n]) => n === name).map(([, v]) => v);
    expect(named("x-forwarded-proto")).toEqual(["https"]);
    expect(named("x-twice")).toEqual(["request"]);
    expect(named("x-forwarded-for")).toEqual(["127.0.0.1"]);
  });

  it("sends the upstream's host when preserve_host is false", async () => {
    const [, seen] = await seenVia(plainBws, { host: "example.com" });
    expect(header(seen, "host")).toBe(`127.0.0.1:${backend.port}`);
    expect(header(seen, "forwarded")).toBe(undefined);
  });

  it("names the upstream as Host for an HTTP/1.0 request that has none", async () => {
    const raw = await rawRequest(bws.port, "GET /x HTTP/1.0\r\n\r\n");
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    const seen = JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)) as Seen;
    expect(header(seen, "host")).toBe(`127.0.0.1:${backend.port}`);
    expect(header(seen, "x-forwarded-host")).toBe(undefined);
    expect(header(seen, "forwarded")).toBe("for=127.0.0.1;proto=http");
  });

  it("drops hop-by-hop and Connection-named headers but not its own forwarding headers", async () => {
    const raw = await rawRequest(
      bws.port,
      "GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close, X-Drop-Me, X-Forwarded-For, Forwarded\r\n" +
        "X-Drop-Me: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n" +
        "Upgrade: h2c\r\nX-Keep: 1\r\n\r\n",
    );
    const seen = JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)) as Seen;
    const names = seen.headers.map(([n]) => n);
    for (const gone of ["x-drop-me", "keep-alive", "te", "proxy-authorization", "upgrade"]) {
      expect(names).not.toContain(gone);
    }
    expect(header(seen, "x-keep")).toBe("1");
    expect(header(seen, "x-forwarded-for")).toBe("127.0.0.1");
    expect(header(seen, "forwarded")).toContain("for=127.0.0.1");
  });

  it("applies add/remove in both directions and the direction-specific tables", async () => {
    const [res, seen] = await seenVia(bws, { host: "localhost", "x-secret": "s" });
    expect(header(seen, "x-gateway")).toBe("BWS");
    expect(header(seen, "x-to-upstream")).toBe("yes");
    expect(header(seen, "x-to-client")).toBe(undefined);
    expect(header(seen, "x-secret")).toBe(undefined);
    expect(res.headers.get("x-gateway")).toBe("BWS");
    expect(res.headers.get("x-to-client")).toBe("yes");
    expect(res.headers.get("x-to-upstream")).toBe(null);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
  });

  it("keeps a well-formed X-Request-ID and replaces a malformed one", async () => {
    const [res, seen] = await seenVia(bws, { host: "localhost", "x-request-id": "abc-123" });
    expect(header(seen, "x-request-id")).toBe("abc-123");
    expect(res.headers.get("x-request-id")).toBe("abc-123");
    const [res2, seen2] = await seenVia(bws, {
      host: "localhost",
      "x-request-id": "bad id <script>",
    });
    const id = header(seen2, "x-request-id")!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res2.headers.get("x-request-id")).toBe(id);
  });

  it("removes headers from responses, keeps multiple Set-Cookie separate, drops hop-by-hop", async () => {
    const res = await fetch(bws.url("/cookies"));
    expect(await res.text()).toBe("ok");
    expect(res.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/; HttpOnly"]);
    expect(res.headers.get("server")).toBe(null);
    expect(res.headers.get("x-powered-by")).toBe(null);
    expect(res.headers.get("x-internal")).toBe(null);
    expect(res.headers.get("keep-alive")).toBe(null);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
  });
});
