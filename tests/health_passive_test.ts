import { after, describe, it } from "node:test";
import { expect } from "expect";
import type { PassiveHealth } from "../src/health/host_state.ts";
import { UpstreamGroup } from "../src/balancer/group.ts";
import { HostRegistry } from "../src/health/registry.ts";
import { type Backend, deadAddress, startBackend } from "./helpers/backends.ts";
import { entries, NO_CHECKS, send } from "./helpers/upstream_group.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function group(urls: string[], passive: PassiveHealth) {
  return new UpstreamGroup({
    site: "main",
    name: "app",
    upstreams: entries("app", urls),
    method: "round_robin",
    healthCheck: NO_CHECKS,
    passiveHealth: passive,
    registry: new HostRegistry(),
  });
}

describe("passive health", () => {
  const backends: Backend[] = [];
  after(async () => {
    await Promise.all(backends.map((b) => b.stop()));
  });

  it("ejects a member after max_fails failures, then half-opens with a single probe", async () => {
    const good = startBackend("good");
    backends.push(good);
    const deadUrl = deadAddress();
    const g = group([deadUrl, good.url], { enabled: true, maxFails: 2, failTimeoutMs: 300 });
    const dead = g.members[0];
    // Round robin alternates; the dead member's requests fail until the second failure.
    expect((await send(g)).id).toBe("");
    expect(dead.state.isLive()).toBe(true);
    expect((await send(g)).id).toBe("good");
    expect((await send(g)).id).toBe("");
    expect(dead.state.isLive()).toBe(false);
    expect(dead.state.lastError).not.toBe("");
    // Ejected: every request goes to the good member.
    for (let i = 0; i < 10; i++) expect((await send(g)).id).toBe("good");
    expect(g.snapshot().members[0]).toMatchObject({ live: false, activeUp: true, requests: 2 });

    // After fail_timeout: half-open. Exactly one request is let through.
    await sleep(350);
    expect(dead.state.isLive()).toBe(true);
    const picks = [g.pick("x"), g.pick("x"), g.pick("x"), g.pick("x")];
    expect(picks.filter((m) => m === dead).length).toBe(1);
    // The probe fails: ejected again for another fail_timeout.
    dead.state.recordFailure("connection refused");
    expect(dead.state.isLive()).toBe(false);
    for (let i = 0; i < 4; i++) expect(g.pick("x")).not.toBe(dead);

    // The upstream comes back; after fail_timeout the probe succeeds and restores it fully.
    const port = Number(new URL(deadUrl).port);
    const revived = startBackend("revived", { port });
    backends.push(revived);
    await sleep(350);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((await send(g)).id);
    expect(seen.filter((x) => x === "revived").length).toBe(3);
    expect(seen.filter((x) => x === "good").length).toBe(3);
    expect(dead.state.isLive()).toBe(true);
    expect(dead.state.recentFailures()).toBe(0);
  });

  it("counts failures in a sliding window of fail_timeout", async () => {
    const g = group([deadAddress()], { enabled: true, maxFails: 2, failTimeoutMs: 150 });
    const m = g.members[0];
    expect((await send(g)).id).toBe("");
    await sleep(200); // the first failure leaves the window
    expect(m.state.recentFailures()).toBe(0);
    expect((await send(g)).id).toBe("");
    expect(m.state.isLive()).toBe(true);
    expect((await send(g)).id).toBe("");
    expect(m.state.isLive()).toBe(false);
    expect(g.pick("x")).toBeNull();
  });

  it("never ejects when passive_health is disabled", async () => {
    const g = group([deadAddress()], { enabled: false, maxFails: 1, failTimeoutMs: 10_000 });
    for (let i = 0; i < 5; i++) expect((await send(g)).id).toBe("");
    expect(g.members[0].state.isLive()).toBe(true);
    expect(g.members[0].state.totalFailures).toBe(5);
    expect(g.pick("x")).toBe(g.members[0]);
  });

  it("a probe that never reports does not keep the member out forever", async () => {
    const g = group([deadAddress()], { enabled: true, maxFails: 1, failTimeoutMs: 100 });
    const m = g.members[0];
    await send(g);
    expect(m.state.isLive()).toBe(false);
    await sleep(120);
    expect(g.pick("x")).toBe(m); // probe handed out, never reported
    expect(g.pick("x")).toBeNull();
    await sleep(120);
    expect(g.pick("x")).toBe(m);
  });
});
