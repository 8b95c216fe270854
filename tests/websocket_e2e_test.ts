import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import {
  closeClient,
  type EchoUpstream,
  openClient,
  startEchoUpstream,
  startRawUpstream,
} from "./helpers/ws_peers.ts";
import { waitFor, withTimeout } from "./helpers/wait.ts";
import { deadAddress, rawRequest, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { parseConfigText } from "../src/config/load.ts";
import { createHash } from "node:crypto";

function site(wsUpstream: string, httpUpstream: string, extra = ""): string {
  return `
[server]
grace_period = 1

[[sites]]
name = "ws"
hostname = "localhost"
port = 0
bind = "127.0.0.1"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "echo"
url = "${wsUpstream}"

[[sites.proxy.upstreams]]
name = "http"
url = "${httpUpstream}"

[[sites.proxy.routes]]
path = "/ws"
upstream = "echo"
websocket = true
strip_prefix = true

[[sites.proxy.routes]]
path = "/plain"
upstream = "http"

[sites.proxy.load_balancing]
method = "least_connections"

[sites.proxy.headers.add]
"X-Gateway" = "bws"
${extra}
`;
}

describe("WebSocket proxying through bws (SPEC 6)", () => {
  let echo: EchoUpstream;
  let http: ReturnType<typeof startEchoBackend>;
  let bws: TestBws;

  before(async () => {
    echo = startEchoUpstream();
    http = startEchoBackend("http");
    bws = await startBws(site(`http://127.0.0.1:${echo.port}`, http.url));
  });

  after(async () => {
    await bws.close();
    await echo.close();
    await http.close();
  });

  const wsUrl = (path: string) => `ws://127.0.0.1:${bws.port}${path}`;

  it("relays text and binary messages in order both ways", async () => {
    const c = await openClient(wsUrl("/ws/room?x=1"));
    try {
      c.socket.send("hello");
      expect(await c.next()).toBe("hello");
      const big = new Uint8Array(1024 * 1024).map((_, i) => i & 0xff);
      c.socket.send(big);
      const back = new Uint8Array(await c.next() as ArrayBuffer);
      expect(back.length).toBe(big.length);
      expect(back[12345]).toBe(12345 & 0xff);
      for (let i = 0; i < 1000; i++) c.socket.send(`m${i}`);
      for (let i = 0; i < 1000; i++) expect(await c.next()).toBe(`m${i}`);
      // strip_prefix applied and the query kept.
      expect(new URL(echo.urls.at(-1)!).pathname + new URL(echo.urls.at(-1)!).search).toBe(
        "/room?x=1",
      );
    } finally {
      await closeClient(c);
    }
  });

  it("passes subprotocols, forwarding and configured headers upstream", async () => {
    const c = await openClient(wsUrl("/ws"), {
      protocols: ["a", "b"],
      headers: { cookie: "sid=1", authorization: "Bearer t", origin: "http://localhost" },
    });
    try {
      expect(c.socket.protocol).toBe("b");
      const h = echo.headers.at(-1)!;
      expect(h.get("cookie")).toBe("sid=1");
      expect(h.get("authorization")).toBe("Bearer t");
      expect(h.get("origin")).toBe("http://localhost");
      expect(h.get("x-forwarded-for")).toBe("127.0.0.1");
      expect(h.get("x-gateway")).toBe("bws");
    } finally {
      await closeClient(c);
    }
  });

  it("sends the client's Host upstream (preserve_host defaults to true)", async () => {
    const c = await openClient(wsUrl("/ws"));
    try {
      expect(echo.headers.at(-1)!.get("host")).toBe(`127.0.0.1:${bws.port}`);
    } finally {
      await closeClient(c);
    }
    const raw = await rawRequest(
      bws.port,
      "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      300,
    );
    expect(raw.startsWith("HTTP/1.1 101")).toBe(true);
    expect(echo.headers.at(-1)!.get("host")).toBe("localhost");
    expect(echo.headers.at(-1)!.get("x-forwarded-host")).toBe("localhost");
  });

  it("passes close codes and reasons both ways", async () => {
    const c = await openClient(wsUrl("/ws"));
    const up = echo.sockets.at(-1)!;
    const upClosed = new Promise((resolve) =>
      up.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }))
    );
    c.socket.close(4001, "bye");
    expect(await withTimeout(upClosed, 3000, "upstream close")).toEqual({
      code: 4001,
      reason: "bye",
    });
    const c2 = await openClient(wsUrl("/ws"));
    c2.socket.send("x");
    await c2.next();
    echo.sockets.at(-1)!.close(4002, "later");
    expect(await withTimeout(c2.closed, 3000, "client close")).toEqual({
      code: 4002,
      reason: "later",
    });
  });

  it("counts open WebSockets for least_connections and in the status", async () => {
    const c = await openClient(wsUrl("/ws"));
    try {
      await waitFor("webSockets = 1", 2000, () => statusMembers(bws)[0].webSockets === 1);
    } finally {
      await closeClient(c);
    }
    await waitFor("webSockets = 0", 3000, () => statusMembers(bws)[0].webSockets === 0);
  });

  it("proxies an Upgrade on a non-websocket route as plain HTTP without Upgrade", async () => {
    const raw = await rawRequest(
      bws.port,
      "GET /plain HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      1000,
    );
    expect(raw.startsWith("HTTP/1.1 200")).toBe(true);
    const body = raw.slice(raw.indexOf("\r\n\r\n") + 4);
    const seen = JSON.parse(body.slice(0, body.lastIndexOf("}") + 1)) as Seen;
    const names = seen.headers.map(([n]) => n);
    expect(names).not.toContain("upgrade");
    expect(names).not.toContain("connection");
  });

  it("keeps an open WebSocket across a reload", async () => {
    const c = await openClient(wsUrl("/ws"));
    try {
      const next = parseConfigText(
        site(`http://127.0.0.1:${echo.port}`, http.url).replace('"X-Gateway" = "bws"', ""),
        { baseDir: Deno.cwd() },
      );
      const r = await bws.handle.reload(next);
      expect(r.ok).toBe(true);
      c.socket.send("still here");
      expect(await withTimeout(c.next(), 2000, "echo after reload")).toBe("still here");
    } finally {
      await closeClient(c);
    }
  });
});

