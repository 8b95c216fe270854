/**
 * `[sites.rate_limit]` (SPEC 10) against a running bws with real clients from chosen loopback
 * addresses: `rate = 5, burst = 5` lets exactly 5 of 20 back-to-back requests through and
 * answers the rest 429 with Retry-After, per address (another address, or another client behind
 * a trusted proxy, has its own bucket); the bucket refills at 5 a second and never beyond 5;
 * `key = "header:NAME"` limits per header value (requests without it share one bucket); static
 * files are limited too; `bws_refused_total{rule="rate_limit"}` counts the 429s.
 */

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { parseProm } from "./helpers/prom_parse.ts";
import { getRequest, rawExchange, type RawResponse } from "./helpers/raw_client.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function config(backend: string, staticDir: string): string {
  return `
[server]
grace_period = 1
trusted_proxies = ["127.0.0.1"]

[management]
enabled = true
port = 0

[[sites]]
name = "rl"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${staticDir}"

[sites.rate_limit]
rate = 5
burst = 5

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend}"

[[sites.proxy.routes]]
path = "/api/"
upstream = "b"

[[sites.proxy.routes]]
path = "/keyed/"
upstream = "b"

[sites.proxy.routes.rate_limit]
rate = 5
burst = 5
key = "header:X-Api-Key"
`;
}

describe("rate limits end to end", () => {
  let backend: Backend;
  let bws: TestBws;
  let dir: string;

  /** `n` requests pipelined in one write from `from`; their responses in order. */
  const burst = async (
    n: number,
    from: string,
    path = "/api/x",
    extra: string[] = [],
  ): Promise<RawResponse[]> => {
    const r = await rawExchange({
      port: bws.port,
      localAddress: from,
      data: getRequest(path, "localhost", extra).repeat(n),
      responses: n,
    });
    expect(r.responses.length).toBe(n);
    return r.responses;
  };
  const statuses = (rs: RawResponse[]) => rs.map((r) => r.status);
  const passes = (rs: RawResponse[]) => rs.filter((r) => r.status === 200).length;

  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws_rate_" });
    await Deno.writeTextFile(`${dir}/index.html`, "<h1>static</h1>\n");
    backend = startEchoBackend("b");
    bws = await startBws(config(backend.url, dir));
  });
  after(async () => {
    await bws.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  });

  it("lets 5 of 20 back-to-back requests through, then 429 with Retry-After; other clients unaffected", async () => {
    const seenBefore = backend.seen.length;
    const rs = await burst(20, "127.0.0.11");
    expect(statuses(rs)).toEqual([...Array(5).fill(200), ...Array(15).fill(429)]);
    expect(backend.seen.length - seenBefore).toBe(5);
    for (const r of rs.slice(5)) {
      expect(r.headers.get("retry-after")).toBe("1");
      expect(r.headers.get("ratelimit-policy")).toBe('"default";q=5;w=1');
      expect(r.headers.get("ratelimit")).toBe('"default";r=0;t=1');
    }
    // Another address, and another client behind the trusted proxy: full buckets of their own.
    expect(statuses(await burst(6, "127.0.0.12"))).toEqual([200, 200, 200, 200, 200, 429]);
    const xff = await burst(6, "127.0.0.1", "/api/x", ["X-Forwarded-For: 198.51.100.1"]);
    expect(passes(xff)).toBe(5);
    // The first address is still limited.
    expect(statuses(await burst(1, "127.0.0.11"))).toEqual([429]);
    const refused = bws.logger.entries.find((e) => e.status === 429)!;
    expect(refused).toMatchObject({ client: "127.0.0.11", refused: "rate_limit" });
  });

  it("refills at the configured rate, up to burst", async () => {
    await burst(6, "127.0.0.13"); // empty the bucket
    await sleep(1500); // 7.5 tokens' worth of time: capped at 5
    expect(passes(await burst(10, "127.0.0.13"))).toBe(5);
    // Now empty again: one request every ~20 ms for ~2 s gets 5 a second through.
    const start = performance.now();
    let ok = 0;
    let sent = 0;
    while (performance.now() - start < 2000 && sent < 200) {
      const [r] = await burst(1, "127.0.0.13");
      sent++;
      if (r.status === 200) ok++;
      await sleep(20);
    }
    const seconds = (performance.now() - start) / 1000;
    expect(ok).toBeGreaterThanOrEqual(Math.floor(5 * seconds) - 1);
    expect(ok).toBeLessThanOrEqual(Math.ceil(5 * seconds) + 1);
    expect(sent).toBeGreaterThan(ok * 2); // most were refused: the limit was what held them
  });

  it("limits per header value when keyed by a header; requests without it share one bucket", async () => {
    const key = (k: string) => [`X-Api-Key: ${k}`];
    expect(passes(await burst(7, "127.0.0.14", "/keyed/a", key("alpha")))).toBe(5);
    // Same address, another key: its own bucket (the route's table replaced the per-IP one).
    expect(passes(await burst(7, "127.0.0.14", "/keyed/a", key("beta")))).toBe(5);
    // No header: one shared bucket for every address.
    expect(passes(await burst(4, "127.0.0.15", "/keyed/a"))).toBe(4);
    expect(statuses(await burst(2, "127.0.0.16", "/keyed/a"))).toEqual([200, 429]);
  });

  it("limits static files too", async () => {
    const rs = await burst(7, "127.0.0.17", "/index.html");
    expect(statuses(rs)).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(rs[0].body).toBe("<h1>static</h1>\n");
  });

  it("counts the refusals in bws_refused_total{site,rule}", async () => {
    const addr = bws.handle.managementAddress!;
    const res = await fetch(`http://${addr.hostname}:${addr.port}/metrics`);
    const prom = parseProm(await res.text());
    const refused = bws.logger.entries.filter((e) => e.refused === "rate_limit").length;
    expect(refused).toBeGreaterThan(20);
    expect(prom.value("bws_refused_total", { site: "rl", rule: "rate_limit" })).toBe(refused);
  });
});
