/**
 * Micro-benchmark: the CPU one request pays for edge protection on the synchronous path
 * (access + rate limit, the bench route's tables), against a request that pays nothing, and
 * the cost of a flood of distinct addresses (a new bucket per request). Also prints the heap
 * and RSS growth of the flood.
 *
 *   deno run -A --v8-flags=--expose-gc scripts/bench/edge_bench.ts [requests = 1000000]
 *
 * @module
 */

import { configFromObject } from "../../src/config/load.ts";
import { UpstreamClient } from "../../src/upstream/client.ts";
import { compileSiteEdge } from "../../src/edge/edge_policy.ts";
import { testRequest } from "../../tests/helpers/test_request.ts";

const N = Number(Deno.args[0] ?? 1_000_000);
const site = configFromObject({
  sites: [{
    name: "bench",
    port: 0,
    static_dir: ".",
    access: { allow: ["10.0.0.0/8", "192.168.0.0/16"], deny: ["10.9.9.9"] },
    rate_limit: { rate: 1e6, burst: 1e6 },
  }],
}).sites[0];
const client = new UpstreamClient();
/** The default proxy timeouts. */
const timeouts = { connectMs: 5000, readMs: 30_000, writeMs: 30_000 };
const policy = compileSiteEdge(site, { client, timeouts }).site!;
const req = testRequest({ headers: [["host", "example.com"], ["accept", "*/*"]] });

function perCheckNs(clients: readonly string[]): number {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    if (policy.check(req, clients[i % clients.length]) !== null) throw new Error("refused");
  }
  return ((performance.now() - t0) * 1e6) / N;
}

const few = Array.from({ length: 64 }, (_, i) => `10.0.0.${i}`);
perCheckNs(few); // warm-up
console.log(`access + rate_limit, 64 clients: ${perCheckNs(few).toFixed(0)} ns per request`);

const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const before = Deno.memoryUsage();
const flood = Array.from(
  { length: 200_000 },
  (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
);
const t0 = performance.now();
for (const ip of flood) policy.check(req, ip);
const floodNs = ((performance.now() - t0) * 1e6) / flood.length;
gc?.();
const after = Deno.memoryUsage();
console.log(
  `flood of 200k distinct addresses: ${floodNs.toFixed(0)} ns per request, heap ` +
    `+${((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(1)} MiB, rss ` +
    `+${((after.rss - before.rss) / 2 ** 20).toFixed(1)} MiB (addresses themselves included)`,
);
client.close();
