import { after, describe, it } from "node:test";
import { expect } from "expect";
import type { ActiveHealth } from "../src/health/active.ts";
import { UpstreamGroup } from "../src/balancer/group.ts";
import { HostRegistry } from "../src/health/registry.ts";
import { type Backend, startBackend } from "./helpers/backends.ts";
import { memoryLogger } from "./helpers/memory_logger.ts";
import { entries, PASSIVE, send } from "./helpers/upstream_group.ts";
import { waitFor } from "./helpers/wait.ts";

const CHECKS: ActiveHealth = {
  enabled: true,
  path: "/health",
  intervalMs: 100,
  timeoutMs: 500,
  retries: 2,
  rise: 2,
  expectStatus: "2xx",
};

function group(urls: string[], healthCheck: ActiveHealth, logger = memoryLogger()) {
  return new UpstreamGroup({
    site: "main",
    name: "app",
    upstreams: entries("app", urls),
    method: "round_robin",
    healthCheck,
    passiveHealth: PASSIVE,
    registry: new HostRegistry(),
    logger,
  });
}

describe("active health checks", () => {
  const backends: Backend[] = [];
  const groups: UpstreamGroup[] = [];
  after(async () => {
    await Promise.all(groups.map((g) => g.stop()));
    await Promise.all(backends.map((b) => b.stop()));
  });

  it("marks a stopped backend down within interval × retries and up again within interval × rise", async () => {
    const a = startBackend("a");
    const b = startBackend("b");
    backends.push(a, b);
    const log = memoryLogger();
    const g = group([a.url, b.url], CHECKS, log);
    groups.push(g);
    g.start();
    g.start(); // idempotent
    await waitFor("the first check of b", 1000, () => b.healthHits >= 1);
    const mb = g.members[1];
    expect(mb.state.activeUp).toBe(true);

    await b.stop();
    const downMs = await waitFor("mb down", 2000, () => !mb.state.activeUp);
    // interval × retries = 200 ms, plus the time of one in-progress check round.
    expect(downMs).toBeLessThan(CHECKS.intervalMs * CHECKS.retries + 500);
    expect(log.records).toContainEqual(expect.objectContaining({
      level: "warn",
      msg: "upstream down",
      fields: expect.objectContaining({ site: "main", group: "app", upstream: b.url }),
    }));
    // Down members get no traffic, with no failed request needed.
    for (let i = 0; i < 6; i++) expect((await send(g)).id).toBe("a");
    expect(g.snapshot().members[1]).toMatchObject({ live: false, activeUp: false });
    expect(mb.state.lastError).toMatch(/health check/);

    b.restart();
    const upMs = await waitFor("mb up", 2000, () => mb.state.activeUp);
    expect(upMs).toBeLessThan(CHECKS.intervalMs * CHECKS.rise + 500);
    expect(log.records).toContainEqual(
      expect.objectContaining({ level: "info", msg: "upstream up" }),
    );
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push((await send(g)).id);
    expect(seen.sort()).toEqual(["a", "a", "b", "b"]);
  });

  it("runs the first round at start(), so an unhealthy member is skipped right away", async () => {
    const a = startBackend("a");
    const b = startBackend("b");
    backends.push(a, b);
    b.healthStatus = 503;
    const g = group([a.url, b.url], { ...CHECKS, intervalMs: 30_000, retries: 1 });
    groups.push(g);
    g.start();
    const ms = await waitFor(
      "g.members[1] down",
      1000,
      () => !g.members[1].state.activeUp,
    );
    expect(ms).toBeLessThan(500);
    expect(b.healthHits).toBe(1);
    for (let i = 0; i < 4; i++) expect((await send(g)).id).toBe("a");
    await g.stop();
  });

  it("checks <base path><path> and honours expect_status ranges", async () => {
    const a = startBackend("a");
    backends.push(a);
    a.healthStatus = 302;
    const g2xx = group([a.url + "/prefix"], { ...CHECKS, retries: 1, path: "/healthz/health" });
    const g3xx = group([a.url + "/prefix"], { ...CHECKS, retries: 1, expectStatus: "200-399" });
    groups.push(g2xx, g3xx);
    g2xx.start();
    g3xx.start();
    await waitFor("g2xx.members[0] down", 1000, () => !g2xx.members[0].state.activeUp);
    await waitFor("6 checks of a", 2000, () => a.healthHits >= 6);
    expect(g3xx.members[0].state.activeUp).toBe(true);
    await Promise.all([g2xx.stop(), g3xx.stop()]);
  });

  it("marks a member down when the check times out", async () => {
    // A listener that accepts but never answers.
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const conns: Deno.Conn[] = [];
    const accepting = (async () => {
      try {
        for await (const c of l) conns.push(c);
      } catch { /* closed */ }
    })();
    try {
      const g = group([`http://127.0.0.1:${l.addr.port}`], {
        ...CHECKS,
        timeoutMs: 100,
        retries: 1,
      });
      g.start();
      await waitFor("g.members[0] down", 1000, () => !g.members[0].state.activeUp);
      expect(g.members[0].state.lastError).toMatch(/timed out/);
      await g.stop();
    } finally {
      l.close();
      for (const c of conns) c.close();
      await accepting;
    }
  });

  it("stop() ends the checks: no further requests reach the backend", async () => {
    const a = startBackend("a");
    backends.push(a);
    const g = group([a.url], { ...CHECKS, intervalMs: 50 });
    g.start();
    await waitFor("3 checks of a", 1000, () => a.healthHits >= 3);
    await g.stop();
    const hits = a.healthHits;
    await new Promise((r) => setTimeout(r, 200));
    expect(a.healthHits).toBe(hits);
    await g.stop(); // idempotent
  });

  it("does nothing when checks are disabled", async () => {
    const a = startBackend("a");
    backends.push(a);
    const g = group([a.url], { ...CHECKS, enabled: false });
    g.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(a.healthHits).toBe(0);
    await g.stop();
  });
});
