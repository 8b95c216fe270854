/**
 * Real servers and clients for the WebSocket tests and benchmark: an echo upstream, a raw-TCP
 * upstream that drops after the handshake, and a raw-TCP client that never reads. Loopback only.
 *
 * @module
 */

/** A close event as a test wants to compare it. */
export interface Closed {
  code: number;
  reason: string;
}

/** The echo upstream: echoes every message; exposes its sockets and what it saw. */
export interface EchoUpstream {
  readonly port: number;
  /** Server-side sockets in accept order. */
  readonly sockets: WebSocket[];
  /** Request headers of each upgrade, in accept order. */
  readonly headers: Headers[];
  /** Request URLs of each upgrade, in accept order. */
  readonly urls: string[];
  /** Close events seen by the server side, in order. */
  readonly closes: Closed[];
  /** Resolves with the next close event on the server side. */
  nextClose(): Promise<Closed>;
  close(): Promise<void>;
}

export interface EchoOptions {
  /** Message the upstream sends as soon as each socket opens. */
  greeting?: string | Uint8Array;
  /** Turns off echoing (a sink). @default true */
  echo?: boolean;
}

/**
 * Starts the echo upstream. Path `/forbidden` answers 403; it picks "b" when offered as a
 * subprotocol, otherwise the first offered.
 */
export function startEchoUpstream(options: EchoOptions = {}): EchoUpstream {
  const sockets: WebSocket[] = [];
  const headers: Headers[] = [];
  const urls: string[] = [];
  const closes: Closed[] = [];
  const waiters: ((c: Closed) => void)[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    if (new URL(req.url).pathname === "/forbidden") return new Response("no", { status: 403 });
    const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) =>
      p.trim()
    ).filter((p) => p !== "");
    const protocol = offered.includes("b") ? "b" : offered[0];
    headers.push(new Headers(req.headers));
    urls.push(req.url);
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol, idleTimeout: 0 });
    socket.binaryType = "arraybuffer";
    sockets.push(socket);
    if (options.echo !== false) socket.onmessage = (e) => socket.send(e.data);
    if (options.greeting !== undefined) {
      const greeting = options.greeting;
      socket.onopen = () => socket.send(greeting);
    }
    socket.onerror = () => {};
    socket.onclose = (e) => {
      const closed = { code: e.code, reason: e.reason };
      const waiter = waiters.shift();
      if (waiter) waiter(closed);
      else closes.push(closed);
    };
    return response;
  });
  return {
    port: server.addr.port,
    sockets,
    headers,
    urls,
    get closes() {
      return closes;
    },
    nextClose() {
      const queued = closes.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve) => waiters.push(resolve));
    },
    close: () => server.shutdown(),
  };
}

export interface TestClient {
  readonly socket: WebSocket;
  /** Resolves with the next message (in arrival order). */
  next(): Promise<string | ArrayBuffer>;
  /** Resolves with the close event. */
  readonly closed: Promise<Closed>;
}

/** Opens a client (binaryType arraybuffer); rejects when the handshake fails. */
export function openClient(
  url: string,
  options: { protocols?: string[]; headers?: HeadersInit } = {},
): Promise<TestClient> {
  const socket = new WebSocket(url, { protocols: options.protocols, headers: options.headers });
  socket.binaryType = "arraybuffer";
  const queue: (string | ArrayBuffer)[] = [];
  const waiters: ((m: string | ArrayBuffer) => void)[] = [];
  socket.onmessage = (e) => {
    const waiter = waiters.shift();
    if (waiter) waiter(e.data);
    else queue.push(e.data);
  };
  const closed = new Promise<Closed>((resolve) => {
    socket.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
  });
  const client: TestClient = {
    socket,
    next() {
      const queued = queue.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      return new Promise((resolve) => waiters.push(resolve));
    },
    closed,
  };
  return new Promise((resolve, reject) => {
    socket.onerror = (e) => reject(new Error((e as ErrorEvent).message));
    socket.onopen = () => {
      socket.onerror = () => {};
      resolve(client);
    };
  });
}

/** Closes a client if still open and waits for its close event (bounded). */
export async function closeClient(client: TestClient): Promise<void> {
  if (client.socket.readyState <= WebSocket.OPEN) client.socket.close();
  await withTimeout(client.closed, 3000, "client close").catch(() => {});
}

/** Rejects when `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Cannot wait for ${what}: over ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `check` every 10 ms until true or `ms` pass (then rejects). */
export async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Cannot wait for ${what}: over ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(16 * 1024);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

/**
 * An upstream that completes the handshake by hand, then closes the TCP connection after
 * `dropAfterMs`, or with `null` keeps it open and never reads from it. With `mute`, it accepts
 * connections but never answers the handshake.
 */
export function startRawUpstream(
  dropAfterMs: number | null = 50,
  mute = false,
): { port: number; close(): void } {
  const listener = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        if (mute) return;
        const head = await readHead(conn);
        const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? "";
        await conn.write(new TextEncoder().encode(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            `Sec-WebSocket-Accept: ${await acceptKey(key)}\r\n\r\n`,
        ));
        if (dropAfterMs === null) return;
        await new Promise((r) => setTimeout(r, dropAfterMs));
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const conn of conns.splice(0)) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
    },
  };
}

/** Opens a WebSocket by hand over raw TCP and returns the connection without ever reading. */
export async function rawClientThatNeverReads(port: number, path = "/"): Promise<Deno.Conn> {
  const conn = await Deno.connect({ port, hostname: "127.0.0.1" });
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  await conn.write(new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const head = await readHead(conn);
  if (!head.startsWith("HTTP/1.1 101")) {
    conn.close();
    throw new Error(`Cannot open raw WebSocket "${path}": ${head.split("\r\n")[0]}`);
  }
  return conn;
}

/** Sends a masked close frame with `code` (any code, unlike WebSocket.close) over a raw conn. */
export async function sendRawClose(conn: Deno.Conn, code: number): Promise<void> {
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const payload = [code >> 8, code & 0xff].map((b, i) => b ^ mask[i]);
  await conn.write(new Uint8Array([0x88, 0x80 | 2, ...mask, ...payload]));
}
