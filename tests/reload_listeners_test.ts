/**
 * Reloads that change listeners on the same port (plain ↔ TLS, bind 127.0.0.1 ↔ 0.0.0.0), the
 * grace period on listeners a reload removes, and the config check that rejects a wildcard bind
 * next to a specific one on one port (SPEC 2, 7).
 */

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { memoryLogger } from "./helpers/memory_logger.ts";
import { parseConfigText } from "../src/config/load.ts";
import { ConfigError } from "../src/config/types.ts";
import { startServer } from "../src/server/server.ts";
import type { ServerHandle } from "../src/server/types.ts";
import { TestPki } from "./helpers/test_pki.ts";
import { freePort } from "./helpers/pebble.ts";

interface SiteOpts {
  name?: string;
  port: number;
  bind?: string;
  upstream: string;
  tls?: { cert: string; key: string };
}

function site(o: SiteOpts): string {
  return `
[[sites]]
name = "${o.name ?? "main"}"
hostname = "localhost"
port = ${o.port}
bind = "${o.bind ?? "127.0.0.1"}"
${
    o.tls
      ? `[sites.ssl]\nenabled = true\ncert_file = "${o.tls.cert}"\nkey_file = "${o.tls.key}"`
      : ""
  }

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${o.upstream}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`;
}

function config(sites: SiteOpts[], grace = 2): string {
  return `[server]\ngrace_period = ${grace}\n` + sites.map(site).join("\n");
}

const parse = (toml: string) => parseConfigText(toml, { baseDir: Deno.cwd() });

interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function curl(args: string[]): Promise<CurlResult> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "5", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The id of the backend that answered `GET /x` over plain HTTP on 127.0.0.1:port. */
async function plainBackend(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/x`);
  return ((await res.json()) as Seen).id;
}

describe("reload that changes a listener on the same port", () => {
  let pki: TestPki;
  let cert: { cert: string; key: string };
  let a: Backend, b: Backend, slow: Backend;
  let handle: ServerHandle;
  const logger = memoryLogger();

  before(async () => {
    pki = await TestPki.create();
    const leaf = await pki.issue("localhost", ["DNS:localhost"]);
    cert = { cert: leaf.certFile, key: leaf.keyFile };
    a = startEchoBackend("a");
    b = startEchoBackend("b");
    slow = startEchoBackend("slow", async () => {
      await new Promise((r) => setTimeout(r, 400));
      return new Response("slow done");
    });
  });

  after(async () => {
    await handle?.shutdown();
    await Promise.all([a.close(), b.close(), slow.close()]);
    await pki.remove();
  });

  const https = (port: number) =>
    curl([
      "--cacert",
      pki.caFile,
      "--resolve",
      `localhost:${port}:127.0.0.1`,
      `https://localhost:${port}/x`,
    ]);

  it("switches a port from plain HTTP to TLS and back", async () => {
    const port = freePort();
    handle = await startServer(parse(config([{ port, upstream: a.url }])), { logger });
    expect(await plainBackend(port)).toBe("a");

    const toTls = await handle.reload(parse(config([{ port, upstream: b.url, tls: cert }])));
    expect(toTls).toEqual({ ok: true, generation: 2 });
    const r = await https(port);
    expect(r.stderr).toBe("");
    expect((JSON.parse(r.stdout) as Seen).id).toBe("b");
    expect(handle.addresses).toEqual([
      { hostname: "127.0.0.1", port, tls: true, sites: ["main"] },
    ]);

    const toPlain = await handle.reload(parse(config([{ port, upstream: a.url }])));
    expect(toPlain.ok).toBe(true);
    expect(await plainBackend(port)).toBe("a");
    expect((await https(port)).code).not.toBe(0);
    await handle.shutdown();
  });

  it("moves a port from bind 127.0.0.1 to 0.0.0.0 and back; in-flight requests finish", async () => {
    const port = freePort();
    handle = await startServer(parse(config([{ port, upstream: slow.url }])), { logger });
    const pending = fetch(`http://127.0.0.1:${port}/slow`);
    await new Promise((r) => setTimeout(r, 100));

    const wide = await handle.reload(parse(config([{ port, bind: "0.0.0.0", upstream: b.url }])));
    expect(wide.ok).toBe(true);
    expect(handle.addresses.map((x) => `${x.hostname}:${x.port}`)).toEqual([`0.0.0.0:${port}`]);
    expect(await plainBackend(port)).toBe("b");
    // The request accepted by the old 127.0.0.1 listener drains on the old config.
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("slow done");

    const narrow = await handle.reload(parse(config([{ port, upstream: a.url }])));
    expect(narrow.ok).toBe(true);
    expect(handle.addresses.map((x) => `${x.hostname}:${x.port}`)).toEqual([`127.0.0.1:${port}`]);
    expect(await plainBackend(port)).toBe("a");
    await handle.shutdown();
  });

  it("keeps the old listener serving when the new one cannot bind", async () => {
    const port = freePort();
    // Another socket on 127.0.0.2 makes 0.0.0.0 on that port unbindable, 127.0.0.1 still free.
    const blocker = Deno.listen({ hostname: "127.0.0.2", port });
    try {
      handle = await startServer(parse(config([{ port, upstream: a.url }])), { logger });
      const r = await handle.reload(parse(config([{ port, bind: "0.0.0.0", upstream: b.url }])));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.errors[0].message).toBe(`Cannot listen on 0.0.0.0:${port}: address in use`);
      expect(handle.generation).toBe(1);
      expect(await plainBackend(port)).toBe("a");
      expect(handle.addresses.map((x) => `${x.hostname}:${x.port}`)).toEqual([
        `127.0.0.1:${port}`,
      ]);
    } finally {
      blocker.close();
      await handle.shutdown();
    }
  });
});

