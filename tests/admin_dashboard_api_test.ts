/**
 * The management API behind the dashboard: `GET /` (the page, served without the key, with a
 * CSP that admits exactly its inline script and style), `GET /api/stats` and what
 * `/api/status` adds (certificates, last reload, passive ejection), first on the Hono app, then
 * against a real bws with real backends and certificates.
 */

import { after, before, describe, it } from "node:test";
import { createHash } from "node:crypto";
import { expect } from "expect";
import { createAdminApp } from "../src/admin/app.ts";
import { Metrics } from "../src/admin/metrics.ts";
import type { AdminRuntime, CertificateInfo } from "../src/admin/types.ts";
import type { ManagementConfig } from "../src/config/types.ts";
import { loadConfigFile } from "../src/config/load.ts";
import { startServer } from "../src/server/server.ts";
import type { ServerHandle } from "../src/server/types.ts";
import { sslToml, TestPki } from "./helpers/test_pki.ts";
import { memoryLogger } from "./helpers/memory_logger.ts";
import { type Backend, deadAddress, startEchoBackend } from "./helpers/backends.ts";

function mgmt(apiKey = ""): ManagementConfig {
  return { enabled: true, host: "127.0.0.1", port: 7654, apiKey };
}

function runtime(metrics: Metrics, certificates: CertificateInfo[] = []): AdminRuntime {
  return {
    status: () => ({ generation: 3 }),
    metricsText: () => "",
    reload: () => Promise.resolve({ ok: true, generation: 4 }),
    stats: (w, s) => metrics.stats(w, s),
    certificates: () => certificates,
    lastReload: () => metrics.lastReload(),
  };
}

