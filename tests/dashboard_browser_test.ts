/**
 * The management dashboard in headless Chromium against a real bws: two proxied sites with echo
 * backends (one group under active health checks) and two TLS sites whose certificates expire
 * in 10 and 2 days. The page must show all of it without console errors, follow traffic and a
 * killed backend within its 2 s refreshes, and render at phone and desktop widths.
 *
 * `BWS_DASHBOARD_SCREENSHOT=docs/dashboard.png` also writes the 1440 px screenshot there.
 */

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import type { Browser, Page } from "playwright-core";
import { startBws } from "./helpers/bws.ts";
import { memoryLogger } from "./helpers/memory_logger.ts";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { imageStats, launchChromium } from "./helpers/chromium.ts";
import { freePort } from "./helpers/pebble.ts";
import { sslToml, TestPki } from "./helpers/test_pki.ts";
import { loadConfigFile } from "../src/config/load.ts";
import { startServer } from "../src/server/server.ts";
import type { ServerHandle } from "../src/server/types.ts";

const REFRESH_MS = 2000;
/** The page asks for 5 s points: a request shows once its step is complete. */
const STEP_MS = 5000;
const CHECK = { interval: 0.2, retries: 2 };

const hasOpenssl = await new Deno.Command("openssl", { args: ["version"], stdout: "null" })
  .output().then((o) => o.success, () => false);
const launched: Browser | string = hasOpenssl
  ? await launchChromium()
  : "openssl is not installed (the test makes TLS certificates with it)";
const skip = typeof launched === "string" ? launched : false;
if (skip) console.warn(`dashboard browser test skipped: ${skip}`);

/** Polls `probe` until it returns a truthy value; returns it and the time it took. */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  timeoutMs: number,
): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  let last: T | undefined;
  while (performance.now() - start < timeoutMs) {
    last = await probe();
    if (last) return { value: last, ms: performance.now() - start };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Cannot see ${what} within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}

/** `YYYYMMDDHHMMSSZ`, `days` from now. */
function certDate(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().replace(/[-:T]/g, "").slice(0, 14) +
    "Z";
}

