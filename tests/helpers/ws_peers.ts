/**
 * Test helpers: WebSocket peers for the tests and benchmark. An echo upstream and a client on
 * Deno's WebSocket; a raw-TCP client and upstream that do the handshake by hand and then write
 * exact frames (see `ws_frames.ts`). Loopback only.
 *
 * @module
 */

import { acceptKey, closeQuietly, FrameReader, readHead, writeAll } from "./ws_frames.ts";
import { withTimeout } from "./wait.ts";

const encoder = new TextEncoder();

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

/** A raw-TCP WebSocket client after its handshake: the conn and bytes read past the 101. */
export interface RawClient {
  readonly conn: Deno.Conn;
  /** Bytes read past the 101 head (`frames` starts with them; for readers of `conn`). */
  readonly rest: Uint8Array;
  readonly frames: FrameReader;
  /** Writes bytes (whole frames or parts of them). */
  send(bytes: Uint8Array): Promise<void>;
  close(): void;
}

/** Opens a WebSocket by hand; `extra` is sent right behind the request head. */
export async function openRawClient(
  port: number,
  path = "/",
  extra: Uint8Array = new Uint8Array(0),
): Promise<RawClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const head = encoder.encode(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const request = new Uint8Array(head.length + extra.length);
  request.set(head);
  request.set(extra, head.length);
  await writeAll(conn, request);
  const answer = await readHead(conn);
  if (answer === null || !answer.head.startsWith("HTTP/1.1 101")) {
    closeQuietly(conn);
    throw new Error(`Cannot open raw WebSocket "${path}": ${answer?.head.split("\r\n")[0]}`);
  }
  return {
    conn,
    rest: answer.rest,
    frames: new FrameReader(conn, answer.rest),
    send: (bytes) => writeAll(conn, bytes),
    close: () => closeQuietly(conn),
  };
}

/** A raw-TCP upstream: answers each handshake by hand, then hands the conn to `onOpen`. */
export interface RawUpstream {
  readonly port: number;
  readonly conns: Deno.Conn[];
  close(): void;
}

/**
 * Starts a raw-TCP upstream. With `handshake` (the default) it answers each upgrade with a 101
 * and hands the connection to `onOpen`; without, it accepts connections and never answers.
 */
export function startRawUpstream(
  onOpen: (conn: Deno.Conn, frames: FrameReader) => void | Promise<void>,
  { handshake = true }: { handshake?: boolean } = {},
): RawUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const serve = async (conn: Deno.Conn) => {
    conns.push(conn);
    if (!handshake) return;
    const request = await readHead(conn);
    if (request === null) return closeQuietly(conn);
    const key = /sec-websocket-key:\s*(\S+)/i.exec(request.head)?.[1] ?? "";
    await writeAll(
      conn,
      encoder.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${await acceptKey(key)}\r\n\r\n`,
      ),
    );
    await onOpen(conn, new FrameReader(conn, request.rest));
  };
  (async () => {
    for await (const conn of listener) void serve(conn).catch(() => closeQuietly(conn));
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    conns,
    close() {
      closeQuietly(listener);
      for (const conn of conns.splice(0)) closeQuietly(conn);
    },
  };
}
