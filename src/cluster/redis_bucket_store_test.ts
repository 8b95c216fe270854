import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { hasRedis, REDIS_SERVER, startRedis, type TestRedis } from "../../tests/helpers/redis.ts";
import { waitFor } from "../../tests/helpers/wait.ts";
import type { TakeResult } from "../edge/bucket_store.ts";
import { connectRedis, type RedisLink } from "./redis_link.ts";
import { RedisBucketStore, SharedBuckets } from "./redis_bucket_store.ts";

if (!hasRedis) console.warn(`Skipping Redis bucket tests: ${REDIS_SERVER} is not installed`);

describe("RedisBucketStore", { skip: !hasRedis }, () => {
  let redis: TestRedis;
  let a: RedisLink;
  let b: RedisLink;
  let n = 0;
  /** A fresh key prefix per test. */
  const prefix = () => `t${++n}:`;

  before(async () => {
    redis = await startRedis();
    // Two links stand for two bws instances.
    a = connectRedis(redis.url, { maxReconnectDelayMs: 100 });
    b = connectRedis(redis.url, { maxReconnectDelayMs: 100 });
    expect(await a.waitUp(5000) && await b.waitUp(5000)).toBe(true);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.close();
  });

  it("shares one bucket between instances: rate 5, burst 5, 20 takes → exactly 5 pass", async () => {
    // Generous deadlines: this is about counting, and a take past the deadline is counted locally.
    const la = connectRedis(redis.url, { requestTimeoutMs: 2000 });
    const lb = connectRedis(redis.url, { requestTimeoutMs: 2000 });
    expect(await la.waitUp(5000) && await lb.waitUp(5000)).toBe(true);
    const p = prefix();
    const sa = new RedisBucketStore({ rate: 5, burst: 5 }, la, p);
    const sb = new RedisBucketStore({ rate: 5, burst: 5 }, lb, p);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? sa : sb).take("1.2.3.4", 1, Date.now())),
    );
    expect(results.filter((r) => r.allowed).length).toBe(5);
    expect(sa.fallbackTakes + sb.fallbackTakes).toBe(0);
    // Another key has its own bucket.
    expect((await sa.take("5.6.7.8", 1, Date.now())).allowed).toBe(true);
    await la.close();
    await lb.close();
  });

  it("answers like the local store: remaining counts down, a refusal says when to retry", async () => {
    const s = new RedisBucketStore({ rate: 5, burst: 3 }, a, prefix());
    const seen: TakeResult[] = [];
    for (let i = 0; i < 4; i++) seen.push(await s.take("k", 1, Date.now()));
    expect(seen.map((r) => r.allowed)).toEqual([true, true, true, false]);
    expect(seen.slice(0, 3).map((r) => r.remaining)).toEqual([2, 1, 0]);
    const refused = seen[3];
    expect(refused.retryAfterMs).toBeGreaterThan(100);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(200);
    expect(refused.resetMs).toBeGreaterThan(400);
    expect(refused.resetMs).toBeLessThanOrEqual(600);
    await new Promise((r) => setTimeout(r, refused.retryAfterMs + 20));
    expect((await s.take("k", 1, Date.now())).allowed).toBe(true);
  });

  it("never waits past the deadline on a stalled Redis, and merges local takes when it answers", async () => {
    const p = prefix();
    const shared = new SharedBuckets(a, p);
    const s = shared.factory({ rate: 1, burst: 3, key: "ip" }, "site/x") as RedisBucketStore;
    redis.pause();
    try {
      const started = performance.now();
      const first = await s.take("c", 1, Date.now());
      expect(performance.now() - started).toBeLessThan(400);
      expect(first.allowed).toBe(true); // answered by the local bucket
      // While the link is known to be slow, takes do not even ask (answered synchronously).
      const next = s.take("c", 1, Date.now());
      expect(next instanceof Promise).toBe(false);
      expect((s.take("c", 1, Date.now()) as TakeResult).allowed).toBe(true);
      expect((s.take("c", 1, Date.now()) as TakeResult).allowed).toBe(false);
      expect(s.fallbackTakes).toBe(4);
    } finally {
      redis.resume();
    }
    await waitFor("the link to be usable again", 5000, () => a.usable);
    // The burst spent during the stall is spent fleet-wide too.
    await waitFor("the catch-up", 5000, async () => {
      const ttl = await b.command(["PTTL", `${p}site/x:c`]);
      return typeof ttl === "number" && ttl > 2000;
    });
    const other = new RedisBucketStore({ rate: 1, burst: 3 }, b, `${p}site/x:`);
    expect((await other.take("c", 1, Date.now())).allowed).toBe(false);
    shared.close();
  });

  it("keeps answering locally while Redis is down, then uses Redis again", async () => {
    const s = new RedisBucketStore({ rate: 100, burst: 100 }, a, prefix());
    await redis.kill();
    try {
      await waitFor("the link to notice", 5000, () => a.state === "down");
      let failed = 0;
      for (let i = 0; i < 50; i++) {
        const r = s.take(`k${i % 5}`, 1, Date.now());
        if (r instanceof Promise || !r.allowed) failed++;
      }
      expect(failed).toBe(0);
    } finally {
      await redis.restart();
    }
    await waitFor("the link to reconnect", 5000, () => a.usable);
    const before = s.fallbackTakes;
    const r = await s.take("fresh", 1, Date.now());
    expect(r.allowed).toBe(true);
    expect(s.fallbackTakes).toBe(before);
  });
});
