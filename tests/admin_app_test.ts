import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { createAdminApp, METRICS_CONTENT_TYPE, serveAdmin } from "../src/admin/app.ts";
import type { AdminRuntime } from "../src/admin/types.ts";
import { Metrics } from "../src/admin/metrics.ts";
import { isLoopbackHost } from "../src/admin/loopback.ts";
import type { ManagementConfig } from "../src/config/types.ts";
import type { ReloadResult } from "../src/server/types.ts";
import { parseProm } from "./helpers/prom_parse.ts";

function mgmt(over: Partial<ManagementConfig> = {}): ManagementConfig {
  return { enabled: true, host: "127.0.0.1", port: 7654, apiKey: "", ...over };
}

function runtime(results: ReloadResult[] = [{ ok: true, generation: 2 }]) {
  const metrics = new Metrics();
  let reloads = 0;
  const rt: AdminRuntime & { reloads(): number } = {
    status: () => ({ generation: 1, sites: [{ name: "main" }] }),
    metricsText: () => metrics.render([]),
    reload: () => Promise.resolve(results[Math.min(reloads++, results.length - 1)]),
    reloads: () => reloads,
  };
  return { rt, metrics };
}

describe("createAdminApp routing", () => {
  const { rt, metrics } = runtime();
  const app = createAdminApp(mgmt(), rt);

  it("GET /health answers {status: ok} as JSON", async () => {
    const res = await app.request("/health");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("GET /api/status returns runtime.status() with certificates and lastReload", async () => {
    const res = await app.request("/api/status");
    expect(await res.json()).toEqual({
      generation: 1,
      sites: [{ name: "main" }],
      certificates: [],
      lastReload: null,
    });
  });

  it("GET /metrics is Prometheus text that parses", async () => {
    metrics.recordRequest("main", "/api", 200, 0.01, 0, 10);
    const res = await app.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(METRICS_CONTENT_TYPE);
    const p = parseProm(await res.text());
    expect(p.value("bws_requests_total", { site: "main", route: "/api", code: "2xx" })).toBe(1);
  });

  it("HEAD on a GET route answers without a body", async () => {
    const res = await app.request("/health", { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });

  it("unknown route → 404 JSON; wrong method → 405 JSON with Allow", async () => {
    const nf = await app.request("/nope");
    expect(nf.status).toBe(404);
    expect(await nf.json()).toMatchObject({ status: 404 });
    const wm = await app.request("/api/config/reload");
    expect(wm.status).toBe(405);
    expect(wm.headers.get("allow")).toBe("POST");
    expect(await wm.json()).toMatchObject({ status: 405 });
    const wm2 = await app.request("/metrics", { method: "DELETE" });
    expect(wm2.status).toBe(405);
    expect(wm2.headers.get("allow")).toBe("GET, HEAD");
  });
});

describe("POST /api/config/reload", () => {
  it("200 {ok, generation} on success", async () => {
    const app = createAdminApp(mgmt(), runtime([{ ok: true, generation: 7 }]).rt);
    const res = await app.request("/api/config/reload", { method: "POST" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, generation: 7 });
  });

  it("400 with every error (path, message, line, column) when the config is invalid", async () => {
    const app = createAdminApp(
      mgmt(),
      runtime([{
        ok: false,
        errors: [
          { path: "sites[0].proxy.routes[0].upstream", message: 'unknown group "ap"', line: 12 },
          { path: "", message: "bad TOML", line: 3, column: 7 },
        ],
      }]).rt,
    );
    const res = await app.request("/api/config/reload", { method: "POST" });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      ok: false,
      errors: [
        {
          path: "sites[0].proxy.routes[0].upstream",
          message: 'unknown group "ap"',
          line: 12,
          column: null,
        },
        { path: "", message: "bad TOML", line: 3, column: 7 },
      ],
    });
  });

  it("500 JSON when reload throws", async () => {
    const rt: AdminRuntime = {
      status: () => ({}),
      metricsText: () => "",
      reload: () => Promise.reject(new Error("disk gone")),
    };
    const res = await createAdminApp(mgmt(), rt).request("/api/config/reload", {
      method: "POST",
    });
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.ok).toBe(false);
    expect(body.errors[0].message).toContain("disk gone");
  });

  it("runs concurrent reloads one after another", async () => {
    let active = 0;
    let maxActive = 0;
    let gen = 1;
    const rt: AdminRuntime = {
      status: () => ({}),
      metricsText: () => "",
      reload: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 10));
        active--;
        return { ok: true, generation: ++gen };
      },
    };
    const app = createAdminApp(mgmt(), rt);
    const all = await Promise.all(
      [1, 2, 3].map(() => app.request("/api/config/reload", { method: "POST" })),
    );
    const gens = await Promise.all(all.map(async (r) => (await r.json()).generation));
    expect(maxActive).toBe(1);
    expect(gens.sort()).toEqual([2, 3, 4]);
  });
});

describe("X-API-Key", () => {
  const { rt } = runtime();
  const app = createAdminApp(mgmt({ apiKey: "s3cret-key" }), rt);

  it("rejects a missing or wrong key with 401 JSON, on every route", async () => {
    for (const [path, method] of [["/health", "GET"], ["/metrics", "GET"], ["/nope", "GET"]]) {
      const res = await app.request(path, { method });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ status: 401 });
    }
    for (const key of ["s3cret-kez", "s3cret-key2", "", "s3cret"]) {
      const res = await app.request("/health", { headers: { "X-API-Key": key } });
      expect(res.status).toBe(401);
      await res.body?.cancel();
    }
  });

  it("does not run a reload without the key", async () => {
    const before = rt.reloads();
    const res = await app.request("/api/config/reload", { method: "POST" });
    expect(res.status).toBe(401);
    expect(rt.reloads()).toBe(before);
  });

  it("accepts the right key", async () => {
    const res = await app.request("/api/status", { headers: { "X-API-Key": "s3cret-key" } });
    expect(res.status).toBe(200);
    const post = await app.request("/api/config/reload", {
      method: "POST",
      headers: { "x-api-key": "s3cret-key" },
    });
    expect(await post.json()).toEqual({ ok: true, generation: 2 });
  });
});

