import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { hasRedis, REDIS_SERVER, startRedis, type TestRedis } from "../../tests/helpers/redis.ts";
import { connectRedis, type RedisLink } from "./redis_link.ts";
import { InstanceRegistry } from "./instances.ts";

if (!hasRedis) console.warn(`Skipping instance registry tests: ${REDIS_SERVER} is not installed`);

describe("InstanceRegistry", { skip: !hasRedis }, () => {
  let redis: TestRedis;
  let link: RedisLink;

  before(async () => {
    redis = await startRedis();
    link = connectRedis(redis.url);
    expect(await link.waitUp(5000)).toBe(true);
  });

  after(async () => {
    await link?.close();
    await redis?.close();
  });

  it("lists every instance with its version and last beat; a silent one turns stale; a stopped one leaves", async () => {
    const key = "t1:instances";
    const a = new InstanceRegistry(link, { key, name: "edge-1", version: "1.0.0" });
    const b = new InstanceRegistry(link, {
      key,
      name: "edge-2",
      version: "1.1.0",
      intervalMs: 100,
    });
    await b.beat();
    await a.beat();
    const list = a.list();
    expect(list.map((i) => [i.name, i.version, i.state, i.self])).toEqual([
      ["edge-1", "1.0.0", "up", true],
      ["edge-2", "1.1.0", "up", false],
    ]);
    expect(Math.abs(Date.parse(list[1].lastSeen) - Date.now())).toBeLessThan(2000);
    // edge-2 beats every 100 ms; after 3 missed beats edge-1 lists it as stale.
    await new Promise((r) => setTimeout(r, 400));
    await a.beat();
    expect(a.list()[1].state).toBe("stale");
    await b.beat();
    await b.stop();
    await a.beat();
    expect(a.list().map((i) => i.name)).toEqual(["edge-1"]);
    await a.stop();
    expect(await link.command(["HLEN", key])).toBe(0);
  });

  it("reports two live instances using one name", async () => {
    const clashes: string[] = [];
    const opts = { key: "t2:instances", version: "1", onNameClash: (n: string) => clashes.push(n) };
    const a = new InstanceRegistry(link, { ...opts, name: "same" });
    const b = new InstanceRegistry(link, { ...opts, name: "same" });
    await a.beat();
    await b.beat();
    await a.beat();
    expect(clashes).toEqual(["same", "same"]);
  });

  it("keeps the last list while Redis is down", async () => {
    const a = new InstanceRegistry(link, { key: "t3:instances", name: "x", version: "1" });
    const b = new InstanceRegistry(link, { key: "t3:instances", name: "y", version: "1" });
    await b.beat();
    await a.beat();
    await redis.kill();
    try {
      await expect(a.beat()).rejects.toThrow();
      expect(a.list().map((i) => i.name)).toEqual(["x", "y"]);
    } finally {
      await redis.restart();
    }
  });
});
