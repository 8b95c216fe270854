/**
 * SPEC 4-5 end to end: a member dies under load and comes back. Connect failures are retried on
 * another member (the client sees no failed GET), and active health checks bring the restarted
 * member back within about interval × rise.
 *
 * @module
 */

import { after, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { startBws } from "./helpers/bws.ts";
import { balancedSite, count, memberStats, who } from "./helpers/balancing.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a member dies and restarts under load (SPEC 4, 5)", () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("no GET fails while a member is down; health checks bring it back quickly", async () => {
    const a = startEchoBackend("a");
    const c = startEchoBackend("c");
    let b: Backend | null = startEchoBackend("b");
    const bPort = b.port;
    cleanup.push(() => a.close(), () => c.close(), () => b?.close());
    const proxy = await startBws(balancedSite(
      [a, b, c],
      "round_robin",
      `
[sites.proxy.health_check]
enabled = true
interval = 0.2
rise = 2
retries = 2
timeout = 0.5
`,
      `
[management]
enabled = true
port = 0
`,
    ));
    cleanup.push(() => proxy.close());

    const statuses: number[] = [];
    const ids: string[] = [];
    const errors: string[] = [];
    const stopAt = performance.now() + 3000;
    const loop = async (n: number) => {
      for (let i = 0; i < 20_000 && performance.now() < stopAt; i++) {
        try {
          const res = await fetch(proxy.url(`/load/${n}/${i}`));
          statuses.push(res.status);
          ids.push(res.headers.get("x-backend") ?? `status:${res.status}`);
          await res.arrayBuffer();
        } catch (err) {
          errors.push(String(err));
        }
      }
    };
    const loops = Array.from({ length: 8 }, (_, n) => loop(n));

    await sleep(800);
    const killedAt = ids.length;
    await b.close();
    b = null;
    await sleep(1000);
    const downIds = ids.slice(killedAt);
    // Restart on the same port; note when the first proxied (non-health) request arrives.
    const restartedAt = performance.now();
    let firstProxied = 0;
    b = startEchoBackend("b", (_req: Request, s: Seen) => {
      if (!s.path.startsWith("/health") && firstProxied === 0) firstProxied = performance.now();
      return undefined;
    }, bPort);
    await Promise.all(loops);

    expect(errors).toEqual([]);
    expect(statuses.length).toBeGreaterThan(300);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // While b was down (after its in-flight requests drained) only a and c answered.
    expect(count(downIds.slice(50)).b ?? 0).toBe(0);
    // Back within interval × rise (0.4 s) plus slack for the check timer phase.
    expect(firstProxied).toBeGreaterThan(0);
    const backAfter = firstProxied - restartedAt;
    expect(backAfter).toBeLessThan(1000);
    console.log(
      `requests ${statuses.length}, by backend ${JSON.stringify(count(ids))},` +
        ` b back after ${backAfter.toFixed(0)} ms`,
    );

    // Every member's in-flight count is back to 0 after the load.
    const members = await memberStats(proxy);
    expect(members.map((m) => m.inFlight)).toEqual([0, 0, 0]);
    expect(members.every((m) => m.live)).toBe(true);
  });

  it("first fails over to the spare and back to the primary once checks see it up", async () => {
    let primary: Backend | null = startEchoBackend("p");
    const port = primary.port;
    const spare = startEchoBackend("s");
    cleanup.push(() => spare.close(), () => primary?.close());
    const proxy = await startBws(balancedSite(
      [primary, spare],
      "first",
      "[sites.proxy.health_check]\nenabled = true\ninterval = 0.2\nrise = 2\ntimeout = 0.5\n",
    ));
    cleanup.push(() => proxy.close());
    const ids = async (n: number) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(await who(proxy.url(`/f/${i}`)));
      return out;
    };
    expect(count(await ids(5))).toEqual({ p: 5 });
    await primary.close();
    primary = null;
    expect(count(await ids(10))).toEqual({ s: 10 });
    primary = startEchoBackend("p", undefined, port);
    const t0 = performance.now();
    let back = "";
    while (back !== "p" && performance.now() - t0 < 2000) {
      back = await who(proxy.url("/poll"));
      if (back !== "p") await sleep(20);
    }
    expect(back).toBe("p");
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(count(await ids(5))).toEqual({ p: 5 });
  });
});