describe("serveAdmin on a real socket", () => {
  const { rt, metrics } = runtime([{ ok: true, generation: 9 }]);
  let server: ReturnType<typeof serveAdmin>;
  let base = "";
  before(() => {
    server = serveAdmin(mgmt({ apiKey: "k" }), rt, { port: 0 });
    base = `http://127.0.0.1:${server.addr.port}`;
  });
  after(async () => {
    await server.shutdown();
  });

  it("binds an ephemeral loopback port", () => {
    expect(server.addr.hostname).toBe("127.0.0.1");
    expect(server.addr.port).toBeGreaterThan(0);
  });

  it("serves health, metrics and reload through fetch", async () => {
    const h = { "X-API-Key": "k" };
    const health = await fetch(`${base}/health`, { headers: h });
    expect(await health.json()).toEqual({ status: "ok" });
    metrics.recordRequest("main", "", 200, 0.2, 0, 0);
    metrics.recordRequest("main", "", 502, 0.3, 0, 0);
    const text = await (await fetch(`${base}/metrics`, { headers: h })).text();
    const p = parseProm(text);
    expect(p.value("bws_request_duration_seconds_count", { site: "main" })).toBe(2);
    const reload = await fetch(`${base}/api/config/reload`, { method: "POST", headers: h });
    expect(await reload.json()).toEqual({ ok: true, generation: 9 });
    const denied = await fetch(`${base}/health`);
    expect(denied.status).toBe(401);
    await denied.body?.cancel();
  });

  it("answers curl the same way", async () => {
    const out = await new Deno.Command("curl", {
      args: ["-s", "-H", "X-API-Key: k", "-w", "\n%{http_code}", `${base}/api/status`],
      stdout: "piped",
    }).output();
    const [body, code] = new TextDecoder().decode(out.stdout).split("\n");
    expect(code).toBe("200");
    expect(JSON.parse(body)).toMatchObject({ generation: 1, sites: [{ name: "main" }] });
  });

  it("fails clearly when the port is taken", () => {
    expect(() => serveAdmin(mgmt(), rt, { port: server.addr.port })).toThrow(
      `Cannot listen on "127.0.0.1:${server.addr.port}" for the management API`,
    );
  });
});

/** One raw request to the management port; its status and body. */
async function rawAdmin(port: number, request: string): Promise<[number, string]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    let text = "";
    const buf = new Uint8Array(16 * 1024);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return [Number(text.slice(9, 12)), text.slice(text.indexOf("\r\n\r\n") + 4)];
  } finally {
    conn.close();
  }
}

describe("serveAdmin without an api_key against web pages the operator visits", () => {
  const { rt } = runtime([{ ok: true, generation: 3 }]);
  let server: ReturnType<typeof serveAdmin>;
  before(() => {
    server = serveAdmin(mgmt(), rt, { port: 0 });
  });
  after(async () => {
    await server.shutdown();
  });
  const req = (method: string, path: string, headers: string) =>
    `${method} ${path} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`;

  it("refuses a Host that is not loopback (DNS rebinding) and a cross-site Origin (CSRF)", async () => {
    const port = server.addr.port;
    const before = rt.reloads();
    // A page on attacker.example whose name now resolves to 127.0.0.1 reads the status...
    const [rebound, body] = await rawAdmin(
      port,
      req("GET", "/api/status", `Host: attacker.example:${port}\r\n`),
    );
    expect(rebound).toBe(403);
    expect(body).not.toContain("main");
    // ... or a form on any site posts a reload.
    const [csrf] = await rawAdmin(
      port,
      req(
        "POST",
        "/api/config/reload",
        `Host: 127.0.0.1:${port}\r\nOrigin: https://attacker.example\r\nContent-Length: 0\r\n`,
      ),
    );
    expect(csrf).toBe(403);
    const [opaque] = await rawAdmin(
      port,
      req("POST", "/api/config/reload", `Host: localhost\r\nOrigin: null\r\nContent-Length: 0\r\n`),
    );
    expect(opaque).toBe(403);
    expect(rt.reloads()).toBe(before);
  });

  it("serves loopback names, the dashboard's own origin, and clients without Origin", async () => {
    const port = server.addr.port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, "localhost"]) {
      const [status] = await rawAdmin(port, req("GET", "/api/status", `Host: ${host}\r\n`));
      expect({ host, status }).toEqual({ host, status: 200 });
    }
    const [own, body] = await rawAdmin(
      port,
      req(
        "POST",
        "/api/config/reload",
        `Host: localhost:${port}\r\nOrigin: http://localhost:${port}\r\nContent-Length: 0\r\n`,
      ),
    );
    expect(own).toBe(200);
    expect(body).toContain('"generation":3');
    const [http10] = await rawAdmin(port, "GET /health HTTP/1.0\r\n\r\n");
    expect(http10).toBe(200);
  });
});

describe("isLoopbackHost (serveAdmin's peer filter)", () => {
  it("accepts loopback spellings and rejects everything else", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"]) {
      expect(isLoopbackHost(h)).toBe(true);
    }
    for (
      const h of ["0.0.0.0", "10.0.0.1", "::", "128.0.0.1", "127.0.0.1.evil", "::ffff:10.0.0.1"]
    ) {
      expect(isLoopbackHost(h)).toBe(false);
    }
  });
});
