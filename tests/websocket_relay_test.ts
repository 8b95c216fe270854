import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import {
  closeClient,
  openClient,
  rawClientThatNeverReads,
  type RelayProxy,
  sendRawClose,
  startEchoUpstream,
  startRawUpstream,
  startRelayProxy,
  type TestClient,
  waitFor,
  withTimeout,
} from "../src/websocket/testing.ts";
import { isWebSocketUpgrade } from "../src/websocket/relay.ts";

describe("WebSocket relay: messages", () => {
  const echo = startEchoUpstream();
  let proxy: RelayProxy;
  before(() => {
    proxy = startRelayProxy(echo.port);
  });
  after(async () => {
    await proxy.close();
    await echo.close();
  });

  it("relays text and binary both ways, in order", async () => {
    const client = await openClient(`${proxy.url}/echo`);
    try {
      client.socket.send("hello");
      client.socket.send(new Uint8Array([1, 2, 3, 255]));
      client.socket.send("");
      expect(await client.next()).toBe("hello");
      const binary = await client.next();
      expect(binary).toBeInstanceOf(ArrayBuffer);
      expect([...new Uint8Array(binary as ArrayBuffer)]).toEqual([1, 2, 3, 255]);
      expect(await client.next()).toBe("");
    } finally {
      await closeClient(client);
    }
  });

  it("relays a 1 MB binary message intact", async () => {
    const client = await openClient(`${proxy.url}/big`);
    try {
      const big = new Uint8Array(1_000_000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      client.socket.send(big);
      const got = new Uint8Array(await client.next() as ArrayBuffer);
      expect(got.length).toBe(big.length);
      expect(got.every((b, i) => b === big[i])).toBe(true);
    } finally {
      await closeClient(client);
    }
  });

  it("keeps 10 000 small messages in order", async () => {
    const client = await openClient(`${proxy.url}/many`);
    try {
      const count = 10_000;
      for (let i = 0; i < count; i++) client.socket.send(`m${i}`);
      const received: string[] = [];
      await withTimeout(
        (async () => {
          for (let i = 0; i < count; i++) received.push(await client.next() as string);
        })(),
        10_000,
        "10 000 echoes",
      );
      expect(received.every((m, i) => m === `m${i}`)).toBe(true);
    } finally {
      await closeClient(client);
    }
  });

  it("reports the pair's counts to onClose once both sides are closed", async () => {
    const client = await openClient(`${proxy.url}/counted`);
    client.socket.send("abc");
    await client.next();
    client.socket.close(1000, "done");
    await client.closed;
    await waitFor(() => proxy.closed.some((i) => i.reason === "done"), 3000, "onClose");
    const info = proxy.closed.find((i) => i.reason === "done");
    expect(info).toMatchObject({
      code: 1000,
      reason: "done",
      messagesIn: 1,
      messagesOut: 1,
      bytesIn: 3,
      bytesOut: 3,
    });
    expect(info?.durationMs).toBeGreaterThanOrEqual(0);
  });
});

describe("WebSocket relay: handshake", () => {
  const greeting = "welcome";
  const echo = startEchoUpstream({ greeting });
  let proxy: RelayProxy;
  before(() => {
    proxy = startRelayProxy(echo.port);
  });
  after(async () => {
    await proxy.close();
    await echo.close();
  });

  it("does not lose a message the upstream sends right after open", async () => {
    for (let i = 0; i < 20; i++) {
      const client = await openClient(`${proxy.url}/greet`);
      try {
        expect(await withTimeout(client.next(), 2000, "greeting")).toBe(greeting);
      } finally {
        await closeClient(client);
      }
    }
  });

  it("returns the upstream's choice among the client's subprotocols", async () => {
    const client = await openClient(`${proxy.url}/proto`, { protocols: ["a", "b"] });
    try {
      expect(client.socket.protocol).toBe("b");
      const only = await openClient(`${proxy.url}/proto`, { protocols: ["a"] });
      expect(only.socket.protocol).toBe("a");
      await closeClient(only);
      const none = await openClient(`${proxy.url}/proto`);
      expect(none.socket.protocol).toBe("");
      await closeClient(none);
    } finally {
      await closeClient(client);
    }
  });

  it("passes Cookie, Authorization, Origin, a custom header, path and query upstream", async () => {
    const seen = echo.headers.length;
    const client = await openClient(`${proxy.url}/chat/room?id=7`, {
      headers: {
        cookie: "session=abc",
        authorization: "Bearer t0k",
        origin: "https://app.example",
        "x-custom": "yes",
      },
    });
    try {
      const headers = echo.headers[seen];
      expect(headers.get("cookie")).toBe("session=abc");
      expect(headers.get("authorization")).toBe("Bearer t0k");
      expect(headers.get("origin")).toBe("https://app.example");
      expect(headers.get("x-custom")).toBe("yes");
      expect(headers.get("x-forwarded-for")).toBe("127.0.0.1");
      expect(headers.get("host")).toBe(`127.0.0.1:${echo.port}`);
      expect(echo.urls[seen]).toBe(`http://127.0.0.1:${echo.port}/chat/room?id=7`);
    } finally {
      await closeClient(client);
    }
  });

  it("answers 502 without upgrading when the upstream refuses (403)", async () => {
    const failures = proxy.failures.length;
    const res = await fetch(`http://127.0.0.1:${proxy.port}/forbidden`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    expect(res.status).toBe(502);
    const body = await res.text();
    expect(body).toBe("502 Bad Gateway");
    expect(body).not.toContain(String(echo.port));
    expect(proxy.failures.length).toBe(failures + 1);
    await expect(openClient(`${proxy.url}/forbidden`)).rejects.toThrow();
  });

  it("answers 502 when the upstream port is closed", async () => {
    const probe = Deno.listen({ port: 0, hostname: "127.0.0.1" });
    const deadPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const down = startRelayProxy(deadPort);
    try {
      const res = await fetch(`http://127.0.0.1:${down.port}/x`, {
        headers: {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-version": "13",
        },
      });
      expect(res.status).toBe(502);
      expect(await res.text()).toBe("502 Bad Gateway");
      expect(down.failures.length).toBe(1);
      expect(down.failures[0].message).toContain("Cannot connect to");
      expect(down.opened).toBe(0);
      expect(down.registry.size).toBe(0);
    } finally {
      await down.close();
    }
  });

  it("answers 502 when the upstream does not answer the handshake within the timeout", async () => {
    const mute = startRawUpstream(null, true);
    const relay = startRelayProxy(mute.port, { connectTimeout: 0.3 });
    try {
      const started = Date.now();
      const res = await fetch(`http://127.0.0.1:${relay.port}/slow`, {
        headers: {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-version": "13",
        },
      });
      expect(res.status).toBe(502);
      await res.body?.cancel();
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(relay.failures[0]?.message).toContain("no handshake within 0.3 s");
    } finally {
      await relay.close();
      mute.close();
    }
  });

  it("answers 400 to a request that is not a WebSocket upgrade", async () => {
    const res = await fetch(`http://127.0.0.1:${proxy.port}/plain`);
    expect(res.status).toBe(400);
    await res.body?.cancel();
  });
});

describe("WebSocket relay: closing", () => {
  const echo = startEchoUpstream();
  let proxy: RelayProxy;
  before(() => {
    proxy = startRelayProxy(echo.port);
  });
  after(async () => {
    await proxy.close();
    await echo.close();
  });

  async function paired(path: string): Promise<[TestClient, WebSocket]> {
    const count = echo.sockets.length;
    const client = await openClient(`${proxy.url}${path}`);
    client.socket.send("sync");
    expect(await client.next()).toBe("sync");
    return [client, echo.sockets[count]];
  }

  it("passes the client's close code and reason upstream", async () => {
    const [client] = await paired("/c1");
    client.socket.close(4001, "bye");
    expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
      code: 4001,
      reason: "bye",
    });
    expect(await client.closed).toEqual({ code: 4001, reason: "bye" });
  });

  it("passes the upstream's close code and reason to the client", async () => {
    const [client, upstream] = await paired("/c2");
    upstream.close(4002, "later");
    expect(await withTimeout(client.closed, 3000, "client close")).toEqual({
      code: 4002,
      reason: "later",
    });
    await echo.nextClose();
  });

  it("passes protocol codes like 1001 and 1008 from the upstream to the client", async () => {
    for (const code of [1001, 1008, 1011]) {
      const [client, upstream] = await paired("/c3");
      upstream.close(code, "why");
      expect(await withTimeout(client.closed, 3000, "client close")).toEqual({
        code,
        reason: "why",
      });
      await echo.nextClose();
    }
  });

  it("sends 1000 upstream for a client's 1001 (Deno cannot send 1001), naming the code", async () => {
    const conn = await rawClientThatNeverReads(proxy.port, "/c4");
    try {
      await sendRawClose(conn, 1001);
      expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
        code: 1000,
        reason: "client closed: 1001",
      });
    } finally {
      conn.close();
    }
  });

  it("maps an upstream close without status (1005) to 1000 for the client", async () => {
    const [client, upstream] = await paired("/c5");
    upstream.close();
    expect(await withTimeout(client.closed, 3000, "client close")).toEqual({
      code: 1000,
      reason: "",
    });
    await echo.nextClose();
  });

  it("closes the client with 1011 when the upstream connection drops", async () => {
    const dropping = startRawUpstream(100);
    const relay = startRelayProxy(dropping.port);
    try {
      const client = await openClient(`${relay.url}/drop`);
      const closed = await withTimeout(client.closed, 3000, "client close");
      expect(closed.code).toBe(1011);
      await waitFor(() => relay.registry.size === 0, 3000, "empty registry");
      expect(relay.closed.length).toBe(1);
    } finally {
      await relay.close();
      dropping.close();
    }
  });
});

describe("isWebSocketUpgrade", () => {
  it("needs GET and an Upgrade header naming websocket in any case", () => {
    const req = (method: string, upgrade?: string) =>
      new Request("http://x/", { method, headers: upgrade ? { upgrade } : {} });
    expect(isWebSocketUpgrade(req("GET", "websocket"))).toBe(true);
    expect(isWebSocketUpgrade(req("GET", "WebSocket"))).toBe(true);
    expect(isWebSocketUpgrade(req("GET", "h2c, websocket"))).toBe(true);
    expect(isWebSocketUpgrade(req("POST", "websocket"))).toBe(false);
    expect(isWebSocketUpgrade(req("GET", "h2c"))).toBe(false);
    expect(isWebSocketUpgrade(req("GET"))).toBe(false);
  });
});
