/**
 * In-flight accounting end to end: least_connections depends on every member's in-flight count
 * going back to 0 whatever happened to the request (success, upstream error, client abort before
 * the head, client cancel mid-body, client gone mid-upload, upstream dying mid-body).
 *
 * @module
 */

import { after, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, startEchoBackend, startRawServer } from "./helpers/backends.ts";
import { startBws } from "./helpers/bws.ts";
import { balancedSite, type MemberStats, memberStats, who } from "./helpers/balancing.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("in-flight accounting (SPEC 5 least_connections, SPEC 7 status)", () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("every member's inFlight is back to 0 after a load of errors, aborts and cancels", async () => {
    const behave = (id: string) => (req: Request) => {
      const path = new URL(req.url).pathname;
      if (path.startsWith("/slow")) {
        return sleep(400).then(() => new Response("late", { headers: { "x-backend": id } }));
      }
      if (path.startsWith("/stream")) {
        let n = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(c) {
            await sleep(10);
            if (n++ >= 60) c.close();
            else c.enqueue(new Uint8Array(4096).fill(65));
          },
        });
        return new Response(body, { headers: { "x-backend": id } });
      }
      if (path.startsWith("/500")) return new Response("boom", { status: 500 });
      return undefined;
    };
    const a: Backend = startEchoBackend("a", behave("a"));
    const b: Backend = startEchoBackend("b", behave("b"));
    // A member that sends a response head and part of the body, then hangs up.
    const dying = startRawServer(async (conn) => {
      const buf = new Uint8Array(65536);
      await conn.read(buf);
      await conn.write(
        new TextEncoder().encode(
          "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\nx-backend: dying\r\n\r\n" +
            "x".repeat(1000),
        ),
      );
      await sleep(20);
      conn.close();
    });
    cleanup.push(() => a.close(), () => b.close(), () => dying.close());
    const proxy = await startBws(balancedSite(
      [a, b, dying],
      "least_connections",
      "",
      "[management]\nenabled = true\nport = 0\n",
    ));
    cleanup.push(() => proxy.close());

    const outcomes: string[] = [];
    const note = (p: Promise<unknown>, what: string) =>
      p.then(() => outcomes.push(`${what}:ok`), () => outcomes.push(`${what}:err`));

    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      // Plain successes, upstream 500s, and whatever the dying member gives.
      jobs.push(note(who(proxy.url(`/plain/${i}`)), "plain"));
      jobs.push(note(who(proxy.url(`/500/${i}`)), "500"));
      // Client gives up while waiting for the response head.
      jobs.push(
        note(fetch(proxy.url(`/slow/${i}`), { signal: AbortSignal.timeout(100) }), "abort"),
      );
      // Client cancels the body after the first chunk.
      jobs.push(note(
        (async () => {
          const res = await fetch(proxy.url(`/stream/${i}`));
          const reader = res.body!.getReader();
          await reader.read();
          await reader.cancel();
        })(),
        "cancel",
      ));
      // Client announces a 50 kB upload, sends 100 bytes, and disconnects.
      jobs.push(note(
        (async () => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
          await conn.write(new TextEncoder().encode(
            `POST /upload/${i} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 50000\r\n\r\n` +
              "y".repeat(100),
          ));
          await sleep(50);
          conn.close();
        })(),
        "upload",
      ));
    }
    await Promise.all(jobs);
    expect(outcomes.length).toBe(60);
    // The dying member answers at once; the others make the client give up first.
    expect(outcomes.filter((o) => o === "abort:err").length).toBeGreaterThanOrEqual(4);

    let members: MemberStats[] = [];
    for (let i = 0; i < 60; i++) {
      members = await memberStats(proxy);
      if (members.every((m) => m.inFlight === 0)) break;
      await sleep(50);
    }
    expect(members.map((m) => m.inFlight)).toEqual([0, 0, 0]);
    for (const m of members) expect(m.requests).toBeGreaterThan(0);

    // The counts are not just 0 but still right: a new slow request shows up as 1 in flight.
    const slow = who(proxy.url("/slow/again"));
    await sleep(150);
    members = await memberStats(proxy);
    expect(members.reduce((n, m) => n + m.inFlight, 0)).toBe(1);
    await slow;
  });
});
