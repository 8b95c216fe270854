import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { memoryLogger } from "./helpers/memory_logger.ts";
import { parseProm } from "./helpers/prom_parse.ts";
import { loadConfigFile } from "../src/config/load.ts";
import { startServer } from "../src/server/server.ts";
import type { ServerHandle } from "../src/server/types.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function config(opts: {
  port: number;
  upstream: string;
  adminPort: number;
  route?: string;
  extra?: string;
}): string {
  return `
[server]
grace_period = 2

[management]
enabled = true
host = "127.0.0.1"
port = ${opts.adminPort}
api_key = "sekret"

[[sites]]
name = "main"
hostname = "localhost"
port = ${opts.port}
bind = "127.0.0.1"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${opts.upstream}"

[[sites.proxy.routes]]
path = "${opts.route ?? "/"}"
upstream = "b"
${opts.extra ?? ""}
`;
}

describe("hot reload and the management API (SPEC 7)", () => {
  let a: Backend, b: Backend, slow: Backend;
  let dir: string;
  let file: string;
  let handle: ServerHandle;
  let port: number;
  let adminPort: number;
  const logger = memoryLogger();

  before(async () => {
    a = startEchoBackend("a");
    b = startEchoBackend("b");
    slow = startEchoBackend("slow", async () => {
      await new Promise((r) => setTimeout(r, 800));
      return new Response("slow done", { headers: { "x-backend": "slow" } });
    });
    dir = await Deno.makeTempDir();
    file = `${dir}/bws.toml`;
    port = freePort();
    adminPort = freePort();
    await Deno.writeTextFile(file, config({ port, upstream: a.url, adminPort }));
    handle = await startServer(await loadConfigFile(file), { logger });
  });

  after(async () => {
    await handle.shutdown();
    await Promise.all([a.close(), b.close(), slow.close()]);
    await Deno.remove(dir, { recursive: true });
  });

  async function backendOf(path = "/x"): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    if (res.status !== 200) {
      await res.body?.cancel();
      return `status ${res.status}`;
    }
    return (await res.json() as Seen).id;
  }

  const admin = (path: string, init: RequestInit = {}, key = "sekret") =>
    fetch(`http://127.0.0.1:${adminPort}${path}`, {
      ...init,
      headers: { ...(key ? { "x-api-key": key } : {}) },
    });

  it("swaps the upstream under a bounded load with zero failed requests", async () => {
    expect(await backendOf()).toBe("a");
    let stop = false;
    const results: string[] = [];
    const loops = Array.from({ length: 4 }, async () => {
      const deadline = Date.now() + 5000;
      while (!stop && Date.now() < deadline) results.push(await backendOf());
    });
    await new Promise((r) => setTimeout(r, 300));
    await Deno.writeTextFile(file, config({ port, upstream: b.url, adminPort }));
    const r = await handle.reloadFromSource();
    expect(r.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    expect(results.length).toBeGreaterThan(20);
    expect(results.filter((x) => x !== "a" && x !== "b")).toEqual([]);
    expect(results.at(-1)).toBe("b");
    expect(handle.generation).toBe(2);
  });

  it("lets an in-flight request finish on the config it started with", async () => {
    await Deno.writeTextFile(file, config({ port, upstream: slow.url, adminPort }));
    expect((await handle.reloadFromSource()).ok).toBe(true);
    const pending = fetch(`http://127.0.0.1:${port}/slow`);
    await new Promise((r) => setTimeout(r, 200));
    await Deno.writeTextFile(file, config({ port, upstream: a.url, adminPort }));
    expect((await handle.reloadFromSource()).ok).toBe(true);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("slow done");
    expect(await backendOf()).toBe("a");
  });

  it("refuses a reload whose files a start would fail on, naming key and line", async () => {
    const before = handle.generation;
    const text = config({
      port,
      upstream: b.url,
      adminPort,
      extra: `[logging]\noutput = "file"\nfile_path = "${dir}/missing-dir/access.log"\n`,
    });
    await Deno.writeTextFile(file, text);
    const r = await handle.reloadFromSource();
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const issue = r.errors.find((e) => e.path === "logging.file_path");
    expect(issue?.message).toContain("does not exist");
    expect(issue?.line).toBe(text.split("\n").findIndex((l) => l.startsWith("file_path")) + 1);
    expect(handle.generation).toBe(before);
    expect(await backendOf()).toBe("a");
  });

  it("keeps the old config serving when the new file is invalid, and says why", async () => {
    const before = handle.generation;
    await Deno.writeTextFile(
      file,
      config({ port, upstream: b.url, adminPort }).replace("path = ", "paht = "),
    );
    const r = await handle.reloadFromSource();
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const unknown = r.errors.find((e) => e.message.includes("paht"));
    expect(unknown?.path).toBe("sites[0].proxy.routes[0].paht");
    expect(unknown?.line).toBeGreaterThan(0);
    expect(handle.generation).toBe(before);
    expect(await backendOf()).toBe("a");
  });

  it("reloads through the API: 401 without the key, 400 with errors, 200 when valid", async () => {
    const noKey = await admin("/api/config/reload", { method: "POST" }, "");
    expect(noKey.status).toBe(401);
    await noKey.body?.cancel();
    const wrongKey = await admin("/api/config/reload", { method: "POST" }, "nope");
    expect(wrongKey.status).toBe(401);
    await wrongKey.body?.cancel();

    // The file is still invalid from the previous test.
    const bad = await admin("/api/config/reload", { method: "POST" });
    expect(bad.status).toBe(400);
    const badBody = await bad.json();
    expect(badBody.ok).toBe(false);
    expect(badBody.errors.some((e: { path: string }) => e.path.endsWith("paht"))).toBe(true);

    await Deno.writeTextFile(file, config({ port, upstream: b.url, adminPort }));
    const good = await admin("/api/config/reload", { method: "POST" });
    expect(good.status).toBe(200);
    const body = await good.json();
    expect(body).toEqual({ ok: true, generation: handle.generation });
    expect(await backendOf()).toBe("b");
  });

  it("opens and closes listeners when the port changes", async () => {
    const newPort = freePort();
    await Deno.writeTextFile(file, config({ port: newPort, upstream: b.url, adminPort }));
    expect((await handle.reloadFromSource()).ok).toBe(true);
    const res = await fetch(`http://127.0.0.1:${newPort}/x`);
    expect(((await res.json()) as Seen).id).toBe("b");
    await new Promise((r) => setTimeout(r, 100));
    await expect(fetch(`http://127.0.0.1:${port}/x`)).rejects.toThrow();
    port = newPort;
    expect(handle.addresses.map((x) => x.port)).toEqual([newPort]);
  });

  it("serves status and Prometheus metrics that count what was sent", async () => {
    const status = await (await admin("/api/status")).json();
    expect(status.generation).toBe(handle.generation);
    expect(status.sites[0].name).toBe("main");
    expect(status.upstreams[0].members[0].url).toBe(b.url);

    const text0 = await (await admin("/metrics")).text();
    const before = parseProm(text0).value("bws_requests_total", {
      site: "main",
      route: "/",
      code: "2xx",
    }) ?? 0;
    for (let i = 0; i < 5; i++) await backendOf(`/m${i}`);
    await new Promise((r) => setTimeout(r, 50));
    const res = await admin("/metrics");
    expect(res.headers.get("content-type")).toContain("text/plain");
    const prom = parseProm(await res.text());
    expect(prom.value("bws_requests_total", { site: "main", route: "/", code: "2xx" })).toBe(
      before + 5,
    );
    expect(prom.value("bws_config_generation")).toBe(handle.generation);
    expect(prom.value("bws_upstream_up", { site: "main", group: "b", url: b.url })).toBe(1);
    expect(prom.value("bws_config_reloads_total", { result: "failure" })).toBeGreaterThanOrEqual(
      2,
    );
    // The keep-alive socket the five requests used waits in the pool; none is busy.
    const origin = new URL(b.url).origin;
    expect(prom.value("bws_upstream_connections", { origin, state: "idle" })).toBeGreaterThan(0);
    expect(prom.value("bws_upstream_connections", { origin, state: "busy" })).toBe(0);
  });
});

describe("graceful shutdown (SPEC 1)", () => {
  it("finishes an in-flight request, then stops accepting", async () => {
    const slow = startEchoBackend("slow", async () => {
      await new Promise((r) => setTimeout(r, 500));
      return new Response("finished");
    });
    const dir = await Deno.makeTempDir();
    try {
      const port = freePort();
      await Deno.writeTextFile(
        `${dir}/bws.toml`,
        config({ port, upstream: slow.url, adminPort: freePort() }),
      );
      const handle = await startServer(await loadConfigFile(`${dir}/bws.toml`), {
        logger: memoryLogger(),
      });
      const pending = fetch(`http://127.0.0.1:${port}/x`);
      await new Promise((r) => setTimeout(r, 150));
      const stopped = handle.shutdown();
      const res = await pending;
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("finished");
      await stopped;
      await handle.finished;
      await expect(fetch(`http://127.0.0.1:${port}/x`)).rejects.toThrow();
    } finally {
      await slow.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});
