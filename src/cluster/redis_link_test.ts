import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { hasRedis, REDIS_SERVER, startRedis, type TestRedis } from "../../tests/helpers/redis.ts";
import { waitFor } from "../../tests/helpers/wait.ts";
import { connectRedis, LuaScript, type RedisLink, RedisUnavailableError } from "./redis_link.ts";

if (!hasRedis) console.warn(`Skipping Redis link tests: ${REDIS_SERVER} is not installed`);

describe("RedisLink against a real redis-server", { skip: !hasRedis }, () => {
  let redis: TestRedis;
  let link: RedisLink;

  before(async () => {
    redis = await startRedis();
    link = connectRedis(redis.url, { requestTimeoutMs: 100, maxReconnectDelayMs: 200 });
    expect(await link.waitUp(5000)).toBe(true);
  });

  after(async () => {
    await link?.close();
    await redis?.close();
  });

  it("sends commands and runs scripts, loading a script the server forgot", async () => {
    expect(await link.command(["SET", "k", "v", "PX", 10_000])).toBe("OK");
    expect(await link.command(["GET", "k"])).toBe("v");
    expect(await link.command(["GET", "missing"])).toBe(null);
    const script = new LuaScript("return {KEYS[1], tonumber(ARGV[1]) + 1}");
    expect(await link.eval(script, ["a"], [41])).toEqual(["a", 42]);
    await link.command(["SCRIPT", "FLUSH"]);
    expect(await link.eval(script, ["b"], [1])).toEqual(["b", 2]);
    // A Redis error reply is passed on as it is, and leaves the link usable.
    await expect(link.command(["INCR", "k"])).rejects.toThrow(/not an integer/);
    expect(link.usable).toBe(true);
  });

  it("bounds an urgent command on a stalled server, then recovers by itself", async () => {
    redis.pause();
    try {
      const started = performance.now();
      const err = await link.command(["GET", "k"], { urgent: true }).catch((e) => e);
      const waited = performance.now() - started;
      expect(err).toBeInstanceOf(RedisUnavailableError);
      expect(waited).toBeGreaterThanOrEqual(90);
      expect(waited).toBeLessThan(400);
      expect(link.usable).toBe(false);
      expect(link.state).toBe("slow");
    } finally {
      redis.resume();
    }
    await waitFor("the link to be usable again", 5000, () => link.usable);
    expect(await link.command(["GET", "k"], { urgent: true })).toBe("v");
  });

  it("fails at once while Redis is down, reconnects when it is back, resyncs subscribers", async () => {
    const messages: string[] = [];
    let resyncs = 0;
    const unsubscribe = link.subscribe("ch", (m) => messages.push(m), () => resyncs++);
    await waitFor("the subscription", 5000, async () => {
      await link.command(["PUBLISH", "ch", "hello"]);
      return messages.length > 0;
    });
    expect(messages[0]).toBe("hello");

    await redis.kill();
    await waitFor("the link to notice", 5000, () => link.state === "down");
    const started = performance.now();
    await expect(link.command(["GET", "k"], { urgent: true })).rejects.toBeInstanceOf(
      RedisUnavailableError,
    );
    expect(performance.now() - started).toBeLessThan(50);

    await redis.restart();
    await waitFor("the link to reconnect", 5000, () => link.usable);
    await waitFor("the subscriber to resync", 5000, () => resyncs === 1);
    messages.length = 0;
    await waitFor("messages after the restart", 5000, async () => {
      await link.command(["PUBLISH", "ch", "again"]);
      return messages.includes("again");
    });
    unsubscribe();
  });
});
