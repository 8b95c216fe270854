/**
 * `server.workers = 2` with `[cluster]`, against a real redis-server: each worker counts the
 * fleet's rate-limit buckets in Redis through a link of its own, so a limit holds across the
 * workers (and across instances alike); the supervisor is the instance `/api/status` lists.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { rawRequest } from "./helpers/backends.ts";
import { waitFor } from "./helpers/wait.ts";
import { hasRedis, REDIS_SERVER, startRedis, type TestRedis } from "./helpers/redis.ts";
import { WorkersBws } from "./helpers/workers_process.ts";

if (!hasRedis) {
  console.warn(`Skipping workers + [cluster] test: ${REDIS_SERVER} is not installed`);
}

/** A GET on a connection of its own (the kernel picks a worker for each). */
async function get(port: number, client: string): Promise<number> {
  const raw = await rawRequest(
    port,
    `GET / HTTP/1.1\r\nHost: localhost\r\nX-Client: ${client}\r\nConnection: close\r\n\r\n`,
    5000,
  );
  return Number(raw.slice(9, 12)) || 0;
}

describe("server.workers with [cluster]", { skip: !hasRedis }, () => {
  let redis: TestRedis;
  let www = "";
  before(async () => {
    redis = await startRedis();
    www = await Deno.makeTempDir({ prefix: "bws_workers_cluster_" });
    await Deno.writeTextFile(`${www}/index.html`, "hello\n");
  });
  after(async () => {
    await redis?.close();
    if (www) await Deno.remove(www, { recursive: true });
  });

  it("rate 5, burst 5: 20 requests over both workers let exactly 5 through", async () => {
    const bws = await WorkersBws.start(`
[server]
workers = 2

[management]
enabled = true
port = 0

[logging]
level = "warn"

[cluster]
redis_url = "${redis.url}"
key_prefix = "w:"
instance_name = "edge-w"

[[sites]]
name = "limited"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${www}"

[sites.rate_limit]
rate = 5
burst = 5
key = "header:X-Client"
`);
    try {
      // Each worker's first take loads the script into Redis: a client of its own for that.
      await waitFor("both workers to count in Redis", 10_000, async () => {
        await get(bws.port, `warm-up-${Math.random()}`);
        const [w1, w2] = await bws.perWorker();
        return w1 > 0 && w2 > 0 && (await redis.raw("KEYS", "w:rl:*")).includes("warm-up");
      });
      const before = await bws.perWorker();
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push(await get(bws.port, "c1"));
      const after = await bws.perWorker();
      expect(statuses.filter((s) => s === 200).length).toBe(5);
      expect(statuses.filter((s) => s === 429).length).toBe(15);
      expect(after[0]).toBeGreaterThan(before[0]);
      expect(after[1]).toBeGreaterThan(before[1]);
      const status = await bws.status();
      expect(status.instances.map((i: { name: string; self: boolean }) => [i.name, i.self]))
        .toEqual([["edge-w", true]]);
      expect(status.workers.length).toBe(2);
    } finally {
      await bws.stop();
    }
  });
});
