/**
 * Real sockets for the tunnel tests and benchmark: a front that pairs an upgrade by hand
 * (reads the client's request head, forwards it to the upstream over TCP, forwards the 101 head
 * back) and then calls `startTunnel`, or, as the benchmark's floor, copies bytes with one reused
 * buffer per direction; raw-TCP WebSocket clients and upstreams that write exact frames; and a
 * frame encoder/reader. Loopback only.
 *
 * Run as a program it is the front for another process:
 * `deno run -A src/websocket/tunnel_testing.ts <upstream port> [tunnel|raw]` prints
 * `{"port":N}` and serves until its stdin closes.
 *
 * @module
 */

import type { ByteStream } from "../http1/types.ts";
import { startTunnel, type TunnelCloseInfo, type TunnelOptions } from "./tunnel.ts";
import { WebSocketRegistry } from "./websocket_registry.ts";

const encoder = new TextEncoder();
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B65";

/** One frame to encode. */
export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  /** @default true */
  fin?: boolean;
  /** Mask with a random key (as a client must). @default false */
  mask?: boolean;
  /** Raw first-byte bits to add (RSV). */
  rsv?: number;
}

/** Encodes one frame, choosing the 7/16/64-bit length form by size. */
export function encodeFrame(spec: FrameSpec): Uint8Array {
  const payload = typeof spec.payload === "string"
    ? encoder.encode(spec.payload)
    : spec.payload ?? new Uint8Array(0);
  const len = payload.length;
  const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const mask = spec.mask ?? false;
  const head = 2 + extra + (mask ? 4 : 0);
  const out = new Uint8Array(head + len);
  out[0] = (spec.fin === false ? 0 : 0x80) | (spec.rsv ?? 0) | spec.opcode;
  out[1] = (mask ? 0x80 : 0) | (extra === 0 ? len : extra === 2 ? 126 : 127);
  const view = new DataView(out.buffer);
  if (extra === 2) view.setUint16(2, len);
  if (extra === 8) view.setBigUint64(2, BigInt(len));
  if (!mask) {
    out.set(payload, head);
    return out;
  }
  const key = crypto.getRandomValues(new Uint8Array(4));
  out.set(key, head - 4);
  for (let i = 0; i < len; i++) out[head + i] = payload[i] ^ key[i & 3];
  return out;
}

/** A close frame payload: code and reason. */
export function closePayload(code: number, reason = ""): Uint8Array {
  const text = encoder.encode(reason);
  const out = new Uint8Array(2 + text.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}

/** A decoded frame. */
export interface Frame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  /** Unmasked. */
  payload: Uint8Array;
}

/** Reads whole frames from a stream (unmasking masked ones); keeps what it over-read. */
export class FrameReader {
  #stream: ByteStream;
  /** Unread bytes are `#buf[#start, #end)`. */
  #buf: Uint8Array;
  #start = 0;
  #end: number;

  constructor(stream: ByteStream, leftover: Uint8Array = new Uint8Array(0)) {
    this.#stream = stream;
    this.#buf = new Uint8Array(Math.max(64 * 1024, leftover.length));
    this.#buf.set(leftover);
    this.#end = leftover.length;
  }

