import { after, describe, it } from "node:test";
import { expect } from "expect";
import type { LbMethod } from "../src/config/types.ts";
import type { ActiveHealth } from "../src/health/active.ts";
import { UpstreamGroup } from "../src/balancer/group.ts";
import { HostRegistry } from "../src/health/registry.ts";
import { HostTable } from "../src/health/host_cells.ts";
import { type Backend, deadAddress, startBackend } from "./helpers/backends.ts";
import { entries, NO_CHECKS, PASSIVE, send } from "./helpers/upstream_group.ts";
import { waitFor } from "./helpers/wait.ts";

function build(
  registry: HostRegistry,
  urls: string[],
  opts: { method?: LbMethod; healthCheck?: ActiveHealth; site?: string } = {},
) {
  return new UpstreamGroup({
    site: opts.site ?? "main",
    name: "app",
    upstreams: entries("app", urls),
    method: opts.method ?? "round_robin",
    healthCheck: opts.healthCheck ?? NO_CHECKS,
    passiveHealth: PASSIVE,
    registry,
  });
}

describe("HostRegistry across reloads", () => {
  const backends: Backend[] = [];
  after(async () => {
    await Promise.all(backends.map((b) => b.stop()));
  });

  it("keeps health and counters when the group is rebuilt with the same URLs", async () => {
    const a = startBackend("a");
    backends.push(a);
    const dead = deadAddress();
    const registry = new HostRegistry();
    const g1 = build(registry, [a.url, dead]);
    for (let i = 0; i < 6; i++) await send(g1); // 3 successes on a, 3 failures eject dead
    expect(g1.members[1].state.isLive()).toBe(false);
    g1.members[0].state.webSockets = 1;

    // Reload: a new group (another policy even), same URLs.
    const g2 = build(registry, [a.url, dead], { method: "least_connections" });
    expect(g2.members[0].state).toBe(g1.members[0].state);
    expect(g2.members[0].state.totalRequests).toBe(3);
    expect(g2.members[0].state.webSockets).toBe(1);
    expect(g2.members[1].state.isLive()).toBe(false);
    expect((await send(g2)).id).toBe("a");
    expect(g2.snapshot().members.map((m) => m.requests)).toEqual([4, 3]);
    expect(registry.size).toBe(2);
  });

  it("drops the state of removed members on retain() and starts fresh if they return", async () => {
    const registry = new HostRegistry();
    const dead = deadAddress();
    const keepUrl = deadAddress();
    const g1 = build(registry, [keepUrl, dead]);
    for (let i = 0; i < 6; i++) await send(g1);
    const g2 = build(registry, [keepUrl]);
    registry.retain(new Set(g2.keys));
    expect(registry.keys()).toEqual([`main/app/${keepUrl}`]);
    expect(g2.members[0].state.totalFailures).toBe(3);
    const g3 = build(registry, [keepUrl, dead]);
    expect(g3.members[1].state.totalRequests).toBe(0);
    expect(g3.members[1].state.isLive()).toBe(true);
  });

  it("members removed by reloads give their shared slots back: changing upstreams never fills the table", () => {
    const table = HostTable.create(3, 16 * 1024); // room for a few dozen members
    let full = false;
    const registry = new HostRegistry(table, () => (full = true));
    // 500 reloads, each replacing the group's two members with new addresses.
    for (let reload = 0; reload < 500; reload++) {
      const g = build(registry, [
        `http://10.0.${reload >> 8}.${reload & 255}:1`,
        `http://h${reload}:2`,
      ]);
      registry.retain(new Set(g.keys)); // grace period 0: the old members' slots are free at once
      expect(registry.slots().length).toBe(2);
    }
    expect(full).toBe(false);
    expect(table.used).toBeLessThan(16 * 1024);
  });

  it("keys state by site and group, so the same URL elsewhere is independent", () => {
    const registry = new HostRegistry();
    const url = deadAddress();
    const g1 = build(registry, [url], { site: "one" });
    const g2 = build(registry, [url], { site: "two" });
    expect(g1.keys).toEqual([`one/app/${url}`]);
    expect(g1.members[0].state).not.toBe(g2.members[0].state);
    const g3 = build(registry, [url, url], { site: "one" });
    expect(g3.keys).toEqual([`one/app/${url}`, `one/app/${url}#1`]);
  });

  it("keeps the active verdict across a rebuild; the new group takes over the checks", async () => {
    const a = startBackend("a");
    backends.push(a);
    a.healthStatus = 500;
    const checks: ActiveHealth = {
      enabled: true,
      path: "/health",
      intervalMs: 100,
      timeoutMs: 500,
      retries: 1,
      rise: 2,
      expectStatus: "2xx",
    };
    const registry = new HostRegistry();
    const g1 = build(registry, [a.url], { healthCheck: checks });
    g1.start();
    await waitFor("g1.members[0] down", 1000, () => !g1.members[0].state.activeUp);
    const g2 = build(registry, [a.url], { healthCheck: checks });
    await g1.stop();
    expect(g2.members[0].state.activeUp).toBe(false);
    expect(g2.pick("x")).toBeNull();
    g2.start();
    a.healthStatus = 200;
    await waitFor("g2.members[0] up", 1000, () => g2.members[0].state.activeUp);
    await g2.stop();
    // Checks switched off by a reload: the member is up again at once.
    a.healthStatus = 500;
    const g3 = build(registry, [a.url], { healthCheck: checks });
    g3.start();
    await waitFor("g3.members[0] down", 1000, () => !g3.members[0].state.activeUp);
    await g3.stop();
    const g4 = build(registry, [a.url]);
    expect(g4.pick("x")).toBeNull(); // not live until the new plan is started
    g4.start();
    expect(g4.pick("x")).toBe(g4.members[0]);
  });

  it("ignores the old group's checks once the new group has started", async () => {
    const a = startBackend("a");
    backends.push(a);
    a.healthStatus = 500;
    const checks: ActiveHealth = {
      enabled: true,
      path: "/health",
      intervalMs: 30,
      timeoutMs: 500,
      retries: 1,
      rise: 1,
      expectStatus: "2xx",
    };
    const registry = new HostRegistry();
    const old = build(registry, [a.url], { healthCheck: checks });
    old.start();
    await waitFor("old.members[0] down", 1000, () => !old.members[0].state.activeUp);
    // Reload to checks disabled; the old checker keeps running for a while (failing checks).
    const next = build(registry, [a.url]);
    next.start();
    const hits = a.healthHits;
    await waitFor("hits + 3 checks of a", 1000, () => a.healthHits >= hits + 3);
    expect(next.pick("x")).toBe(next.members[0]);
    await old.stop();
  });
});