describe("grace period on reload (SPEC 7)", () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let hang: Backend, a: Backend;

  before(() => {
    hang = startEchoBackend("hang", async () => {
      await released;
      return new Response("too late");
    });
    a = startEchoBackend("a");
  });

  after(async () => {
    release();
    await Promise.all([hang.close(), a.close()]);
  });

  it("answers 503 to a request still waiting on a removed listener once grace_period is over", async () => {
    const oldPort = freePort();
    const newPort = freePort();
    const logger = memoryLogger();
    const handle = await startServer(parse(config([{ port: oldPort, upstream: hang.url }], 0.5)), {
      logger,
    });
    try {
      const t0 = performance.now();
      const pending = fetch(`http://127.0.0.1:${oldPort}/hang`).then(
        async (res) => `${res.status} ${await res.text()}`,
        (e) => `error ${e.message}`,
      );
      await new Promise((r) => setTimeout(r, 100));
      const r = await handle.reload(parse(config([{ port: newPort, upstream: a.url }], 0.5)));
      expect(r.ok).toBe(true);
      expect(await plainBackend(newPort)).toBe("a");
      // Still open inside the grace period: the old listener drains.
      const early = await Promise.race([pending, new Promise((r) => setTimeout(r, 250, "open"))]);
      expect(early).toBe("open");
      const outcome = await pending;
      const elapsed = performance.now() - t0;
      expect(outcome).toMatch(/^503 503 Service Unavailable\nrequest id: /);
      expect(elapsed).toBeGreaterThan(550);
      expect(elapsed).toBeLessThan(2000);
      expect(logger.lines.some((l) => l.includes("grace period over"))).toBe(true);
      await expect(fetch(`http://127.0.0.1:${oldPort}/x`)).rejects.toThrow();
    } finally {
      await handle.shutdown();
    }
  });
});

describe("config check: binds on one port", () => {
  it("rejects a 0.0.0.0 site and a 127.0.0.1 site on the same port, naming both", () => {
    const toml = config([
      { name: "wide", port: 8181, bind: "0.0.0.0", upstream: "http://127.0.0.1:9" },
      { name: "narrow", port: 8181, bind: "127.0.0.1", upstream: "http://127.0.0.1:9" },
    ]);
    let error: unknown;
    try {
      parse(toml);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const issues = (error as ConfigError).issues.filter((i) => i.path === "sites[1].bind");
    expect(issues.length).toBe(1);
    expect(issues[0].message).toBe(
      'Cannot bind "127.0.0.1" port 8181 for site "narrow": site "wide" (sites[0]) binds ' +
        '"0.0.0.0" on the same port and the addresses overlap (give both sites the same bind, ' +
        "or different ports)",
    );
    const line =
      toml.split("\n").findIndex((l, i, all) =>
        l === 'bind = "127.0.0.1"' && all.slice(0, i).some((x) => x.includes('"narrow"'))
      ) + 1;
    expect(issues[0].line).toBe(line);
  });

  it("rejects a TLS site's http_port on 127.0.0.1 next to a 0.0.0.0 site on that port", () => {
    const toml = config([
      { name: "wide", port: 8181, bind: "0.0.0.0", upstream: "http://127.0.0.1:9" },
      {
        name: "secure",
        port: 8443,
        upstream: "http://127.0.0.1:9",
        tls: { cert: "c.pem", key: "k.pem" },
      },
    ]).replace('key_file = "k.pem"', 'key_file = "k.pem"\nredirect_http = true\nhttp_port = 8181');
    let error: unknown;
    try {
      parse(toml);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const issue = (error as ConfigError).issues.find((i) => i.path === "sites[1].ssl.http_port");
    expect(issue?.message).toContain('site "wide" (sites[0]) binds "0.0.0.0"');
    expect(issue?.line).toBe(toml.split("\n").indexOf("http_port = 8181") + 1);
  });

  it("accepts two specific binds on one port, and one bind shared by two sites", () => {
    const ok = config([
      { name: "one", port: 8181, bind: "127.0.0.1", upstream: "http://127.0.0.1:9" },
      { name: "two", port: 8181, bind: "127.0.0.2", upstream: "http://127.0.0.1:9" },
    ]);
    expect(() => parse(ok)).not.toThrow();
    const shared = config([
      { name: "one", port: 8181, bind: "0.0.0.0", upstream: "http://127.0.0.1:9" },
      { name: "two", port: 8181, bind: "0.0.0.0", upstream: "http://127.0.0.1:9" },
    ]).replace(/hostname = "localhost"/, 'hostname = "one.test"');
    expect(() => parse(shared)).not.toThrow();
  });
});
