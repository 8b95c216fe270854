import { after, describe, it } from "node:test";
import { expect } from "expect";
import { UpstreamClient, type UpstreamRequest } from "../src/upstream/client.ts";
import { UpstreamError } from "../src/upstream/errors.ts";
import { parseUpstreamUrl } from "../src/upstream/target.ts";
import { fromLatin1, readAll } from "./helpers/bytes.ts";
import { listenRaw, type RawUpstream } from "./helpers/scripted_upstream.ts";

function req(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    target: "/",
    headers: [["Host", "fail.test"]],
    body: null,
    bodyLength: null,
    timeouts: { connectMs: 2000, readMs: 2000, writeMs: 2000 },
    ...over,
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function errorOf(p: Promise<unknown>): Promise<UpstreamError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UpstreamError);
    return err as UpstreamError;
  }
  throw new Error("expected an UpstreamError");
}

/** Endless request body: `chunks` chunks of 1 MiB, generated lazily. */
function endless(chunks: number): ReadableStream<Uint8Array> {
  let n = 0;
  const chunk = new Uint8Array(1024 * 1024);
  return new ReadableStream({
    pull(c) {
      if (n++ < chunks) c.enqueue(chunk);
      else c.close();
    },
  });
}

describe("UpstreamClient failures", () => {
  const servers: RawUpstream[] = [];
  const client = new UpstreamClient();
  after(() => {
    client.close();
    for (const s of servers) s.close();
  });
  function raw(onConn: Parameters<typeof listenRaw>[0]): RawUpstream {
    const s = listenRaw(onConn);
    servers.push(s);
    return s;
  }

  it("maps a refused connection to connect_refused with dial = true", async () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = l.addr.port;
    l.close();
    const err = await errorOf(client.request(parseUpstreamUrl(`http://127.0.0.1:${port}`), req()));
    expect(err.kind).toBe("connect_refused");
    expect(err.dial).toBe(true);
    expect(err.requestSent).toBe(false);
    expect(err.message).toContain(`127.0.0.1:${port}`);
  });

  it("times out a connect that never completes (listen backlog full) as connect_timeout", async () => {
    // A listener that never accepts: once its backlog (511 on Linux) is full, SYNs are dropped.
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const filler: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 2048; i++) {
        const ctl = new AbortController();
        const t = setTimeout(() => ctl.abort(), 100);
        try {
          filler.push(
            await Deno.connect({ hostname: "127.0.0.1", port: l.addr.port, signal: ctl.signal }),
          );
        } catch {
          break; // the backlog is full
        } finally {
          clearTimeout(t);
        }
      }
      const t0 = Date.now();
      const err = await errorOf(client.request(
        parseUpstreamUrl(`http://127.0.0.1:${l.addr.port}`),
        req({ timeouts: { connectMs: 300, readMs: 5000, writeMs: 5000 } }),
      ));
      expect(err.kind).toBe("connect_timeout");
      expect(err.dial).toBe(true);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    } finally {
      for (const c of filler) c.close();
      l.close();
    }
  });

  it("maps an unresolvable host to dns", async () => {
    const err = await errorOf(
      client.request(parseUpstreamUrl("http://no-such-host.invalid:8080"), req()),
    );
    expect(err.kind).toBe("dns");
    expect(err.dial).toBe(true);
  });

  it("times out waiting for the head of a silent upstream (read timeout)", async () => {
    const s = raw(async (peer) => {
      await peer.readRequest();
      await peer.waitClosed();
    });
    const t0 = Date.now();
    const err = await errorOf(
      client.request(s.target, req({ timeouts: { connectMs: 1000, readMs: 300, writeMs: 1000 } })),
    );
    const took = Date.now() - t0;
    expect(err.kind).toBe("read_timeout");
    expect(err.requestSent).toBe(true);
    expect(err.dial).toBe(false);
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(1500);
  });

  it("errors the body when the upstream stalls between body chunks", async () => {
    const s = raw(async (peer) => {
      await peer.readRequest();
      await peer.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst");
      await peer.waitClosed();
    });
    const res = await client.request(
      s.target,
      req({ timeouts: { connectMs: 1000, readMs: 300, writeMs: 1000 } }),
    );
    const err = await errorOf(readAll(res.body));
    expect(err.kind).toBe("read_timeout");
  });

  for (
    const [name, head, part] of [
      ["Content-Length", "Content-Length: 100", "only ten b"],
      ["chunked", "Transfer-Encoding: chunked", "a\r\nonly ten b\r\n"],
    ]
  ) {
    it(`errors the body (not a clean end) when the upstream dies mid-body (${name})`, async () => {
      const s = raw(async (peer) => {
        await peer.readRequest();
        await peer.write(`HTTP/1.1 200 OK\r\n${head}\r\n\r\n`);
        await sleep(10);
        await peer.write(part);
        await sleep(10);
        peer.close();
      });
      const res = await client.request(s.target, req());
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      const err = await errorOf((async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })());
      expect(["closed", "reset"]).toContain(err.kind);
    });
  }

  it("abort before the head: rejects with aborted and the upstream sees the close", async () => {
    let sawClose!: () => void;
    const closed = new Promise<void>((r) => sawClose = r);
    const s = raw(async (peer) => {
      await peer.readRequest();
      await peer.waitClosed();
      sawClose();
    });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const err = await errorOf(client.request(s.target, req({ signal: ctl.signal })));
    expect(err.kind).toBe("aborted");
    await closed;
  });

  it("abort mid-body: the body errors with aborted and the upstream sees the close", async () => {
    let sawClose!: () => void;
    const closed = new Promise<void>((r) => sawClose = r);
    const s = raw(async (peer) => {
      await peer.readRequest();
      await peer.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
      await peer.waitClosed();
      sawClose();
    });
    const ctl = new AbortController();
    const res = await client.request(s.target, req({ signal: ctl.signal }));
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("abc");
    ctl.abort();
    const err = await errorOf(reader.read());
    expect(err.kind).toBe("aborted");
    await closed;
  });

  it("cancelling the response body closes the upstream socket", async () => {
    let sawClose!: () => void;
    const closed = new Promise<void>((r) => sawClose = r);
    const s = raw(async (peer) => {
      await peer.readRequest();
      await peer.write("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nabc");
      await peer.waitClosed();
      sawClose();
    });
    const res = await client.request(s.target, req());
    await res.body!.cancel();
    await closed;
    expect(client.stats().find((x) => x.origin === s.target.origin)).toEqual({
      origin: s.target.origin,
      idle: 0,
      busy: 0,
    });
  });

  it("times out a write to an upstream that never reads the body", async () => {
    const s = raw(async (peer) => {
      await peer.readHead();
      await sleep(5000); // never reads the body, never answers
    });
    const t0 = Date.now();
    const err = await errorOf(client.request(
      s.target,
      req({
        method: "POST",
        body: endless(256),
        timeouts: { connectMs: 1000, readMs: 10000, writeMs: 300 },
      }),
    ));
    expect(err.kind).toBe("write_timeout");
    expect(err.requestSent).toBe(true);
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  for (const bodyLength of [null, 256 * 1024 * 1024]) {
    it(`returns an early 413 sent before the body was read (length ${bodyLength})`, async () => {
      const s = raw(async (peer) => {
        await peer.readHead();
        await peer.write(
          "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbig\r\n",
        );
        await sleep(30);
        await peer.write("5\r\n body\r\n0\r\n\r\n");
        await peer.conn.closeWrite();
        await peer.waitClosed();
      });
      const res = await client.request(
        s.target,
        req({
          method: "POST",
          body: endless(256),
          bodyLength,
          timeouts: { connectMs: 1000, readMs: 2000, writeMs: 2000 },
        }),
      );
      expect(res.status).toBe(413);
      expect(new TextDecoder().decode(await readAll(res.body))).toBe("big body");
    });
  }

  it("a request body that fails aborts the request, naming the client's body as the cause", async () => {
    const s = raw(async (peer) => {
      await peer.readHead();
      await peer.waitClosed();
    });
    let n = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (n++ === 0) c.enqueue(fromLatin1("start"));
        else c.error(new Error("client went away"));
      },
    });
    const err = await errorOf(client.request(s.target, req({ method: "POST", body })));
    expect(err.kind).toBe("client_body");
    expect((err.cause as Error).message).toBe("client went away");
  });
});
