/**
 * SPEC 5 end to end: every load-balancing method through a running bws, against real backends
 * that report their id.
 *
 * @module
 */

import { after, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { balancedSite, count, who } from "./helpers/balancing.ts";

describe("load balancing methods through bws (SPEC 5)", () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  function backend(id: string, custom?: Parameters<typeof startEchoBackend>[1]): Backend {
    const b = startEchoBackend(id, custom);
    cleanup.push(() => b.close());
    return b;
  }
  async function bws(toml: string): Promise<TestBws> {
    const b = await startBws(toml);
    cleanup.push(() => b.close());
    return b;
  }

  it("round_robin rotates exactly through 3 backends over 30 requests", async () => {
    const bs = ["a", "b", "c"].map((id) => backend(id));
    const proxy = await bws(balancedSite(bs, "round_robin"));
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await who(proxy.url(`/rr/${i}`)));
    expect(ids.join("")).toBe("abc".repeat(10));
    for (const b of bs) expect(b.seen.length).toBe(10);
  });

  it("weighted 3:1 serves exactly 30:10 over 40 requests, never 4 in a row", async () => {
    const heavy = backend("H");
    const light = backend("L");
    const proxy = await bws(
      balancedSite([{ url: heavy.url, weight: 3 }, { url: light.url, weight: 1 }], "weighted"),
    );
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await who(proxy.url("/w")));
    const s = ids.join("");
    expect(count(ids)).toEqual({ H: 30, L: 10 });
    expect(s).not.toContain("HHHH");
    for (let i = 0; i < 40; i += 4) expect(count(ids.slice(i, i + 4))).toEqual({ H: 3, L: 1 });
    expect(heavy.seen.length).toBe(30);
    expect(light.seen.length).toBe(10);
  });

  it("least_connections sends new requests to the others while one holds 5 slow ones", async () => {
    // Every backend parks "/slow" requests until the test opens its gate.
    const gates = new Map<string, PromiseWithResolvers<void>>();
    const parked = new Map<string, number>();
    const make = (id: string) => {
      gates.set(id, Promise.withResolvers<void>());
      parked.set(id, 0);
      return backend(id, (req) => {
        if (!new URL(req.url).pathname.startsWith("/slow")) return undefined;
        parked.set(id, parked.get(id)! + 1);
        return gates.get(id)!.promise.then(() =>
          new Response("slow", { headers: { "x-backend": id } })
        );
      });
    };
    const bs = ["a", "b", "c"].map(make);
    const proxy = await bws(balancedSite(bs, "least_connections"));
    try {
      const slow = Array.from({ length: 15 }, (_, i) => who(proxy.url(`/slow/${i}`)));
      // least_connections spreads the 15 parked requests evenly: 5 on each.
      for (let i = 0; i < 100 && [...parked.values()].some((n) => n < 5); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(Object.fromEntries(parked)).toEqual({ a: 5, b: 5, c: 5 });
      // b and c finish theirs; a still holds 5.
      let settled = 0;
      for (const p of slow) p.then(() => settled++, () => settled++);
      gates.get("b")!.resolve();
      gates.get("c")!.resolve();
      for (let i = 0; i < 100 && settled < 10; i++) await new Promise((r) => setTimeout(r, 20));
      expect(settled).toBe(10);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await who(proxy.url(`/fast/${i}`)));
      expect(count(ids)).toEqual({ b: 5, c: 5 });
      gates.get("a")!.resolve();
      expect(count(await Promise.all(slow))).toEqual({ a: 5, b: 5, c: 5 });
    } finally {
      for (const g of gates.values()) g.resolve();
    }
  });

  it("ip_hash keeps one client IP (from X-Forwarded-For) on one member; clients spread", async () => {
    const bs = ["a", "b", "c"].map((id) => backend(id));
    const proxy = await bws(
      balancedSite(bs, "ip_hash", "", `trusted_proxies = ["127.0.0.1"]`),
    );
    for (const client of ["203.0.113.7", "203.0.113.99", "2001:db8::5"]) {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        ids.push(await who(proxy.url(`/ip/${i}`), { "x-forwarded-for": client }));
      }
      expect(new Set(ids).size).toBe(1);
      expect(ids[0]).toMatch(/^[abc]$/);
    }
    // 60 different clients reach every member, none gets more than half.
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      ids.push(await who(proxy.url("/spread"), { "x-forwarded-for": `198.51.100.${i}` }));
    }
    const c = count(ids);
    expect(Object.keys(c).sort()).toEqual(["a", "b", "c"]);
    for (const n of Object.values(c)) expect(n).toBeLessThanOrEqual(30);
    // The same 60 clients land on the same members a second time.
    for (let i = 0; i < 60; i++) {
      expect(await who(proxy.url("/again"), { "x-forwarded-for": `198.51.100.${i}` }))
        .toBe(ids[i]);
    }
  });

  it("ip_hash ignores X-Forwarded-For from an untrusted peer", async () => {
    const bs = ["a", "b", "c"].map((id) => backend(id));
    const proxy = await bws(balancedSite(bs, "ip_hash"));
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      ids.push(await who(proxy.url("/x"), { "x-forwarded-for": `198.51.100.${i}` }));
    }
    // The peer is always 127.0.0.1, so every request sticks to one member.
    expect(new Set(ids).size).toBe(1);
  });

  it("first uses the first member and fails over without errors when it dies", async () => {
    const primary = startEchoBackend("p");
    let primaryOpen = true;
    cleanup.push(() => primaryOpen && primary.close());
    const spare = backend("s");
    const proxy = await bws(balancedSite([primary, spare], "first"));
    const before: string[] = [];
    for (let i = 0; i < 10; i++) before.push(await who(proxy.url("/f")));
    expect(count(before)).toEqual({ p: 10 });
    await primary.close();
    primaryOpen = false;
    const afterIds: string[] = [];
    for (let i = 0; i < 10; i++) afterIds.push(await who(proxy.url("/f")));
    expect(count(afterIds)).toEqual({ s: 10 });
  });

  it("random_two uses every member and avoids one that holds a slow request", async () => {
    const gate = Promise.withResolvers<void>();
    let parked = 0;
    const slowOne = backend("a", (req) => {
      if (!new URL(req.url).pathname.startsWith("/slow")) return undefined;
      parked++;
      return gate.promise.then(() => new Response("slow", { headers: { "x-backend": "a" } }));
    });
    const bs = [slowOne, backend("b"), backend("c")];
    const proxy = await bws(balancedSite(bs, "random_two"));
    try {
      const spread: string[] = [];
      for (let i = 0; i < 60; i++) spread.push(await who(proxy.url("/r")));
      expect(Object.keys(count(spread)).sort()).toEqual(["a", "b", "c"]);
      // Park a request on a: with 1 in flight it loses every comparison with an idle member.
      const held: Promise<string>[] = [];
      for (let i = 0; i < 40 && parked < 1; i++) {
        const p = who(proxy.url(`/slow/${i}`));
        held.push(p);
        await Promise.race([p, new Promise((r) => setTimeout(r, 30))]);
      }
      expect(parked).toBe(1);
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push(await who(proxy.url(`/after/${i}`)));
      expect(count(ids).a ?? 0).toBe(0);
      gate.resolve();
      await Promise.all(held);
    } finally {
      gate.resolve();
    }
  });
});
