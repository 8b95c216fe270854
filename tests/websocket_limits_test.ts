import { describe, it } from "node:test";
import { expect } from "expect";
import {
  closeClient,
  openClient,
  rawClientThatNeverReads,
  startEchoUpstream,
  startRawUpstream,
  startRelayProxy,
  type TestClient,
  waitFor,
  withTimeout,
} from "../src/websocket/testing.ts";

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("WebSocket relay: bounded buffering", () => {
  it("closes a client that does not read while the upstream floods, and tells the upstream", async () => {
    const sink = startEchoUpstream({ echo: false });
    const proxy = startRelayProxy(sink.port, { maxBuffered: 1 * MiB });
    let conn: Deno.Conn | undefined;
    try {
      conn = await rawClientThatNeverReads(proxy.port, "/flood");
      await waitFor(() => sink.sockets.length === 1, 2000, "upstream socket");
      const upstream = sink.sockets[0];
      await waitFor(() => upstream.readyState === WebSocket.OPEN, 2000, "upstream open");
      const chunk = new Uint8Array(64 * 1024);
      const rssBefore = Deno.memoryUsage().rss;
      let rssPeak = rssBefore;
      let sent = 0;
      const deadline = Date.now() + 10_000;
      while (upstream.readyState === WebSocket.OPEN && sent < 256 * MiB && Date.now() < deadline) {
        upstream.send(chunk);
        sent += chunk.length;
        if (upstream.bufferedAmount > 2 * MiB) {
          await sleep(1);
          rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss);
        }
      }
      // The relay stopped taking data: the flood ended by the upstream being closed.
      expect(await withTimeout(sink.nextClose(), 3000, "upstream close")).toEqual({
        code: 1000,
        reason: "client not reading",
      });
      expect(sent).toBeLessThan(64 * MiB);
      expect(rssPeak - rssBefore).toBeLessThan(128 * MiB);
      if (Deno.env.get("WS_TEST_VERBOSE")) {
        console.log(`flood: sent ${sent} B, RSS +${rssPeak - rssBefore} B`);
      }
      conn.close();
      conn = undefined;
      await waitFor(() => proxy.registry.size === 0, 7000, "pair forgotten");
      expect(proxy.closed[0]?.code).toBe(1009);
    } finally {
      conn?.close();
      await proxy.close();
      await sink.close();
    }
  });

  it("closes the client with 1011 when the upstream does not read", async () => {
    const stuck = startRawUpstream(null);
    const proxy = startRelayProxy(stuck.port, { maxBuffered: 1 * MiB });
    let client: TestClient | undefined;
    try {
      client = await openClient(`${proxy.url}/stuck`);
      const chunk = new Uint8Array(64 * 1024);
      let sent = 0;
      const deadline = Date.now() + 10_000;
      while (
        client.socket.readyState === WebSocket.OPEN && sent < 256 * MiB && Date.now() < deadline
      ) {
        client.socket.send(chunk);
        sent += chunk.length;
        if (client.socket.bufferedAmount > 2 * MiB) await sleep(1);
      }
      // Deno's server side often resets a client that is still sending while it closes, so
      // the client may see an abnormal close (code 0) instead of 1011: both end the session.
      const closed = await withTimeout(client.closed, 3000, "client close");
      expect([1011, 1006, 0]).toContain(closed.code);
      expect(sent).toBeLessThan(64 * MiB);
      stuck.close();
      await waitFor(() => proxy.registry.size === 0, 3000, "pair forgotten");
      expect(proxy.closed[0]).toMatchObject({ code: 1011, reason: "upstream not reading" });
    } finally {
      if (client) await closeClient(client);
      stuck.close();
      await proxy.close();
    }
  });
});

describe("WebSocket relay: timeouts and shutdown", () => {
  it("closes an idle pair with 1001 but keeps a chatty one", async () => {
    const echo = startEchoUpstream();
    const proxy = startRelayProxy(echo.port, { idleTimeout: 0.3 });
    const idle = await openClient(`${proxy.url}/idle`);
    const chatty = await openClient(`${proxy.url}/chatty`);
    try {
      const started = Date.now();
      let chatting = true;
      const chat = (async () => {
        while (chatting) {
          chatty.socket.send("tick");
          await chatty.next();
          await sleep(50);
        }
      })();
      expect(await withTimeout(idle.closed, 3000, "idle close")).toEqual({
        code: 1001,
        reason: "idle timeout",
      });
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(290);
      expect(took).toBeLessThan(1500);
      expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
        code: 1000,
        reason: "idle timeout",
      });
      await sleep(300);
      expect(chatty.socket.readyState).toBe(WebSocket.OPEN);
      chatting = false;
      await chat;
    } finally {
      await closeClient(idle);
      await closeClient(chatty);
      await proxy.close();
      await echo.close();
    }
  });

  it("closeAll closes every pair with 1001 and empties the registry", async () => {
    const echo = startEchoUpstream();
    const proxy = startRelayProxy(echo.port);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await openClient(`${proxy.url}/s${i}`));
      await waitFor(() => proxy.opened === 3, 2000, "three open pairs");
      expect(proxy.registry.size).toBe(3);
      await proxy.registry.closeAll();
      expect(proxy.registry.size).toBe(0);
      for (const client of clients) {
        expect(await withTimeout(client.closed, 2000, "client close")).toEqual({
          code: 1001,
          reason: "server shutting down",
        });
      }
      for (let i = 0; i < 3; i++) {
        expect(await withTimeout(echo.nextClose(), 2000, "upstream close")).toEqual({
          code: 1000,
          reason: "server shutting down",
        });
      }
      expect(proxy.closed.length).toBe(3);
    } finally {
      for (const client of clients) await closeClient(client);
      await proxy.close();
      await echo.close();
    }
  });

  it("pings a silent client and closes it (1001) when no pong comes", async () => {
    const echo = startEchoUpstream();
    const proxy = startRelayProxy(echo.port, { pingInterval: 0.2 });
    const conn = await rawClientThatNeverReads(proxy.port, "/ping");
    try {
      // The raw client reads now: a ping frame (0x89) must arrive; it never answers.
      const buf = new Uint8Array(64);
      const n = await withTimeout(conn.read(buf), 2000, "ping frame");
      expect(n).not.toBeNull();
      expect(buf[0]).toBe(0x89);
      expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
        code: 1000,
        reason: expect.any(String),
      });
    } finally {
      conn.close();
      await proxy.close();
      await echo.close();
    }
  });
});

describe("WebSocket relay: load", () => {
  it("relays 200 concurrent pairs", async () => {
    const echo = startEchoUpstream();
    const proxy = startRelayProxy(echo.port);
    const clients: TestClient[] = [];
    try {
      await withTimeout(
        Promise.all(Array.from({ length: 200 }, async (_, i) => {
          const client = await openClient(`${proxy.url}/load/${i}`);
          clients.push(client);
          for (let j = 0; j < 10; j++) client.socket.send(`${i}:${j}`);
          for (let j = 0; j < 10; j++) expect(await client.next()).toBe(`${i}:${j}`);
        })),
        15_000,
        "200 pairs",
      );
      expect(proxy.registry.size).toBe(200);
    } finally {
      await Promise.all(clients.map(closeClient));
      await waitFor(() => proxy.registry.size === 0, 5000, "all pairs closed").catch(() => {});
      await proxy.close();
      await echo.close();
    }
    expect(proxy.closed.length).toBe(200);
  });
});
