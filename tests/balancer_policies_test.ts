import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import type { LbMethod } from "../src/config/types.ts";
import { UpstreamGroup } from "../src/balancer/group.ts";
import { HostRegistry } from "../src/health/registry.ts";
import { type Backend, deadAddress, startBackend } from "./helpers/backends.ts";
import { entries, NO_CHECKS, PASSIVE, send } from "./helpers/upstream_group.ts";

function group(
  method: LbMethod,
  urls: string[],
  weights: number[] = [],
  registry = new HostRegistry(),
) {
  return new UpstreamGroup({
    site: "main",
    name: "app",
    upstreams: entries("app", urls, weights),
    method,
    healthCheck: NO_CHECKS,
    passiveHealth: PASSIVE,
    registry,
  });
}

describe("load balancing over real backends", () => {
  let backends: Backend[] = [];
  let urls: string[] = [];
  before(() => {
    backends = ["a", "b", "c", "d"].map((id) => startBackend(id, { holdPath: "/slow" }));
    urls = backends.map((b) => b.url);
  });
  after(async () => {
    await Promise.all(backends.map((b) => b.stop()));
  });

  it("round_robin rotates exactly through 3 members over 30 requests", async () => {
    const g = group("round_robin", urls.slice(0, 3));
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) seen.push((await send(g)).id);
    expect(seen.join("")).toBe("abc".repeat(10));
  });

  it("weighted 3:1 serves exactly 30:10 over 40 requests, interleaved a a b a", async () => {
    const g = group("weighted", urls.slice(0, 2), [3, 1]);
    const seen: string[] = [];
    for (let i = 0; i < 40; i++) seen.push((await send(g)).id);
    const s = seen.join("");
    expect(s.slice(0, 4)).toBe("aaba");
    expect([...s].filter((c) => c === "a").length).toBe(30);
    expect([...s].filter((c) => c === "b").length).toBe(10);
    expect(s).not.toContain("aaaa");
    // Every window of 4 consecutive requests holds exactly three a and one b.
    for (let i = 0; i + 4 <= 40; i += 4) expect(s.slice(i, i + 4).split("b").length - 1).toBe(1);
  });

  it("weighted skips a member that refuses connections and keeps the others' ratio", async () => {
    const g = group("weighted", [urls[0], deadAddress(), urls[1]], [2, 5, 1]);
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) seen.push((await send(g, "127.0.0.1", 2)).id);
    expect(seen.filter((x) => x === "a").length).toBe(20);
    expect(seen.filter((x) => x === "b").length).toBe(10);
  });

  it("least_connections avoids a member that has requests in flight", async () => {
    const g = group("least_connections", urls.slice(0, 3));
    // Hold two slow requests on whichever member comes first.
    const slow = [send(g, "x", 0, "/slow"), send(g, "x", 0, "/slow")];
    const busy = g.members.filter((m) => m.state.inFlight > 0);
    expect(busy.length).toBe(2);
    const idle = g.members.find((m) => m.state.inFlight === 0)!;
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) seen.push((await send(g)).id);
    const idleId = backends.find((b) => b.url === idle.target.url)!.id;
    expect(new Set(seen)).toEqual(new Set([idleId]));
    backends.forEach((b) => b.release());
    await Promise.all(slow);
    // Equal loads again: ties rotate over all three.
    const after: string[] = [];
    for (let i = 0; i < 6; i++) after.push((await send(g)).id);
    expect(new Set(after)).toEqual(new Set(["a", "b", "c"]));
  });

  it("least_connections divides the load by weight", () => {
    const g = group("least_connections", urls.slice(0, 2), [4, 1]);
    const [a, b] = g.members;
    a.state.inFlight = 3;
    b.state.inFlight = 1; // 3/4 < 1/1
    try {
      expect(g.pick("x")).toBe(a);
      b.state.webSockets = 0;
      a.state.webSockets = 2; // 5/4 > 1/1
      expect(g.pick("x")).toBe(b);
    } finally {
      a.state.inFlight = b.state.inFlight = a.state.webSockets = 0;
    }
  });

  it("ip_hash keeps each client on one member", async () => {
    const g = group("ip_hash", urls.slice(0, 3));
    const clients = ["198.51.100.1", "198.51.100.2", "2001:db8::7", "203.0.113.99"];
    for (const ip of clients) {
      const first = (await send(g, ip)).id;
      for (let i = 0; i < 5; i++) expect((await send(g, ip)).id).toBe(first);
    }
  });

  it("ip_hash moves about a quarter of clients, only to the new member, when a 4th is added", () => {
    const registry = new HostRegistry();
    const three = group("ip_hash", urls.slice(0, 3), [], registry);
    const four = group("ip_hash", urls.slice(0, 4), [], registry);
    const ips = Array.from({ length: 1000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${i % 7}`);
    let moved = 0;
    const spread = new Map<string, number>();
    for (const ip of ips) {
      const before = three.pick(ip)!.target.url;
      const now = four.pick(ip)!.target.url;
      spread.set(before, (spread.get(before) ?? 0) + 1);
      if (before !== now) {
        moved++;
        expect(now).toBe(urls[3]);
      }
    }
    expect(moved).toBeGreaterThanOrEqual(150);
    expect(moved).toBeLessThanOrEqual(350);
    // And the 3-member spread is not lopsided.
    for (const n of spread.values()) expect(n).toBeGreaterThan(200);
  });

  it("ip_hash sends a client elsewhere only while its member is down", async () => {
    const dead = deadAddress();
    const g = group("ip_hash", [urls[0], dead, urls[1], urls[2]]);
    const ips = Array.from({ length: 40 }, (_, i) => `192.0.2.${i}`);
    const onDead = ips.filter((ip) => g.pick(ip)!.target.url === dead);
    expect(onDead.length).toBeGreaterThan(0);
    const others = new Map(
      ips.filter((ip) => !onDead.includes(ip)).map((ip) => [ip, g.pick(ip)!.target.url]),
    );
    // Its clients fail (refused) until passive health ejects it (max_fails = 3) ...
    for (let i = 0; i < 3; i++) expect((await send(g, onDead[0])).id).toBe("");
    expect(g.members[1].state.isLive()).toBe(false);
    // ... then they land on live members, and nobody else moves.
    for (const ip of onDead) expect(["a", "b", "c"]).toContain((await send(g, ip)).id);
    for (const [ip, url] of others) expect(g.pick(ip)!.target.url).toBe(url);
  });

  it("random_two prefers the less loaded member", async () => {
    const g = group("random_two", urls.slice(0, 3));
    const a = g.members[0];
    a.state.inFlight += 1; // as if one request were in flight there
    const slow = fetch(a.target.url + "/slow");
    try {
      const seen: string[] = [];
      for (let i = 0; i < 60; i++) seen.push((await send(g)).id);
      expect(seen).not.toContain("a");
      expect(seen).toContain("b");
      expect(seen).toContain("c");
    } finally {
      a.state.inFlight -= 1;
      backends[0].release();
      await (await slow).body?.cancel();
    }
    const seen: string[] = [];
    for (let i = 0; i < 90; i++) seen.push((await send(g)).id);
    expect(new Set(seen)).toEqual(new Set(["a", "b", "c"]));
  });

  it("first sticks to the first member and fails over in file order", async () => {
    const dead1 = deadAddress();
    const g = group("first", [urls[0], dead1, urls[1], urls[2]]);
    for (let i = 0; i < 5; i++) expect((await send(g)).id).toBe("a");
    // First member stops: requests go to the next live one in order (the dead one is skipped
    // after a connect failure).
    const a = startBackend("a2");
    const g2 = group("first", [a.url, dead1, urls[1], urls[2]]);
    expect((await send(g2)).id).toBe("a2");
    await a.stop();
    expect((await send(g2, "x", 3)).id).toBe("b");
    expect(g2.members[0].state.totalFailures).toBe(1);
    expect(g2.members[1].state.totalFailures).toBe(1);
    // Once both are ejected, every request goes straight to "b".
    for (let i = 0; i < 6; i++) await send(g2, "x", 3);
    expect(g2.members[0].state.isLive()).toBe(false);
    expect(g2.members[1].state.isLive()).toBe(false);
    expect((await send(g2)).id).toBe("b");
  });

  it("returns null from pick() when every member is excluded or dead", () => {
    const g = group("round_robin", urls.slice(0, 2));
    expect(g.pick("x", new Set(g.members))).toBeNull();
  });
});