function sha256(text: string): string {
  return `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
}

describe("GET / (the dashboard page)", () => {
  const keyed = createAdminApp(mgmt("k3y"), runtime(new Metrics()));
  const open = createAdminApp(mgmt(), runtime(new Metrics()));

  it("is served without the key, as HTML that says a key is required", async () => {
    const res = await keyed.request("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('<meta name="bws-api-key" content="required">');
    expect(html).not.toContain("k3y");
    const plain = await (await open.request("/")).text();
    expect(plain).toContain('<meta name="bws-api-key" content="none">');
  });

  it("is self-contained: no external script, style, image or font", async () => {
    const html = await (await open.request("/")).text();
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+stylesheet/i);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html).not.toMatch(/@import|url\(/);
  });

  it("has a CSP that admits exactly its inline script and style", async () => {
    const res = await open.request("/");
    const html = await res.text();
    const csp = res.headers.get("content-security-policy") ?? "";
    const script = html.match(/<script>([\s\S]*?)<\/script>/)![1];
    const style = html.match(/<style>([\s\S]*?)<\/style>/)![1];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`script-src ${sha256(script)}`);
    expect(csp).toContain(`style-src ${sha256(style)}`);
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("answers HEAD without the key, but no other method and no other path", async () => {
    const head = await keyed.request("/", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    const post = await keyed.request("/", { method: "POST" });
    expect(post.status).toBe(401);
    await post.body?.cancel();
    for (const path of ["/index.html", "/api/stats", "//"]) {
      const res = await keyed.request(path);
      expect(res.status).toBe(401);
      await res.body?.cancel();
    }
    const wrong = await open.request("/", { method: "DELETE" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, HEAD");
  });
});

describe("GET /api/stats on the app", () => {
  const metrics = new Metrics();
  const app = createAdminApp(mgmt(), runtime(metrics));

  it("defaults to 900 one-second points", async () => {
    const res = await app.request("/api/stats");
    expect(res.status).toBe(200);
    const doc = await res.json();
    expect(doc.windowSeconds).toBe(900);
    expect(doc.stepSeconds).toBe(1);
    expect(doc.requestsPerSecond.length).toBe(900);
    expect(Object.keys(doc.responses)).toEqual(["1xx", "2xx", "3xx", "4xx", "5xx", "other"]);
    expect(doc.end - doc.start).toBe(900);
  });

  it("rejects a window or step that is not an integer in range, with 400 JSON", async () => {
    for (
      const [query, what] of [
        ["window=0", 'window of "0"'],
        ["window=901", 'window of "901"'],
        ["window=abc", 'window of "abc"'],
        ["window=1.5", 'window of "1.5"'],
        ["window=-5", 'window of "-5"'],
        ["step=0", 'step of "0"'],
        ["step=61", 'step of "61"'],
      ]
    ) {
      const res = await app.request(`/api/stats?${query}`);
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body.error).toContain(`Cannot report a ${what} seconds`);
    }
  });

  it("needs the key like the rest of the API", async () => {
    const keyed = createAdminApp(mgmt("k"), runtime(metrics));
    const res = await keyed.request("/api/stats");
    expect(res.status).toBe(401);
    await res.body?.cancel();
    const ok = await keyed.request("/api/stats?window=60&step=5", {
      headers: { "X-API-Key": "k" },
    });
    expect((await ok.json()).requestsPerSecond.length).toBe(12);
  });
});

describe("the dashboard's data from a running bws", () => {
  const backends: Backend[] = [];
  let pki: TestPki;
  let tmp = "";
  let bws: ServerHandle;
  let admin = "";
  let configFile = "";
  let configText = "";
  let dead = "";

  before(async () => {
    tmp = await Deno.makeTempDir({ prefix: "bws_dashboard_api_" });
    pki = await TestPki.create();
    const day = (d: number) =>
      new Date(Date.now() + d * 86_400_000).toISOString().replace(/[-:T]/g, "").slice(0, 14) +
      "Z";
    const leaf = await pki.issue("secure.test", ["DNS:secure.test", "DNS:www.secure.test"], {
      start: day(-1),
      end: day(20.5),
    });
    const live = startEchoBackend("live");
    backends.push(live);
    dead = deadAddress();
    configText = `
[management]
enabled = true
port = 0

[[sites]]
name = "app"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
[sites.proxy]
enabled = true
[[sites.proxy.upstreams]]
name = "pool"
url = "${live.url}"
[[sites.proxy.upstreams]]
name = "pool"
url = "${dead}"
[[sites.proxy.routes]]
path = "/"
upstream = "pool"
[sites.proxy.passive_health]
max_fails = 1
fail_timeout = 60

[[sites]]
name = "secure"
hostname = "secure.test"
hostnames = ["www.secure.test"]
port = 0
bind = "127.0.0.2"
static_dir = "${tmp}"
${sslToml(leaf)}`;
    configFile = `${tmp}/bws.toml`;
    await Deno.writeTextFile(configFile, configText);
    bws = await startServer(await loadConfigFile(configFile), { logger: memoryLogger() });
    admin = `http://127.0.0.1:${bws.managementAddress!.port}`;
  });

  after(async () => {
    await bws?.shutdown();
    await Promise.all(backends.map((b) => b.close()));
    await pki?.remove().catch(() => {});
    if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  });

  const getJson = async (path: string) => await (await fetch(admin + path)).json();

  it("lists each TLS site's certificate with its expiry and days left", async () => {
    const status = await getJson("/api/status");
    expect(status.certificates).toEqual([{
      site: "secure",
      source: "file",
      file: expect.stringMatching(/leaf1\.crt$/),
      names: ["secure.test", "www.secure.test"],
      notAfter: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      daysLeft: 20,
    }]);
    expect(status.lastReload).toBeNull();
  });

  it("counts real requests in /api/stats once their second is over", async () => {
    const app = bws.addresses.find((a) => a.sites.includes("app"))!;
    // The dead member fails once (then is ejected); retries land on the live one.
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`http://127.0.0.1:${app.port}/n${i}`);
      expect(res.status).toBe(200);
      await res.body?.cancel();
    }
    await new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
    const doc = await getJson("/api/stats?window=10");
    expect(doc.totals.requests).toBe(30);
    expect(doc.totals.responses["2xx"]).toBe(30);
    expect(doc.requestsPerSecond.reduce((a: number, b: number) => a + b, 0)).toBe(30);
    expect(doc.totals.latencySeconds.p50).toBeGreaterThan(0);
    expect(doc.totals.latencySeconds.p99).toBeGreaterThanOrEqual(doc.totals.latencySeconds.p50);
  });

  it("shows a passively ejected member as such, with its last error", async () => {
    const status = await getJson("/api/status");
    const members = status.upstreams[0].members;
    const deadMember = members.find((m: { url: string }) => m.url.startsWith(dead));
    expect(deadMember).toMatchObject({ live: false, activeUp: true, ejected: true });
    expect(deadMember.lastError).not.toBe("");
    expect(members.find((m: { url: string }) => m !== deadMember)).toMatchObject({
      live: true,
      ejected: false,
    });
  });

  it("keeps the last reload's time, result and errors", async () => {
    await Deno.writeTextFile(configFile, configText.replace('upstream = "pool"', 'upstream = "p"'));
    const failed = await fetch(`${admin}/api/config/reload`, { method: "POST" });
    expect(failed.status).toBe(400);
    await failed.body?.cancel();
    const after = await getJson("/api/status");
    expect(after.lastReload).toMatchObject({ ok: false, generation: 1 });
    expect(Date.now() - Date.parse(after.lastReload.time)).toBeLessThan(5000);
    expect(after.lastReload.errors[0]).toMatchObject({
      path: "sites[0].proxy.routes[0].upstream",
      line: expect.any(Number),
    });

    await Deno.writeTextFile(configFile, configText);
    const ok = await fetch(`${admin}/api/config/reload`, { method: "POST" });
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    const admin2 = `http://127.0.0.1:${bws.managementAddress!.port}`;
    const status = await (await fetch(`${admin2}/api/status`)).json();
    expect(status.lastReload).toMatchObject({ ok: true, generation: 2, errors: [] });
  });
});