  /** Makes `need` unread bytes available from `#start`; false at EOF. */
  async #fill(need: number): Promise<boolean> {
    while (this.#end - this.#start < need) {
      if (this.#buf.length - this.#start < Math.max(need, 16 * 1024)) {
        // Move the unread part to the front of a buffer big enough for `need` (doubling).
        const size = Math.max(this.#buf.length, need * 2);
        if (size === this.#buf.length) {
          this.#buf.copyWithin(0, this.#start, this.#end);
        } else {
          const next = new Uint8Array(size);
          next.set(this.#buf.subarray(this.#start, this.#end));
          this.#buf = next;
        }
        this.#end -= this.#start;
        this.#start = 0;
      }
      const n = await this.#stream.read(this.#buf.subarray(this.#end));
      if (n === null) return false;
      this.#end += n;
    }
    return true;
  }

  /** The next frame, or null at EOF (a truncated frame counts as EOF). */
  async next(): Promise<Frame | null> {
    if (!await this.#fill(2)) return null;
    let buf = this.#buf;
    let at = this.#start;
    const b1 = buf[at + 1];
    let len = b1 & 0x7f;
    let head = 2;
    if (len === 126) {
      if (!await this.#fill(4)) return null;
      [buf, at] = [this.#buf, this.#start];
      len = (buf[at + 2] << 8) | buf[at + 3];
      head = 4;
    } else if (len === 127) {
      if (!await this.#fill(10)) return null;
      [buf, at] = [this.#buf, this.#start];
      len = Number(new DataView(buf.buffer, buf.byteOffset + at).getBigUint64(2));
      head = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked) head += 4;
    if (!await this.#fill(head + len)) return null;
    [buf, at] = [this.#buf, this.#start];
    const payload = buf.slice(at + head, at + head + len);
    if (masked) {
      const key = buf.subarray(at + head - 4, at + head);
      for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
    }
    const first = buf[at];
    this.#start = at + head + len;
    return { fin: (first & 0x80) !== 0, opcode: first & 0x0f, masked, payload };
  }

  /** The next close frame's code and reason, skipping other frames; null at EOF. */
  async nextClose(): Promise<{ code: number; reason: string } | null> {
    for (let frame = await this.next(); frame !== null; frame = await this.next()) {
      if (frame.opcode !== 0x8) continue;
      const p = frame.payload;
      return {
        code: p.length >= 2 ? (p[0] << 8) | p[1] : 1005,
        reason: new TextDecoder().decode(p.subarray(2)),
      };
    }
    return null;
  }
}

/** Reads an HTTP head (through the blank line); returns it and the bytes read past it. */
export async function readHead(
  stream: ByteStream,
): Promise<{ head: string; rest: Uint8Array } | null> {
  const buf = new Uint8Array(16 * 1024);
  let filled = 0;
  while (filled < buf.length) {
    const n = await stream.read(buf.subarray(filled));
    if (n === null) return null;
    filled += n;
    for (let i = 3; i < filled; i++) {
      if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) {
        return {
          head: new TextDecoder().decode(buf.subarray(0, i + 1)),
          rest: buf.slice(i + 1, filled),
        };
      }
    }
  }
  return null;
}

async function writeAll(stream: ByteStream, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await stream.write(bytes.subarray(off));
}

function closeQuietly(closable: { close(): void }): void {
  try {
    closable.close();
  } catch { /* already closed */ }
}

/** The Sec-WebSocket-Accept value for `key`. */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** What a paired upgrade hands on: both streams and what was read past each head. */
export type PairHandler = (
  client: Deno.Conn,
  clientRest: Uint8Array,
  upstream: Deno.Conn,
  upstreamRest: Uint8Array,
) => void;

/** A front that pairs upgrades and hands each pair to `onPair`. */
export interface Front {
  readonly port: number;
  readonly url: string;
  close(): void;
}

/** Accepts on an ephemeral port; for each connection forwards the request head to
 * `upstreamPort`, the answer head back, and calls `onPair` after a 101 (else closes both). */
export function startFront(upstreamPort: number, onPair: PairHandler): Front {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairing = async (client: Deno.TcpConn) => {
    let upstream: Deno.TcpConn | undefined;
    try {
      client.setNoDelay(true);
      const request = await readHead(client);
      if (request === null) throw new Error("no request head");
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: upstreamPort });
      upstream.setNoDelay(true);
      await writeAll(upstream, encoder.encode(request.head));
      const answer = await readHead(upstream);
      if (answer === null) throw new Error("no answer head");
      await writeAll(client, encoder.encode(answer.head));
      if (!answer.head.startsWith("HTTP/1.1 101")) throw new Error("not upgraded");
      // Bytes the client sent with its head belong upstream; the tunnel relays them first.
      onPair(client, request.rest, upstream, answer.rest);
    } catch {
      closeQuietly(client);
      if (upstream) closeQuietly(upstream);
    }
  };
  (async () => {
    for await (const conn of listener) void pairing(conn);
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    close: () => closeQuietly(listener),
  };
}

/** A front whose pairs run through `startTunnel`. */
export interface TunnelFront extends Front {
  readonly registry: WebSocketRegistry;
  /** `onClose` reports in order. */
  readonly closed: TunnelCloseInfo[];
  /** Tunnels started. */
  readonly started: number;
}

export function startTunnelFront(
  upstreamPort: number,
  overrides: Partial<TunnelOptions> = {},
): TunnelFront {
  const registry = new WebSocketRegistry();
  const closed: TunnelCloseInfo[] = [];
  let started = 0;
  const front = startFront(upstreamPort, (client, clientRest, upstream, upstreamRest) => {
    started++;
    startTunnel(client, clientRest, upstream, upstreamRest, {
      idleTimeoutMs: 0,
      pingIntervalMs: 0,
      maxMessage: 16 * 1024 * 1024,
      registry,
      onClose: (info) => closed.push(info),
      ...overrides,
    });
  });
  return {
    ...front,
    registry,
    closed,
    get started() {
      return started;
    },
  };
}

/** The benchmark floor: copies bytes each way with one reused buffer, nothing else. */
export function startRawRelayFront(upstreamPort: number, bufferSize = 32 * 1024): Front {
  const copy = async (from: Deno.Conn, to: Deno.Conn, first: Uint8Array) => {
    const buf = new Uint8Array(bufferSize);
    try {
      await writeAll(to, first);
      for (let n = await from.read(buf); n !== null; n = await from.read(buf)) {
        for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
      }
    } catch { /* either side went away */ }
    closeQuietly(from);
    closeQuietly(to);
  };
  return startFront(upstreamPort, (client, clientRest, upstream, upstreamRest) => {
    void copy(client, upstream, clientRest);
    void copy(upstream, client, upstreamRest);
  });
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

export function startRawUpstream(
  onOpen: (conn: Deno.Conn, frames: FrameReader) => void | Promise<void>,
): RawUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const serve = async (conn: Deno.Conn) => {
    conns.push(conn);
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

if (import.meta.main) {
  const [upstreamPort, mode = "tunnel", bufferSize = "32768"] = Deno.args;
  const front = mode === "raw"
    ? startRawRelayFront(Number(upstreamPort), Number(bufferSize))
    : startTunnelFront(Number(upstreamPort), { bufferSize: Number(bufferSize) });
  console.log(JSON.stringify({ port: front.port }));
  for await (const _ of Deno.stdin.readable) { /* runs until stdin closes */ }
  front.close();
  Deno.exit(0);
}