function statusMembers(bws: TestBws) {
  return bws.handle.upstreams().find((g) => g.name === "echo")!.members;
}

describe("WebSocket Host with preserve_host = false (SPEC 2, 6)", () => {
  it("sends the upstream's host:port as Host and the client's in X-Forwarded-Host", async () => {
    const echo = startEchoUpstream();
    const http = startEchoBackend("http");
    const bws = await startBws(
      site(
        `http://127.0.0.1:${echo.port}`,
        http.url,
        "\n[sites.proxy.headers]\npreserve_host = false\n",
      ),
    );
    try {
      const c = await openClient(`ws://127.0.0.1:${bws.port}/ws`);
      await closeClient(c);
      const h = echo.headers.at(-1)!;
      expect(h.get("host")).toBe(`127.0.0.1:${echo.port}`);
      expect(h.get("x-forwarded-host")).toBe(`127.0.0.1:${bws.port}`);
    } finally {
      await bws.close();
      await echo.close();
      await http.close();
    }
  });
});

describe("WebSocket upstream failures (SPEC 6)", () => {
  it("answers 502 before upgrading when the upstream is down", async () => {
    const http = startEchoBackend("http");
    const bws = await startBws(site(deadAddress(), http.url, '[sites.headers]\n"X-Site" = "on"'));
    try {
      await expect(openClient(`ws://127.0.0.1:${bws.port}/ws`)).rejects.toThrow();
      const raw = await rawRequest(
        bws.port,
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        1000,
      );
      expect(raw.startsWith("HTTP/1.1 502")).toBe(true);
      // The proxy's error shape: the request id in a header and in the body.
      const id = raw.match(/\r\nx-request-id: ([^\r]+)\r\n/i)?.[1];
      expect(id).toBeDefined();
      expect(raw).toContain(`request id: ${id}`);
      expect(raw).toMatch(/\r\nx-site: on\r\n/i);
    } finally {
      await bws.close();
      await http.close();
    }
  });

  it("closes open WebSockets with 1001 on shutdown", async () => {
    const echo = startEchoUpstream();
    const http = startEchoBackend("http");
    const bws = await startBws(site(`http://127.0.0.1:${echo.port}`, http.url));
    const c = await openClient(`ws://127.0.0.1:${bws.port}/ws`);
    try {
      const stopped = bws.close();
      const closed = await withTimeout(c.closed, 4000, "client close on shutdown");
      expect(closed.code).toBe(1001);
      await stopped;
    } finally {
      await echo.close();
      await http.close();
    }
  });
});

