import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { hasRedis, REDIS_SERVER, startRedis, type TestRedis } from "../../tests/helpers/redis.ts";
import { waitFor } from "../../tests/helpers/wait.ts";
import { connectRedis, type RedisLink } from "./redis_link.ts";
import { FENCED_SET, RedisLocks } from "./renewal_lock.ts";

if (!hasRedis) console.warn(`Skipping renewal lock tests: ${REDIS_SERVER} is not installed`);

describe("RedisLocks", { skip: !hasRedis }, () => {
  let redis: TestRedis;
  let a: RedisLink;
  let b: RedisLink;

  before(async () => {
    redis = await startRedis();
    a = connectRedis(redis.url);
    b = connectRedis(redis.url);
    expect(await a.waitUp(5000) && await b.waitUp(5000)).toBe(true);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.close();
  });

  it("is held by one instance at a time, kept alive past its ttl, free once released", async () => {
    const la = new RedisLocks(a, { ttlMs: 1000, owner: "a" });
    const lb = new RedisLocks(b, { ttlMs: 1000, owner: "b" });
    const lease = await la.acquire("lock:1");
    expect(lease).not.toBeNull();
    expect(lease!.token.startsWith("a/")).toBe(true);
    expect(await lb.acquire("lock:1")).toBeNull();
    await new Promise((r) => setTimeout(r, 2200)); // > 2 ttl: renewed meanwhile
    expect(lease!.held).toBe(true);
    expect(await lb.acquire("lock:1")).toBeNull();
    await lease!.release();
    expect(lease!.held).toBe(false);
    const next = await lb.acquire("lock:1");
    expect(next).not.toBeNull();
    await next!.release();
  });

  it("expires when its holder dies, and the dead holder's token no longer counts", async () => {
    const dying = connectRedis(redis.url);
    expect(await dying.waitUp(5000)).toBe(true);
    const lost: string[] = [];
    const la = new RedisLocks(dying, { ttlMs: 400, owner: "a", onLost: (k) => lost.push(k) });
    const lb = new RedisLocks(b, { ttlMs: 400, owner: "b" });
    const stale = await la.acquire("lock:2");
    expect(stale).not.toBeNull();
    const died = Date.now();
    await dying.close(); // a crash: no release, no renewal
    let lease = null;
    await waitFor("the lock to expire", 3000, async () => {
      lease = await lb.acquire("lock:2");
      return lease !== null;
    });
    const waited = Date.now() - died;
    expect(waited).toBeGreaterThan(250); // not before the (last renewed) ttl ran out
    expect(waited).toBeLessThan(1500);
    // `held` turns false when the ttl runs out; onLost comes with the next renewal attempt.
    await waitFor("the dead holder to see its lease lost", 2000, () => lost.length > 0);
    expect(stale!.held).toBe(false);
    expect(lost).toEqual(["lock:2"]);
    await lease!.release();
  });

  it("fences: a holder whose lock expired and was taken cannot renew, write or free it", async () => {
    const la = new RedisLocks(a, { ttlMs: 5000, owner: "a" });
    const lb = new RedisLocks(b, { ttlMs: 5000, owner: "b" });
    const old = await la.acquire("lock:3");
    await b.command(["DEL", "lock:3"]); // as if it had expired while "a" was paused
    const current = await lb.acquire("lock:3");
    expect(current).not.toBeNull();
    const write = (token: string, value: string) =>
      a.eval(FENCED_SET, ["lock:3", "data:3"], [token, value, "", ""]);
    expect(await write(old!.token, "from a")).toBe(0);
    expect(await a.command(["GET", "data:3"])).toBeNull();
    expect(await old!.renew()).toBe(false);
    expect(old!.held).toBe(false);
    await old!.release();
    expect(await b.command(["GET", "lock:3"])).toBe(current!.token);
    expect(await write(current!.token, "from b")).toBe(1);
    expect(await b.command(["GET", "data:3"])).toBe("from b");
    await current!.release();
    expect(await b.command(["EXISTS", "lock:3"])).toBe(0);
  });
});
