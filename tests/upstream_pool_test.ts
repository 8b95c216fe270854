import { after, describe, it } from "node:test";
import { expect } from "expect";
import { UpstreamClient, type UpstreamRequest } from "../src/upstream/client.ts";
import { UpstreamError } from "../src/upstream/errors.ts";
import { fromLatin1, readAll } from "./helpers/bytes.ts";
import { listenRaw, type RawUpstream } from "./helpers/scripted_upstream.ts";

const dec = new TextDecoder();
function req(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    target: "/",
    headers: [["Host", "pool.test"]],
    body: null,
    bodyLength: null,
    timeouts: { connectMs: 2000, readMs: 2000, writeMs: 2000 },
    ...over,
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keep-alive upstream that counts connections the client closed. */
function keepAliveServer(delayMs = 0): RawUpstream & { closedByClient(): number } {
  let closed = 0;
  const s = listenRaw(async (peer) => {
    while (true) {
      const r = await peer.readRequest();
      if (r === null) break;
      if (delayMs) await sleep(delayMs);
      await peer.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    closed++;
    peer.close();
  });
  return Object.assign(s, { closedByClient: () => closed });
}

describe("UpstreamClient pool", () => {
  const servers: RawUpstream[] = [];
  const clients: UpstreamClient[] = [];
  after(() => {
    for (const c of clients) c.close();
    for (const s of servers) s.close();
  });
  function track<T extends RawUpstream>(s: T): T {
    servers.push(s);
    return s;
  }
  function newClient(opts?: ConstructorParameters<typeof UpstreamClient>[0]): UpstreamClient {
    const c = new UpstreamClient(opts);
    clients.push(c);
    return c;
  }

  it("reuses connections: 20 sequential requests use one socket", async () => {
    const s = track(keepAliveServer());
    const client = newClient();
    for (let i = 0; i < 20; i++) {
      const res = await client.request(s.target, req());
      expect(dec.decode(await readAll(res.body))).toBe("ok");
    }
    expect(s.accepted()).toBe(1);
    expect(client.stats()).toEqual([{ origin: s.target.origin, idle: 1, busy: 0 }]);
  });

  it("reports busy sockets and keeps at most maxIdlePerOrigin idle", async () => {
    const s = track(keepAliveServer(50));
    const client = newClient({ maxIdlePerOrigin: 2 });
    const pending = Array.from({ length: 5 }, () => client.request(s.target, req()));
    await sleep(20);
    expect(client.stats()).toEqual([{ origin: s.target.origin, idle: 0, busy: 5 }]);
    for (const res of await Promise.all(pending)) await readAll(res.body);
    expect(client.stats()).toEqual([{ origin: s.target.origin, idle: 2, busy: 0 }]);
    await sleep(50);
    expect(s.closedByClient()).toBe(3);
    // LIFO reuse: the next requests ride on the two idle sockets.
    for (let i = 0; i < 2; i++) await readAll((await client.request(s.target, req())).body);
    expect(s.accepted()).toBe(5);
  });

  it("by default keeps a burst's connections for the next burst (no redial per burst)", async () => {
    const s = track(keepAliveServer(30));
    const client = newClient();
    const burst = async () => {
      const pending = Array.from({ length: 120 }, () => client.request(s.target, req()));
      for (const res of await Promise.all(pending)) await readAll(res.body);
    };
    await burst();
    expect(client.stats()).toEqual([{ origin: s.target.origin, idle: 120, busy: 0 }]);
    await burst();
    // With 32 kept, each burst closed 88 and dialled 88 again (a TIME_WAIT socket each).
    expect(s.accepted()).toBe(120);
    expect(s.closedByClient()).toBe(0);
  });

  it("closeIdle() closes the idle sockets and keeps serving", async () => {
    const s = track(keepAliveServer(20));
    const client = newClient();
    const pending = Array.from({ length: 6 }, () => client.request(s.target, req()));
    for (const res of await Promise.all(pending)) await readAll(res.body);
    expect(client.closeIdle()).toBe(6);
    expect(client.stats()).toEqual([{ origin: s.target.origin, idle: 0, busy: 0 }]);
    await sleep(50);
    expect(s.closedByClient()).toBe(6);
    expect(dec.decode(await readAll((await client.request(s.target, req())).body))).toBe("ok");
    expect(s.accepted()).toBe(7);
  });

  it("closes idle sockets after idleTimeoutMs and then dials anew", async () => {
    const s = track(keepAliveServer());
    const client = newClient({ idleTimeoutMs: 200 });
    await readAll((await client.request(s.target, req())).body);
    await sleep(450);
    expect(s.closedByClient()).toBe(1);
    expect(client.stats()[0].idle).toBe(0);
    const res = await client.request(s.target, req());
    expect(res.reused).toBe(false);
    await readAll(res.body);
    expect(s.accepted()).toBe(2);
  });

  it("retries transparently when the upstream closed a pooled connection", async () => {
    // Answers one request per connection with keep-alive framing, then closes the socket.
    const s = track(listenRaw(async (peer) => {
      await peer.readRequest();
      await peer.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
      peer.close();
    }));
    const client = newClient();
    await readAll((await client.request(s.target, req())).body);
    await sleep(30);
    for (const body of [null, fromLatin1("replayable")]) {
      const res = await client.request(s.target, req({ method: "PUT", body }));
      expect(res.status).toBe(200);
      expect(res.reused).toBe(false);
      await readAll(res.body);
      await sleep(30);
    }
    expect(s.accepted()).toBe(3); // each stale pooled attempt is replaced by one fresh dial
  });

  it("does not replay a stream body on a stale pooled connection", async () => {
    // The upstream drops the kept-alive socket as the next request arrives (a close that crosses
    // the request on the wire, which the idle watch cannot see coming).
    const s = track(listenRaw(async (peer) => {
      await peer.readRequest();
      await peer.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
      await peer.readHead();
      peer.close();
    }));
    const client = newClient();
    await readAll((await client.request(s.target, req())).body);
    await sleep(30);
    const err = await client.request(
      s.target,
      req({ method: "POST", body: ReadableStream.from([fromLatin1("once")]) }),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.reusedConnection).toBe(true);
    expect(err.dial).toBe(false);
    expect(["reset", "closed"]).toContain(err.kind);
    expect(s.accepted()).toBe(1);
  });

  it("close() closes idle sockets and rejects later requests", async () => {
    const s = track(keepAliveServer());
    const client = newClient();
    await readAll((await client.request(s.target, req())).body);
    client.close();
    await sleep(50);
    expect(s.closedByClient()).toBe(1);
    const err = await client.request(s.target, req()).catch((e) => e);
    expect(err.kind).toBe("closed");
  });
});