describe("WebSocket handshake checks through bws (SPEC 6)", () => {
  const upgrade = (path: string, extra = "") =>
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

  it("passes an upstream's refusal (403) to the client without upgrading", async () => {
    const echo = startEchoUpstream();
    const http = startEchoBackend("http");
    const bws = await startBws(site(`http://127.0.0.1:${echo.port}`, http.url));
    try {
      const raw = await rawRequest(bws.port, upgrade("/ws/forbidden"), 1000);
      expect(raw).toMatch(/^HTTP\/1\.1 403 /);
      expect(raw).not.toMatch(/\r\nupgrade:/i);
      expect(raw.endsWith("no")).toBe(true);
      const entry = bws.logger.entries.find((e) => e.path === "/ws/forbidden");
      expect(entry?.status).toBe(403);
    } finally {
      await bws.close();
      await echo.close();
      await http.close();
    }
  });

  it("answers 502 when the upstream's 101 does not match the key or picks an unoffered protocol", async () => {
    const http = startEchoBackend("http");
    // Accept value of another key; then a valid accept with a protocol nobody offered.
    const wrong = startRawHandshake((key) =>
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Accept: ${acceptOf(key + "x")}\r\n\r\n`
    );
    const unoffered = startRawHandshake((key) =>
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Accept: ${acceptOf(key)}\r\nSec-WebSocket-Protocol: z\r\n\r\n`
    );
    for (const up of [wrong, unoffered]) {
      const bws = await startBws(site(`http://127.0.0.1:${up.port}`, http.url));
      try {
        const raw = await rawRequest(
          bws.port,
          upgrade("/ws", "Sec-WebSocket-Protocol: a\r\n"),
          1000,
        );
        expect(raw).toMatch(/^HTTP\/1\.1 502 /);
        expect(raw).toMatch(/request id: /);
        const entry = bws.logger.entries.find((e) => e.path === "/ws");
        expect(entry?.error).toMatch(/Sec-WebSocket-Accept|subprotocol/);
      } finally {
        await bws.close();
        up.close();
      }
    }
    await http.close();
  });

  it("answers 504 when the upstream takes the connection but never answers the handshake", async () => {
    const http = startEchoBackend("http");
    const mute = startRawUpstream(() => {}, { handshake: false });
    const bws = await startBws(
      site(
        `http://127.0.0.1:${mute.port}`,
        http.url,
        "\n[sites.proxy.timeout]\nconnect = 1\nread = 0.3\n",
      ),
    );
    try {
      const started = Date.now();
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
      try {
        await conn.write(new TextEncoder().encode(upgrade("/ws")));
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf);
        expect(new TextDecoder().decode(buf.subarray(0, n ?? 0))).toMatch(/^HTTP\/1\.1 504 /);
        expect(Date.now() - started).toBeLessThan(2000);
      } finally {
        conn.close();
      }
    } finally {
      await bws.close();
      mute.close();
      await http.close();
    }
  });

  it("does not lose a message the upstream sends right after the 101", async () => {
    const echo = startEchoUpstream({ greeting: "welcome" });
    const http = startEchoBackend("http");
    const bws = await startBws(site(`http://127.0.0.1:${echo.port}`, http.url));
    try {
      for (let i = 0; i < 5; i++) {
        const c = await openClient(`ws://127.0.0.1:${bws.port}/ws`);
        expect(await withTimeout(c.next(), 2000, "greeting")).toBe("welcome");
        await closeClient(c);
      }
    } finally {
      await bws.close();
      await echo.close();
      await http.close();
    }
  });

  it("closes the client with 1011 when the upstream drops between frames", async () => {
    const http = startEchoBackend("http");
    const dropping = startRawUpstream(async (conn) => {
      await new Promise((r) => setTimeout(r, 100));
      conn.close();
    });
    const bws = await startBws(site(`http://127.0.0.1:${dropping.port}`, http.url));
    try {
      const c = await openClient(`ws://127.0.0.1:${bws.port}/ws`);
      const closed = await withTimeout(c.closed, 3000, "client close");
      expect(closed.code).toBe(1011);
      await waitFor("pair forgotten", 3000, () => statusMembers(bws)[0].webSockets === 0);
    } finally {
      await bws.close();
      dropping.close();
      await http.close();
    }
  });
});

/** The Sec-WebSocket-Accept for `key` (RFC 6455 §4.2.2). */
function acceptOf(key: string): string {
  const sha1 = new Uint8Array(
    // node:crypto is synchronous, which keeps the raw upstream below simple.
    createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest(),
  );
  return btoa(String.fromCharCode(...sha1));
}

/** A raw upstream that answers every upgrade request with `answer(key)` and then waits. */
function startRawHandshake(answer: (key: string) => string): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        const buf = new Uint8Array(8192);
        let text = "";
        while (!text.includes("\r\n\r\n")) {
          const n = await conn.read(buf);
          if (n === null) return;
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
        const key = /sec-websocket-key:\s*(\S+)/i.exec(text)?.[1] ?? "";
        await conn.write(new TextEncoder().encode(answer(key)));
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}
