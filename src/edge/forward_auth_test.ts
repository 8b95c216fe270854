import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import type { ForwardAuthConfig } from "../config/types.ts";
import type { BodySource, HttpResponse } from "../http1/types.ts";
import { UpstreamClient } from "../upstream/client.ts";
import { ForwardAuth } from "./forward_auth.ts";
import { testRequest } from "../../tests/helpers/test_request.ts";
import type { EdgeRefusal } from "./types.ts";

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

const TIMEOUTS = { connectMs: 1000, readMs: 1000, writeMs: 1000 };

async function bodyText(res: HttpResponse): Promise<string> {
  const b = res.body;
  if (b === null) return "";
  if (b instanceof Uint8Array) return new TextDecoder().decode(b);
  const parts: Uint8Array[] = [];
  for (let c = await (b as BodySource).read(); c !== null; c = await (b as BodySource).read()) {
    parts.push(c.slice());
  }
  return new TextDecoder().decode(new Uint8Array(parts.flatMap((p) => [...p])));
}

describe("ForwardAuth against an auth service", () => {
  let server: Deno.HttpServer<Deno.NetAddr>;
  let base = "";
  const seen: Seen[] = [];
  const client = new UpstreamClient();

  before(() => {
    server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
      const url = new URL(req.url);
      seen.push({
        method: req.method,
        url: url.pathname + url.search,
        headers: Object.fromEntries(req.headers),
        body: await req.text(),
      });
      const user = req.headers.get("cookie")?.match(/session=(\w+)/)?.[1];
      if (url.pathname === "/slow") {
        await new Promise((r) => setTimeout(r, 1200));
        return new Response("late");
      }
      if (url.pathname === "/big") {
        // A streamed (chunked) denial body.
        return new Response("x".repeat(200_000), { status: 403, headers: { "x-why": "big" } });
      }
      if (user === "alice") {
        return new Response("ok", {
          headers: { "remote-user": "alice", "remote-groups": "admins", "x-other": "no" },
        });
      }
      if (req.headers.get("authorization") === "Bearer bad") {
        return new Response("bad token", {
          status: 401,
          headers: { "www-authenticate": 'Bearer error="invalid_token"' },
        });
      }
      const rd = encodeURIComponent(
        `${req.headers.get("x-forwarded-proto")}://${req.headers.get("x-forwarded-host")}` +
          req.headers.get("x-forwarded-uri"),
      );
      const headers = new Headers({ location: `https://login.example/?rd=${rd}` });
      headers.append("set-cookie", "a=1");
      headers.append("set-cookie", "b=2");
      return new Response("to login", { status: 302, headers });
    });
    base = `http://127.0.0.1:${server.addr.port}`;
  });
  after(async () => {
    client.close();
    await server.shutdown();
  });

  const auth = (path: string, copy: string[] = ["Remote-User", "Remote-Groups"]) => {
    const config: ForwardAuthConfig = { url: base + path, copyHeaders: copy };
    return new ForwardAuth(config, { client, timeouts: TIMEOUTS });
  };

  it("200: passes, copying copy_headers from the answer and dropping the client's own", async () => {
    const req = testRequest({
      method: "POST",
      target: "/admin/users?page=2",
      host: "app.example.com",
      tls: true,
      headers: [
        ["Cookie", "session=alice"],
        ["Remote-User", "root"], // spoofed by the client
        ["X-Forwarded-For", "1.2.3.4"], // spoofed too
        ["Content-Length", "5"],
        ["Connection", "keep-alive, x-hop"],
        ["X-Hop", "1"],
      ],
    });
    const v = await auth("/api/verify?x=1").check(req, "203.0.113.7");
    expect(v).toEqual({
      refused: false,
      removeHeaders: ["remote-user", "remote-groups"],
      addHeaders: [["Remote-User", "alice"], ["Remote-Groups", "admins"]],
    });
    const s = seen.at(-1)!;
    expect(s.method).toBe("GET");
    expect(s.url).toBe("/api/verify?x=1");
    expect(s.body).toBe("");
    expect(s.headers["x-forwarded-method"]).toBe("POST");
    expect(s.headers["x-forwarded-proto"]).toBe("https");
    expect(s.headers["x-forwarded-host"]).toBe("app.example.com");
    expect(s.headers["x-forwarded-uri"]).toBe("/admin/users?page=2");
    expect(s.headers["x-forwarded-for"]).toBe("203.0.113.7");
    expect(s.headers["cookie"]).toBe("session=alice");
    expect(s.headers["host"]).toBe(new URL(base).host);
    expect(s.headers["content-length"]).toBeUndefined();
    expect(s.headers["x-hop"]).toBeUndefined();
  });

  it("200 without copy_headers: passes unchanged", async () => {
    const req = testRequest({ headers: [["cookie", "session=alice"]] });
    expect(await auth("/verify", []).check(req, "127.0.0.1")).toBeNull();
  });

  it("302 to a login page goes back to the client as it is", async () => {
    const req = testRequest({ target: "/app?q=1", host: "app.example.com" });
    const v = (await auth("/verify").check(req, "127.0.0.1")) as EdgeRefusal;
    expect(v.refused).toBe(true);
    expect(v.rule).toBe("forward_auth");
    expect(v.response.status).toBe(302);
    const h = v.response.headers;
    expect(h.find(([n]) => n === "location")?.[1]).toBe(
      "https://login.example/?rd=" + encodeURIComponent("http://app.example.com/app?q=1"),
    );
    expect(h.filter(([n]) => n === "set-cookie").map(([, v]) => v)).toEqual(["a=1", "b=2"]);
    expect(h.some(([n]) => n === "content-length" || n === "connection")).toBe(false);
    expect(await bodyText(v.response)).toBe("to login");
  });

  it("401 with its challenge goes back as it is", async () => {
    const req = testRequest({ headers: [["authorization", "Bearer bad"]] });
    const v = (await auth("/verify").check(req, "127.0.0.1")) as EdgeRefusal;
    expect(v.response.status).toBe(401);
    expect(Object.fromEntries(v.response.headers)["www-authenticate"]).toBe(
      'Bearer error="invalid_token"',
    );
    expect(await bodyText(v.response)).toBe("bad token");
  });

  it("a large denial body streams through", async () => {
    const v = (await auth("/big").check(testRequest(), "127.0.0.1")) as EdgeRefusal;
    expect(v.response.status).toBe(403);
    expect(Object.fromEntries(v.response.headers)["x-why"]).toBe("big");
    expect((await bodyText(v.response)).length).toBe(200_000);
  });

  it("never caches: every request asks the service", async () => {
    const before = seen.length;
    const req = testRequest({ headers: [["cookie", "session=alice"]] });
    for (let i = 0; i < 3; i++) await auth("/verify").check(req, "127.0.0.1");
    expect(seen.length - before).toBe(3);
  });

  it("503 when the service is unreachable or too slow", async () => {
    const errors: unknown[] = [];
    const probe = await Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const deadPort = probe.addr.port;
    probe.close();
    const dead = new ForwardAuth(
      { url: `http://127.0.0.1:${deadPort}/verify`, copyHeaders: [] },
      { client, timeouts: TIMEOUTS, onError: (e) => errors.push(e) },
    );
    const v = (await dead.check(testRequest(), "127.0.0.1")) as EdgeRefusal;
    expect(v.rule).toBe("forward_auth");
    expect(v.response.status).toBe(503);
    expect(errors).toHaveLength(1);

    const slow = new ForwardAuth({ url: base + "/slow", copyHeaders: [] }, {
      client,
      timeouts: { connectMs: 1000, readMs: 200, writeMs: 1000 },
    });
    const t0 = performance.now();
    const s = (await slow.check(testRequest(), "127.0.0.1")) as EdgeRefusal;
    expect(s.response.status).toBe(503);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
