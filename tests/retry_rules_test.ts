/**
 * SPEC 4 retries end to end: which failures are retried on another member, how many times,
 * what the client gets when nothing answers, and `retry.try_duration` over a restart.
 *
 * @module
 */

import { after, describe, it } from "node:test";
import { expect } from "expect";
import {
  type Backend,
  deadAddress,
  readHead,
  type Seen,
  startEchoBackend,
  startRawServer,
} from "./helpers/backends.ts";
import { sha256 } from "./helpers/bytes.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { balancedSite, memberStats, who } from "./helpers/balancing.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MANAGEMENT = `
[management]
enabled = true
port = 0
`;

describe("retries (SPEC 4)", () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  function backend(id: string, custom?: Parameters<typeof startEchoBackend>[1]): Backend {
    const b = startEchoBackend(id, custom);
    cleanup.push(() => b.close());
    return b;
  }
  async function bws(
    members: { url: string }[],
    method = "first",
    extra = "",
  ): Promise<TestBws> {
    const b = await startBws(balancedSite(members, method, extra, MANAGEMENT));
    cleanup.push(() => b.close());
    return b;
  }
  /** A member that reads the whole request (head and body), then closes without answering. */
  function swallower() {
    const got: string[] = [];
    const s = startRawServer(async (conn) => {
      const head = await readHead(conn);
      got.push(head);
      const m = /content-length: *(\d+)/i.exec(head);
      let left = m ? Number(m[1]) - (head.length - head.indexOf("\r\n\r\n") - 4) : 0;
      const buf = new Uint8Array(65536);
      while (left > 0) {
        const n = await conn.read(buf);
        if (n === null) break;
        left -= n;
      }
      conn.close();
    });
    cleanup.push(() => s.close());
    return { url: s.url, got };
  }

  it("does not retry a POST whose body was sent: 502, the other member sees nothing", async () => {
    const bad = swallower();
    const good = backend("good");
    const proxy = await bws([bad, good]);
    const body = new Uint8Array(100_000).fill(7);
    const res = await fetch(proxy.url("/post"), { method: "POST", body });
    expect(res.status).toBe(502);
    await res.body?.cancel();
    expect(bad.got.length).toBe(1);
    expect(bad.got[0]).toMatch(/^POST \/post HTTP\/1\.1/);
    expect(good.seen).toEqual([]);
  });

  it("retries a POST with its body on the next member when the first refuses", async () => {
    const good = backend("good");
    const proxy = await bws([{ url: deadAddress() }, good]);
    const body = new Uint8Array(300_000).map((_, i) => i % 251);
    const res = await fetch(proxy.url("/post"), { method: "POST", body });
    expect(res.status).toBe(200);
    const seen = await res.json() as Seen;
    expect(seen.id).toBe("good");
    expect(seen.bodyLength).toBe(body.byteLength);
    expect(seen.bodySha256).toBe(sha256(body));
  });

  it("retries a streamed (chunked) POST body on the next member when the first refuses", async () => {
    const good = backend("good");
    const proxy = await bws([{ url: deadAddress() }, good]);
    const parts = [new Uint8Array(1000).fill(1), new Uint8Array(2000).fill(2)];
    const stream = ReadableStream.from(parts);
    const res = await fetch(proxy.url("/chunked"), { method: "POST", body: stream });
    expect(res.status).toBe(200);
    const seen = await res.json() as Seen;
    expect(seen.bodyLength).toBe(3000);
  });

  it("retries a GET that the first member dropped after reading the request", async () => {
    const bad = swallower();
    const good = backend("good");
    const proxy = await bws([bad, good]);
    expect(await who(proxy.url("/get"))).toBe("good");
    expect(bad.got.length).toBe(1);
  });

  it("passes upstream 5xx through without retrying or ejecting the member", async () => {
    let calls = 0;
    const failing = backend("failing", () => {
      calls++;
      return new Response("upstream says no", { status: 503, headers: { "x-backend": "f" } });
    });
    const other = backend("other");
    const proxy = await bws([failing, other]);
    for (let i = 0; i < 8; i++) {
      const res = await fetch(proxy.url("/5xx"));
      expect(res.status).toBe(503);
      expect(await res.text()).toBe("upstream says no");
      expect(res.headers.get("retry-after")).toBeNull();
    }
    expect(calls).toBe(8);
    expect(other.seen).toEqual([]);
    const [f] = await memberStats(proxy);
    expect(f.live).toBe(true);
    expect(f.fails).toBe(0);
  });

  it("answers 502 while members fail, then 503 with Retry-After once all are ejected", async () => {
    const proxy = await bws([{ url: deadAddress() }, { url: deadAddress() }], "round_robin");
    const statuses: number[] = [];
    const retryAfter: (string | null)[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(proxy.url("/down"));
      statuses.push(res.status);
      retryAfter.push(res.headers.get("retry-after"));
      await res.body?.cancel();
    }
    // Each request tries both members (2 failures each); 3 failures eject a member.
    expect(statuses[0]).toBe(502);
    expect(statuses.at(-1)).toBe(503);
    expect(retryAfter.at(-1)).toMatch(/^\d+$/);
    const members = await memberStats(proxy);
    expect(members.map((m) => m.live)).toEqual([false, false]);
    expect(members[0].lastError).toContain("refused");
  });

  it("attempts = 0 disables retries; attempts = 1 tries at most 2 members", async () => {
    const good = backend("good");
    const zero = await bws(
      [{ url: deadAddress() }, good],
      "first",
      "[sites.proxy.retry]\nattempts = 0\n",
    );
    expect(await who(zero.url("/a0"))).toBe("status:502");
    expect(good.seen).toEqual([]);

    const one = await bws(
      [{ url: deadAddress() }, { url: deadAddress() }, good],
      "first",
      "[sites.proxy.retry]\nattempts = 1\n",
    );
    expect(await who(one.url("/a1"))).toBe("status:502");
    expect(good.seen).toEqual([]);
    const tried = (await memberStats(one)).map((m) => m.requests);
    expect(tried).toEqual([1, 1, 0]);

    const two = await bws([{ url: deadAddress() }, { url: deadAddress() }, good], "first");
    expect(await who(two.url("/a2"))).toBe("good");
  });

  it("try_duration: GETs sent while the only member restarts all succeed", async () => {
    let a: Backend | null = startEchoBackend("a");
    const port = a.port;
    cleanup.push(() => a?.close());
    const proxy = await bws([a], "round_robin", "[sites.proxy.retry]\ntry_duration = 3\n");
    expect(await who(proxy.url("/before"))).toBe("a");
    await a.close();
    a = null;
    // 10 GETs spread over 1 s while the member is down.
    const pending: Promise<string>[] = [];
    for (let i = 0; i < 10; i++) {
      pending.push(who(proxy.url(`/down/${i}`)));
      await sleep(100);
    }
    // By now the member is passively ejected; the waiting requests keep probing it anyway.
    expect((await memberStats(proxy))[0].live).toBe(false);
    a = startEchoBackend("a", undefined, port);
    expect(await Promise.all(pending)).toEqual(Array(10).fill("a"));
    // Once a probe got through, the member is live again: new requests pass without waiting.
    expect((await memberStats(proxy))[0].live).toBe(true);
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      expect(await who(proxy.url(`/after/${i}`))).toBe("a");
      expect(performance.now() - t0).toBeLessThan(240); // below the 250 ms try interval
    }
  });

  it("try_duration gives up with 502 when the member stays down", async () => {
    const proxy = await bws(
      [{ url: deadAddress() }],
      "first",
      "[sites.proxy.retry]\ntry_duration = 0.6\n",
    );
    const t0 = performance.now();
    expect(await who(proxy.url("/gone"))).toMatch(/^status:50[23]$/);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThan(300);
    expect(took).toBeLessThan(1500);
  });

  it("try_duration stops waiting when the client goes away (logged as 499)", async () => {
    const proxy = await bws(
      [{ url: deadAddress() }],
      "first",
      "[sites.proxy.retry]\ntry_duration = 3\n",
    );
    const t0 = performance.now();
    await fetch(proxy.url("/leaving"), { signal: AbortSignal.timeout(300) }).then(
      (res) => res.body?.cancel(),
      () => {},
    );
    let entry = proxy.logger.entries.find((e) => e.path === "/leaving");
    for (let i = 0; i < 40 && entry === undefined; i++) {
      await sleep(50);
      entry = proxy.logger.entries.find((e) => e.path === "/leaving");
    }
    expect(entry?.status).toBe(499);
    expect(performance.now() - t0).toBeLessThan(1500);
    expect((await memberStats(proxy))[0].inFlight).toBe(0);
  });
});