function rgb(css: string): [number, number, number] {
  const m = css.match(/(\d+)[, ]+(\d+)[, ]+(\d+)/);
  if (!m) throw new Error(`Cannot read colour "${css}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

describe("management dashboard in headless Chromium", { skip }, () => {
  const browser = launched as Browser;
  const consoleErrors: string[] = [];
  const backends: Backend[] = [];
  let pki: TestPki;
  let tmp = "";
  let bws: ServerHandle;
  let configFile = "";
  let configText = "";
  let page: Page;
  let admin = "";
  let a: Backend, b: Backend, c: Backend;

  before(async () => {
    tmp = await Deno.makeTempDir({ prefix: "bws_dashboard_" });
    await Deno.writeTextFile(`${tmp}/index.html`, "<p>static</p>");
    pki = await TestPki.create();
    const soon = await pki.issue("secure.test", ["DNS:secure.test"], {
      start: certDate(-1),
      end: certDate(10.5),
    });
    const critical = await pki.issue("legacy.test", ["DNS:legacy.test"], {
      start: certDate(-1),
      end: certDate(2.5),
    });
    a = startEchoBackend("a");
    b = startEchoBackend("b");
    c = startEchoBackend("c", (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/api/missing") return new Response("no", { status: 404 });
      if (path === "/api/broken") return new Response("down", { status: 503 });
    });
    backends.push(a, b, c);
    const [blogPort, tlsPort] = [freePort(), freePort()];
    configText = `
[server]
name = "edge-test"
grace_period = 1

[management]
enabled = true
port = 0

[[sites]]
name = "shop"
hostname = "shop.test"
port = 0
bind = "127.0.0.1"
[sites.proxy]
enabled = true
[[sites.proxy.upstreams]]
name = "app"
url = "${a.url}"
[[sites.proxy.upstreams]]
name = "app"
url = "${b.url}"
[[sites.proxy.routes]]
path = "/"
upstream = "app"
[sites.proxy.health_check]
enabled = true
path = "/health"
interval = ${CHECK.interval}
timeout = 0.5
retries = ${CHECK.retries}
rise = 1

[[sites]]
name = "blog"
hostname = "blog.test"
port = ${blogPort}
bind = "127.0.0.1"
[sites.proxy]
enabled = true
[[sites.proxy.upstreams]]
name = "api"
url = "${c.url}"
[[sites.proxy.routes]]
path = "/api/"
upstream = "api"

[[sites]]
name = "secure"
hostname = "secure.test"
port = ${tlsPort}
bind = "127.0.0.1"
static_dir = "${tmp}"
${sslToml(soon)}
[[sites]]
name = "legacy"
hostname = "legacy.test"
port = ${tlsPort}
bind = "127.0.0.1"
static_dir = "${tmp}"
${sslToml(critical)}`;
    // Started from a file, so a reload through the API reads it again.
    configFile = `${tmp}/bws.toml`;
    await Deno.writeTextFile(configFile, configText);
    bws = await startServer(await loadConfigFile(configFile), { logger: memoryLogger() });
    const m = bws.managementAddress!;
    admin = `http://127.0.0.1:${m.port}`;
    page = await browser.newPage({ viewport: { width: 1440, height: 900 }, colorScheme: "light" });
    page.on("console", (msg) => {
      if (msg.type() === "error" || msg.type() === "warning") {
        consoleErrors.push(`${msg.type()}: ${msg.text()}`);
      }
    });
    page.on("pageerror", (err) => consoleErrors.push(`pageerror: ${err.message}`));
    await page.goto(`${admin}/`);
  });

  after(async () => {
    await page?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await bws?.shutdown();
    await Promise.all(backends.map((x) => x.close().catch(() => {})));
    await pki?.remove().catch(() => {});
    if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  });

  function siteUrl(name: string, path: string): string {
    const l = bws.addresses.find((x) => x.sites.includes(name))!;
    return `http://127.0.0.1:${l.port}${path}`;
  }

  function memberRow(url: string) {
    return page.locator("#t-upstreams tbody tr").filter({ hasText: url });
  }

  it("shows every site, listener, member and certificate, with no console error", async () => {
    await waitFor("the upstream table", () => memberRow(c.url).count(), 10_000);
    expect(await page.locator("#t-sites tbody th").allTextContents()).toEqual([
      "shop",
      "blog",
      "secure",
      "legacy",
    ]);
    // shop, blog, and the TLS port the two TLS sites share.
    expect(await page.locator("#t-listeners tbody tr").count()).toBe(bws.addresses.length);
    expect(bws.addresses.length).toBe(3);
    for (const backend of [a, b, c]) {
      const row = memberRow(backend.url);
      expect(await row.count()).toBe(1);
      expect(await row.locator(".state").textContent()).toMatch(/^\u25CF up/);
    }
    expect(await page.locator("h1").textContent()).toContain("edge-test");

    const certRow = (site: string) =>
      page.locator("#t-certs tbody tr").filter({ has: page.locator(`th:text-is("${site}")`) });
    const soon = certRow("secure");
    expect(await soon.locator(".state").textContent()).toMatch(/expires soon.*10 days left/);
    expect(await soon.getAttribute("class")).toBe("warn");
    const critical = certRow("legacy");
    expect(await critical.locator(".state").textContent()).toMatch(/critical.*2 days left/);
    expect(await critical.getAttribute("class")).toBe("bad");
    expect(await page.locator("#reload").textContent()).toContain("No reload since start");
    // No workers or fleet yet: those sections stay hidden.
    expect(await page.locator("#sec-workers").isHidden()).toBe(true);
    expect(await page.locator("#sec-instances").isHidden()).toBe(true);
    expect(consoleErrors).toEqual([]);
  });

  it("moves the charts after 100 requests", async () => {
    const rpsLine = page.locator("#chart-rps path.line");
    const before = await rpsLine.getAttribute("d");
    const statusBefore = await page.locator("#legend-status").textContent();
    const outcomes = { ok: 0, missing: 0, broken: 0 };
    for (let i = 0; i < 100; i++) {
      const [url, key] = i % 10 === 8
        ? [siteUrl("blog", "/api/missing"), "missing" as const]
        : i % 10 === 9
        ? [siteUrl("blog", "/api/broken"), "broken" as const]
        : [i % 2 ? siteUrl("shop", `/x${i}`) : siteUrl("blog", `/api/y${i}`), "ok" as const];
      const res = await fetch(url);
      await res.body?.cancel();
      outcomes[key]++;
      if (key === "ok") expect(res.status).toBe(200);
    }
    expect(outcomes).toEqual({ ok: 80, missing: 10, broken: 10 });
    const { ms } = await waitFor(
      "the request chart and status legend to count 100 requests",
      async () => {
        const summary = await page.locator("#sum-rps").textContent() ?? "";
        const total = Number(summary.match(/([\d,]+) requests/)?.[1].replace(/,/g, "") ?? 0);
        return total >= 100 && (await rpsLine.getAttribute("d")) !== before;
      },
      STEP_MS + 2 * REFRESH_MS + 2000,
    );
    const legend = await page.locator("#legend-status").textContent() ?? "";
    expect(legend).not.toBe(statusBefore);
    expect(legend).toMatch(/2xx: 8\d/);
    expect(legend).toMatch(/4xx: 10/);
    expect(legend).toMatch(/5xx: 10/);
    // The line is no longer flat at zero: some point sits above the baseline.
    const d = await rpsLine.getAttribute("d") ?? "";
    const ys = [...d.matchAll(/,([\d.]+)/g)].map((m) => Number(m[1]));
    expect(Math.min(...ys)).toBeLessThan(Math.max(...ys));
    expect(await page.locator("#sum-latency").textContent()).toMatch(/p99 [\d.]+ m?s/);
    console.log(`charts moved ${Math.round(ms)} ms after the 100th request`);
    expect(consoleErrors).toEqual([]);
  });

  it("turns a member red, saying down, within 2 refreshes after its backend is killed", async () => {
    await b.close();
    const { ms } = await waitFor(
      "member b marked down",
      async () => /down/.test(await memberRow(b.url).locator(".state").textContent() ?? ""),
      CHECK.interval * CHECK.retries * 1000 + 500 + 2 * REFRESH_MS,
    );
    console.log(`member shown down ${Math.round(ms)} ms after its backend stopped`);
    const state = memberRow(b.url).locator(".state");
    expect(await state.textContent()).toMatch(/^\u2716 down/);
    const [r, g, bl] = rgb(
      // deno-lint-ignore no-explicit-any
      await state.evaluate((el) => (globalThis as any).getComputedStyle(el).color as string),
    );
    expect(r).toBeGreaterThan(150);
    expect(g).toBeLessThan(100);
    expect(bl).toBeLessThan(100);
    expect(await memberRow(b.url).getAttribute("class")).toBe("bad");
    // The other members stay up, and the summary counts the one that is not.
    expect(await memberRow(a.url).locator(".state").textContent()).toMatch(/up/);
    expect(await page.locator("#glance").textContent()).toContain("2 of 3");
    expect(consoleErrors).toEqual([]);
  });

  it("shows a failed reload with its error", async () => {
    // The route names an upstream group the site does not have.
    await Deno.writeTextFile(configFile, configText.replace('upstream = "api"', 'upstream = "ap"'));
    const res = await fetch(`${admin}/api/config/reload`, { method: "POST" });
    expect(res.status).toBe(400);
    await res.body?.cancel();
    await waitFor(
      "the failed reload",
      async () => /failed/.test(await page.locator("#reload").textContent() ?? ""),
      2 * REFRESH_MS + 1000,
    );
    const text = await page.locator("#reload").textContent();
    expect(text).toContain("generation 1 kept running");
    expect(text).toMatch(
      /line \d+:\d+ sites\[1\]\.proxy\.routes\[0\]\.upstream: Cannot route to upstream "ap"/,
    );
    expect(consoleErrors).toEqual([]);
  });

  it("renders readable screenshots at 375 and 1440 px", async () => {
    const shots: Record<number, Uint8Array> = {};
    for (const width of [375, 1440]) {
      await page.setViewportSize({ width, height: width < 500 ? 800 : 1000 });
      await new Promise((r) => setTimeout(r, 400)); // the charts redraw after a resize
      // Nothing is wider than the screen: no sideways scrolling at either width.
      const scrollWidth = await page.evaluate("document.documentElement.scrollWidth") as number;
      expect(scrollWidth).toBeLessThanOrEqual(width);
      const png = await page.screenshot({ path: `${tmp}/dashboard-${width}.png`, fullPage: true });
      shots[width] = png;
      const stats = await imageStats(browser, png);
      expect(stats.width).toBe(width);
      expect(stats.height).toBeGreaterThan(600);
      expect(png.byteLength).toBeGreaterThan(30_000);
      expect(stats.colours).toBeGreaterThan(50);
      expect(stats.luminanceStdDev).toBeGreaterThan(10);
    }
    const docs = Deno.env.get("BWS_DASHBOARD_SCREENSHOT");
    if (docs) {
      await Deno.writeFile(docs.replace(/\.png$/, "-375.png"), shots[375]);
      await page.setViewportSize({ width: 1440, height: 900 });
      await new Promise((r) => setTimeout(r, 400));
      await page.screenshot({ path: docs, fullPage: true });
    }
    expect(consoleErrors).toEqual([]);
  });

  it("asks for the api_key once, keeps it for the tab and sends it as X-API-Key", async () => {
    const keyed = await startBws(`
[management]
enabled = true
port = 0
api_key = "s3cret"

[[sites]]
name = "keyed"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${tmp}"
`);
    const context = await browser.newContext();
    try {
      const base = `http://127.0.0.1:${keyed.handle.managementAddress!.port}`;
      const denied = await fetch(`${base}/api/status`);
      expect(denied.status).toBe(401);
      await denied.body?.cancel();

      const p = await context.newPage();
      const errors: string[] = [];
      p.on("console", (msg) => msg.type() === "error" && errors.push(msg.text()));
      p.on("pageerror", (err) => errors.push(err.message));
      const seen: (string | undefined)[] = [];
      p.on("request", (req) => {
        if (req.url().includes("/api/")) seen.push(req.headers()["x-api-key"]);
      });
      const res = await p.goto(`${base}/`);
      expect(res?.status()).toBe(200);
      expect(res?.headers()["content-security-policy"]).toContain("default-src 'none'");
      await p.locator("#key").waitFor({ state: "visible", timeout: 5000 });
      expect(await p.locator("#main").isHidden()).toBe(true);
      expect(seen).toEqual([]); // it asks before calling the API

      await p.locator("#key").fill("wrong");
      await p.locator("#key-form button").click();
      await waitFor(
        "the wrong key refused",
        async () => /not accepted/.test(await p.locator("#key-error").textContent() ?? ""),
        3000,
      );
      await p.locator("#key").fill("s3cret");
      await p.locator("#key-form button").click();
      await p.locator("#t-sites tbody th", { hasText: "keyed" }).waitFor({ timeout: 5000 });
      expect(await p.locator("#key-panel").isHidden()).toBe(true);
      expect(await p.evaluate("sessionStorage.getItem('bws-api-key')")).toBe("s3cret");

      // A reload of the page in the same tab uses the kept key without asking.
      seen.length = 0;
      await p.reload();
      await p.locator("#t-sites tbody th", { hasText: "keyed" }).waitFor({ timeout: 5000 });
      expect(await p.locator("#key-panel").isHidden()).toBe(true);
      expect(seen.length).toBeGreaterThan(0);
      expect(new Set(seen)).toEqual(new Set(["s3cret"]));
      // Only the wrong key's refusals were logged by the browser.
      expect(errors.every((e) => /401/.test(e))).toBe(true);
    } finally {
      await context.close();
      await keyed.close();
    }
  });
});
