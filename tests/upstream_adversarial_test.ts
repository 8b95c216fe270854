/**
 * Adversarial upstreams against bws's own HTTP/1.1 client (SPEC 4: "A response from the upstream
 * that is malformed is a 502, never passed on"; connections are reused only when clean). Raw TCP
 * upstreams write exact bytes, directly to the UpstreamClient or behind a real bws.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { UpstreamClient, type UpstreamRequest } from "../src/upstream/client.ts";
import { UpstreamError } from "../src/upstream/errors.ts";
import { fromLatin1, readAll } from "./helpers/bytes.ts";
import { listenRaw, type Peer, type RawUpstream } from "./helpers/scripted_upstream.ts";
import { rawRequest } from "./helpers/backends.ts";
import { proxySite, startBws, type TestBws } from "./helpers/bws.ts";

const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function req(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    target: "/",
    headers: [["Host", "adv.test"]],
    body: null,
    bodyLength: null,
    timeouts: { connectMs: 2000, readMs: 2000, writeMs: 2000 },
    ...over,
  };
}

/** `text` as the body of a keep-alive Content-Length response. */
function ok(text: string): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${text.length}\r\n\r\n${text}`;
}

/** Endless request body of 64 KiB chunks (at most `chunks`), generated lazily. */
function endless(chunks: number): ReadableStream<Uint8Array> {
  let n = 0;
  const chunk = new Uint8Array(64 * 1024);
  return new ReadableStream({
    pull(c) {
      if (n++ < chunks) c.enqueue(chunk);
      else c.close();
    },
  });
}

/**
 * A keep-alive upstream: connection `i` answers its `n`-th request with `answer(i, n, head)`, a
 * list of writes sent `gapMs` apart (later writes model bytes the upstream sends after the
 * response proper). Answers "c<i>r<n>" by default.
 */
function keepAlive(
  answer: (conn: number, n: number, head: string) => string[] | string,
  gapMs = 30,
): RawUpstream {
  return listenRaw(async (peer: Peer, conn: number) => {
    peer.conn.setNoDelay(true);
    for (let n = 0;; n++) {
      const r = await peer.readRequest();
      if (r === null) break;
      const parts = answer(conn, n, r.head);
      for (const [i, part] of (typeof parts === "string" ? [parts] : parts).entries()) {
        if (i > 0) await sleep(gapMs);
        await peer.write(part);
      }
    }
    peer.close();
  });
}

describe("adversarial upstreams: a dirty connection is never reused", () => {
  const servers: RawUpstream[] = [];
  const client = new UpstreamClient();
  after(() => {
    client.close();
    for (const s of servers) s.close();
  });
  function track(s: RawUpstream): RawUpstream {
    servers.push(s);
    return s;
  }
  async function get(s: RawUpstream, method = "GET"): Promise<{ body: string; reused: boolean }> {
    const res = await client.request(s.target, req({ method }));
    return { body: dec.decode(await readAll(res.body)), reused: res.reused };
  }

  for (const late of [false, true]) {
    const when = late ? "in a later write" : "in the same write";
    it(`bytes after a Content-Length body (${when}) are not read as the next answer`, async () => {
      const smuggled = ok("SMUGGLED");
      const s = track(
        keepAlive((c, n) =>
          c + n === 0 ? (late ? [ok("c0r0"), smuggled] : ok("c0r0") + smuggled) : ok(`c${c}r${n}`)
        ),
      );
      expect(await get(s)).toEqual({ body: "c0r0", reused: false });
      await sleep(80); // the late bytes arrived while the connection sat in the pool
      expect(await get(s)).toEqual({ body: "c1r0", reused: false });
      expect(await get(s)).toEqual({ body: "c1r1", reused: true });
      expect(s.accepted()).toBe(2);
    });

    it(`a 204 with a Content-Length and body bytes (${when}) does not poison the next answer`, async () => {
      const head = "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";
      const s = track(
        keepAlive((c, n) =>
          c + n === 0 ? (late ? [head, "hello"] : head + "hello") : ok(`c${c}r${n}`)
        ),
      );
      const r1 = await client.request(s.target, req());
      expect([r1.status, r1.body]).toEqual([204, null]);
      await sleep(80);
      expect(await get(s)).toEqual({ body: "c1r0", reused: false });
    });

    it(`HEAD answered with a body (${when}) does not poison the next answer`, async () => {
      const head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
      const s = track(
        keepAlive((c, n, h) =>
          h.startsWith("HEAD") ? (late ? [head, "hello"] : head + "hello") : ok(`c${c}r${n}`)
        ),
      );
      const r1 = await client.request(s.target, req({ method: "HEAD" }));
      expect([r1.status, r1.body, r1.contentLength]).toEqual([200, null, 5]);
      await sleep(80);
      expect(await get(s)).toEqual({ body: "c1r0", reused: false });
    });
  }

  it("a 304 with the representation's Content-Length and no body keeps the connection", async () => {
    const s = track(
      keepAlive((c, n) =>
        n === 0
          ? 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5000\r\nETag: "e"\r\n\r\n'
          : ok(`c${c}r${n}`)
      ),
    );
    const r1 = await client.request(s.target, req());
    expect([r1.status, r1.body]).toEqual([304, null]);
    await sleep(80);
    expect(await get(s)).toEqual({ body: "c0r1", reused: true });
  });

  it("an upstream closing an idle connection is noticed before the next request", async () => {
    let closes = 0;
    const s = track(listenRaw(async (peer, c) => {
      await peer.readRequest();
      await peer.write(ok(`c${c}`));
      await sleep(20);
      closes++;
      peer.close();
    }));
    expect(await get(s)).toEqual({ body: "c0", reused: false });
    await sleep(80);
    expect(closes).toBe(1);
    // A POST with a stream body cannot be replayed: it must not be sent on the dead socket.
    const res = await client.request(
      s.target,
      req({ method: "POST", body: ReadableStream.from([fromLatin1("once")]) }),
    );
    expect(dec.decode(await readAll(res.body))).toBe("c1");
    expect(res.reused).toBe(false);
  });

  it("an early keep-alive 413 during an upload is delivered and its connection dropped", async () => {
    let firstClosed!: () => void;
    const closed = new Promise<void>((r) => firstClosed = r);
    let discarded = 0;
    const s = track(listenRaw(async (peer, c) => {
      if (c === 0) {
        await peer.readHead();
        await peer.write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!");
        // Keeps reading (and discarding) whatever the client still sends.
        while ((await peer.readExactly(64 * 1024)).length > 0) discarded++;
        firstClosed();
        return;
      }
      for (let n = 0;; n++) {
        if ((await peer.readRequest()) === null) break;
        await peer.write(ok(`c${c}r${n}`));
      }
    }));
    const res = await client.request(
      s.target,
      req({
        method: "POST",
        body: endless(2048),
        timeouts: { connectMs: 2000, readMs: 2000, writeMs: 2000 },
      }),
    );
    expect(res.status).toBe(413);
    expect(dec.decode(await readAll(res.body))).toBe("too big!");
    await closed; // the client stopped the upload and closed the connection
    expect(discarded).toBeLessThan(2048); // not the whole 128 MiB
    expect(await get(s)).toEqual({ body: "c1r0", reused: false });
    expect(await get(s)).toEqual({ body: "c1r1", reused: true });
  });
});

describe("adversarial upstreams: response head shapes", () => {
  const servers: RawUpstream[] = [];
  const client = new UpstreamClient({ maxHeadSize: 1024 });
  after(() => {
    client.close();
    for (const s of servers) s.close();
  });
  function track(s: RawUpstream): RawUpstream {
    servers.push(s);
    return s;
  }

  it("reads a head and chunked body written one byte per TCP segment", async () => {
    const wire = "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
    const s = track(listenRaw(async (peer) => {
      peer.conn.setNoDelay(true);
      while ((await peer.readRequest()) !== null) {
        for (let i = 0; i < wire.length; i++) {
          await peer.write(wire[i]);
          if (i % 4 === 0) await sleep(1);
        }
      }
    }));
    for (let round = 0; round < 2; round++) {
      const res = await client.request(s.target, req());
      expect(res.status).toBe(200);
      expect(res.headers).toEqual([["x-a", "1"], ["transfer-encoding", "chunked"]]);
      expect(dec.decode(await readAll(res.body))).toBe("abcde");
      expect(res.reused).toBe(round === 1);
    }
    expect(s.accepted()).toBe(1);
  });

  for (const [size, fits] of [[1024, true], [1025, false]] as const) {
    for (const split of [false, true]) {
      it(
        `a head of ${size} bytes with maxHeadSize 1024 ${fits ? "passes" : "is refused"}${
          split ? " (split before its last byte)" : ""
        }`,
        async () => {
          const prefix = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: ";
          const head = prefix + "p".repeat(size - prefix.length - 4) + "\r\n\r\n";
          expect(head.length).toBe(size);
          const s = track(listenRaw(async (peer) => {
            peer.conn.setNoDelay(true);
            await peer.readRequest();
            if (split) {
              await peer.write(head.slice(0, -1));
              await sleep(20);
              await peer.write(head.slice(-1) + "ok");
            } else await peer.write(head + "ok");
            await peer.waitClosed();
          }));
          const p = client.request(s.target, req());
          if (fits) {
            const res = await p;
            expect(dec.decode(await readAll(res.body))).toBe("ok");
          } else {
            const err = await p.catch((e) => e);
            expect(err).toBeInstanceOf(UpstreamError);
            expect(err.kind).toBe("head_too_large");
          }
        },
      );
    }
  }

  it("decodes chunk sizes with leading zeros and upper-case hex", async () => {
    const s = track(listenRaw(async (peer) => {
      await peer.readRequest();
      await peer.write(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
          "0000000000000005\r\nhello\r\n00A\r\n0123456789\r\n0Bb;e=1\r\n" + "z".repeat(187) +
          "\r\n0000\r\n\r\n",
      );
      await peer.waitClosed();
    }));
    const res = await client.request(s.target, req());
    expect(dec.decode(await readAll(res.body))).toBe("hello0123456789" + "z".repeat(187));
  });
});

describe("adversarial upstreams behind bws", () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  function upstream(onConn: Parameters<typeof listenRaw>[0]): RawUpstream {
    const s = listenRaw(onConn);
    cleanup.push(() => s.close());
    return s;
  }
  /** An upstream answering every request on every connection with `bytes`. */
  function answering(bytes: (n: number) => string): RawUpstream {
    let n = 0;
    return upstream(async (peer) => {
      while ((await peer.readRequest()) !== null) await peer.write(bytes(n++));
    });
  }
  async function bwsFor(s: RawUpstream, extra = ""): Promise<TestBws> {
    const b = await startBws(proxySite([`http://127.0.0.1:${s.port}`], extra));
    cleanup.push(() => b.close());
    return b;
  }
  /** One request through bws as raw bytes (Connection: close), the answer as latin1. */
  function raw(b: TestBws, path = "/"): Promise<string> {
    return rawRequest(
      b.port,
      `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    );
  }

  const BAD_HEADS: [string, string][] = [
    ["Content-Length: +12", "HTTP/1.1 200 OK\r\nContent-Length: +12\r\n\r\nsecret-bytes"],
    ["Content-Length: 1e3", "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\nsecret-bytes"],
    ["Content-Length: 12, 13", "HTTP/1.1 200 OK\r\nContent-Length: 12, 13\r\n\r\nsecret-bytes"],
    ["Content-Length: 0x0c", "HTTP/1.1 200 OK\r\nContent-Length: 0x0c\r\n\r\nsecret-bytes"],
    ["empty Content-Length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nsecret-bytes"],
    ["space in a header name", "HTTP/1.1 200 OK\r\nX Secret: 1\r\nContent-Length: 2\r\n\r\nok"],
    ["@ in a header name", "HTTP/1.1 200 OK\r\nX-A@B: secret\r\nContent-Length: 2\r\n\r\nok"],
    [
      "obs-text in a header name",
      "HTTP/1.1 200 OK\r\nX-\xe9: secret\r\nContent-Length: 2\r\n\r\nok",
    ],
    ["DEL in a header name", "HTTP/1.1 200 OK\r\nX-\x7f: secret\r\nContent-Length: 2\r\n\r\nok"],
    ["status 099", "HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok"],
    ["HTTP/2 status line", "HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok"],
  ];
  for (const [name, bytes] of BAD_HEADS) {
    it(`answers 502 (nothing passed on) for ${name}`, async () => {
      const s = answering(() => bytes);
      const b = await bwsFor(s);
      const res = await fetch(b.url("/bad"));
      expect(res.status).toBe(502);
      const body = await res.text();
      expect(body).not.toContain("secret");
      expect(body).not.toContain("ok");
      const entry = b.logger.entries.find((e) => e.path === "/bad");
      expect(entry?.error).toMatch(/^protocol: /);
    });
  }

  it("passes 16 interim responses and refuses the 17th with 502", async () => {
    const interim = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n";
    const s = upstream(async (peer) => {
      for (let n = 0;; n++) {
        const r = await peer.readRequest();
        if (r === null) break;
        const count = r.head.startsWith("GET /17") ? 17 : 16;
        await peer.write(interim.repeat(count) + ok("final"));
      }
    });
    const b = await bwsFor(s);
    const good = await fetch(b.url("/16"));
    expect([good.status, await good.text()]).toEqual([200, "final"]);
    const bad = await fetch(b.url("/17"));
    expect(bad.status).toBe(502);
    expect(await bad.text()).not.toContain("final");
  });

  it("answers 502 to a 101 on a request that asked for no upgrade, then serves the next", async () => {
    const s = upstream(async (peer) => {
      for (let n = 0;; n++) {
        const r = await peer.readRequest();
        if (r === null) break;
        if (r.head.startsWith("GET /switch")) {
          await peer.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: Upgrade\r\n\r\n" +
              ok("tunneled"),
          );
        } else await peer.write(ok("fine"));
      }
    });
    const b = await bwsFor(s);
    const res = await fetch(b.url("/switch"));
    expect(res.status).toBe(502);
    expect(await res.text()).not.toContain("tunneled");
    const next = await fetch(b.url("/after"));
    expect([next.status, await next.text()]).toEqual([200, "fine"]);
  });

  it("passes header values with obs-text (0x80-0xFF) through byte-exact", async () => {
    const value = "caf\xe9 \x80\x9f\xa0\xff end";
    const s = answering(() => `HTTP/1.1 200 OK\r\nX-Obs: ${value}\r\nContent-Length: 2\r\n\r\nok`);
    const b = await bwsFor(s);
    const answer = await raw(b);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer.toLowerCase()).toContain(`\r\nx-obs: ${value}\r\n`);
  });

  it("drops trailers (forbidden fields included): they never become headers", async () => {
    const s = answering(() =>
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, Set-Cookie\r\n\r\n" +
      '5;name=val;q="a;b"\r\nhello\r\n6\r\n world\r\n0;end\r\nContent-Length: 999\r\n' +
      "Set-Cookie: evil=1\r\nX-Sum: abc\r\nTransfer-Encoding: gzip\r\nHost: evil.test\r\n\r\n"
    );
    const b = await bwsFor(s);
    const answer = await raw(b);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    for (const leak of ["evil", "999", "x-sum", "gzip"]) {
      expect(answer.toLowerCase()).not.toContain(leak);
    }
    const res = await fetch(b.url("/"));
    expect(await res.text()).toBe("hello world");
    expect(res.headers.get("set-cookie")).toBe(null);
  });

  for (const framing of ["Content-Length", "chunked"]) {
    it(`an upstream stalling mid-body past the read timeout truncates the answer (${framing}) and is logged`, async () => {
      const head = framing === "chunked"
        ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + "x".repeat(1024) +
          "\r\n"
        : "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + "x".repeat(1024);
      const s = upstream(async (peer) => {
        await peer.readRequest();
        await peer.write(head);
        await peer.waitClosed();
      });
      const b = await bwsFor(s, "[sites.proxy.timeout]\nread = 0.3\n");
      const t0 = performance.now();
      const res = await fetch(b.url("/stall"));
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
      expect(performance.now() - t0).toBeLessThan(3000);
      // The raw view: no complete-looking message either.
      const answer = await raw(b, "/stall-raw");
      if (framing === "chunked") expect(answer).not.toContain("\r\n0\r\n\r\n");
      else expect(answer.length - answer.indexOf("\r\n\r\n") - 4).toBeLessThan(100000);
      let entry;
      for (let i = 0; i < 40 && entry === undefined; i++) {
        entry = b.logger.entries.find((e) => e.path === "/stall");
        if (entry === undefined) await sleep(25);
      }
      expect(entry?.status).toBe(200);
      expect(entry?.error).toMatch(/read_timeout/);
    });
  }
});
