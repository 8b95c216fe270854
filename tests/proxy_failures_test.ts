import { after, describe, it } from "node:test";
import { expect } from "expect";
import {
  deadAddress,
  rawRequest,
  readHead,
  startEchoBackend,
  startRawServer,
} from "./helpers/backends.ts";
import { proxySite, startBws, type TestBws } from "./helpers/bws.ts";

describe("proxy failures (SPEC 4)", () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  async function bwsFor(upstreams: string[], extra = "", server = ""): Promise<TestBws> {
    const b = await startBws(proxySite(upstreams, extra, undefined, server));
    cleanup.push(() => b.close());
    return b;
  }

  it("answers 502 naming the request id, not the upstream, when the upstream refuses", async () => {
    const dead = deadAddress();
    const bws = await bwsFor([dead]);
    const res = await fetch(bws.url("/x"), { headers: { "x-request-id": "req-42" } });
    expect(res.status).toBe(502);
    const body = await res.text();
    expect(body).toContain("502");
    expect(body).toContain("req-42");
    expect(body).not.toContain("127.0.0.1");
    expect(body).not.toContain(new URL(dead).port);
    const entry = bws.logger.entries.at(-1)!;
    expect(entry.status).toBe(502);
    expect(entry.error).toBeTruthy();
  });

  it("answers 504 when the upstream accepts but never answers within the read timeout", async () => {
    const silent = startRawServer(async (conn) => {
      await readHead(conn);
      await new Promise((r) => setTimeout(r, 3000));
      conn.close();
    });
    cleanup.push(() => silent.close());
    const bws = await bwsFor(
      [silent.url],
      `
[sites.proxy.timeout]
read = 0.3
`,
    );
    const t0 = performance.now();
    const res = await fetch(bws.url("/slow"));
    expect(res.status).toBe(504);
    await res.body?.cancel();
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it("aborts the client's response when the upstream dies mid-body", async () => {
    const dying = startRawServer(async (conn) => {
      await readHead(conn);
      await conn.write(new TextEncoder().encode(
        "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + "x".repeat(1000),
      ));
      await new Promise((r) => setTimeout(r, 100));
      conn.close();
    });
    cleanup.push(() => dying.close());
    const bws = await bwsFor([dying.url]);
    const res = await fetch(bws.url("/partial"));
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
  });

  it("aborts the upstream request when the client goes away", async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    const hanging = startRawServer(async (conn) => {
      await readHead(conn);
      const buf = new Uint8Array(16);
      try {
        while ((await conn.read(buf)) !== null) { /* wait for close */ }
      } catch { /* reset */ }
      upstreamClosed();
    });
    cleanup.push(() => hanging.close());
    const bws = await bwsFor([hanging.url]);
    const ac = new AbortController();
    const pending = fetch(bws.url("/hang"), { signal: ac.signal }).catch(() => null);
    await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await pending;
    const result = await Promise.race([
      closed.then(() => "closed"),
      new Promise((r) => setTimeout(() => r("still open"), 3000)),
    ]);
    expect(result).toBe("closed");
  });

  it("answers 413 to a body over max_body_size without contacting the upstream", async () => {
    const backend = startEchoBackend("b");
    cleanup.push(() => backend.close());
    const bws = await bwsFor([backend.url], "", `max_body_size = "1KB"`);
    const res = await fetch(bws.url("/up"), { method: "POST", body: "x".repeat(2000) });
    expect(res.status).toBe(413);
    await res.body?.cancel();
    expect(backend.seen.length).toBe(0);
    const ok = await fetch(bws.url("/up"), { method: "POST", body: "x".repeat(999) });
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
  });

  it("answers 413 to a chunked body that grows over max_body_size", async () => {
    const backend = startEchoBackend("b");
    cleanup.push(() => backend.close());
    const bws = await bwsFor([backend.url], "", `max_body_size = "10KB"`);
    const raw = await rawRequest(
      bws.port,
      "POST /up HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        "4000\r\n" + "y".repeat(0x4000) + "\r\n0\r\n\r\n",
    );
    expect(raw).toMatch(/^HTTP\/1\.1 413/);
  });

  it("retries a GET on another member when one refuses, and answers 503 when all are down", async () => {
    const backend = startEchoBackend("b");
    cleanup.push(() => backend.close());
    const bws = await bwsFor([deadAddress(), backend.url]);
    for (let i = 0; i < 6; i++) {
      const res = await fetch(bws.url(`/r${i}`));
      expect(res.status).toBe(200);
      await res.body?.cancel();
    }
    const allDown = await bwsFor(
      [deadAddress()],
      `
[sites.proxy.passive_health]
max_fails = 1
fail_timeout = 30
`,
    );
    const first = await fetch(allDown.url("/"));
    expect(first.status).toBe(502);
    await first.body?.cancel();
    const second = await fetch(allDown.url("/"));
    expect(second.status).toBe(503);
    expect(second.headers.get("retry-after")).toBeTruthy();
    await second.body?.cancel();
  });

  it("does not retry a POST whose body was sent", async () => {
    let hits = 0;
    const resetter = startRawServer(async (conn) => {
      hits++;
      await readHead(conn);
      conn.close();
    });
    cleanup.push(() => resetter.close());
    const other = startRawServer(async (conn) => {
      hits++;
      await readHead(conn);
      conn.close();
    });
    cleanup.push(() => other.close());
    const bws = await bwsFor([resetter.url, other.url]);
    const res = await fetch(bws.url("/p"), { method: "POST", body: "payload" });
    expect(res.status).toBe(502);
    await res.body?.cancel();
    expect(hits).toBe(1);
  });
});
